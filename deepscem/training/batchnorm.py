"""Make BatchNorm's inference mode agree with its training mode after short trainings.

Training normalises with each batch's statistics; inference uses the moving averages.
With Keras' default momentum 0.99 the averages still hold ~8% of their initial values
(mean 0, variance 1) after 256 updates, and they lag behind weights that change fast:
the original DeepSCEM predicted all zeros after a 15-minute training for that reason
(and its validation loss, computed in inference mode, stayed ~1.0). Two fixes here:

* :func:`limit_momentum` lowers the momentum of every BatchNorm layer to at most 0.9
  for training, so the averages follow the weights within ~20 batches;
* ``deepscem.models.blocks.recompute_batchnorm`` (called by the trainer at the end)
  replaces the moving averages by the plain average of the batch statistics over a few
  batches of training patches, with the final weights: what inference then sees is
  what training saw.
"""

from __future__ import annotations

import keras


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
