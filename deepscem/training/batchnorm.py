"""Make BatchNorm's inference mode agree with its training mode after short trainings.

Training normalises with each batch's statistics; inference uses the moving averages.
With Keras' default momentum 0.99 the averages still hold ~8% of their initial values
(mean 0, variance 1) after 256 updates, and they lag behind weights that change fast:
the original DeepSCEM predicted all zeros after a 15-minute training for that reason
(and its validation loss, computed in inference mode, stayed ~1.0). Two fixes here:

* :func:`limit_momentum` lowers the momentum of every BatchNorm layer to at most 0.9
  for training, so the averages follow the weights within ~20 batches;
* :func:`recompute_statistics` replaces the moving averages after training by the
  plain average of the batch statistics over a few batches of training patches, with
  the final weights: what inference then sees is what training saw.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras
import numpy as np


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization layer of ``model``, nested models included."""
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)]


def limit_momentum(model: keras.Model, momentum: float = 0.9) -> int:
    """Set BatchNorm momentum to ``min(current, momentum)``; returns how many layers changed.

    Call before compiling: the traced train step reads the momentum when it is built.
    """
    changed = 0
    for layer in batchnorm_layers(model):
        if layer.momentum > momentum:
            layer.momentum = momentum
            changed += 1
    return changed


def recompute_statistics(model: keras.Model, batches: Iterable[np.ndarray]) -> int:
    """Set every BatchNorm layer's moving mean/variance to the average over ``batches``.

    batches: model inputs, e.g. (B, Y, X, 1) float32. Each forward pass runs in training
    mode with momentum n / (n + 1) for the n-th batch, which makes the moving value the
    cumulative average of the batch statistics; trainable weights do not change.
    Returns the number of batches used (0 if the model has no BatchNorm).
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    saved = [layer.momentum for layer in layers]
    n = 0
    try:
        for x in batches:
            for layer in layers:
                layer.momentum = n / (n + 1.0)
            # Eager call: the momentum above is read at call time (no traced graph to refresh).
            model(x, training=True)
            n += 1
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    return n
