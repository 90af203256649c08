"""Make BatchNorm's inference mode agree with its training mode after short trainings.

Training normalises with each batch's statistics; inference uses the moving averages.
With Keras' default momentum 0.99 the averages still hold ~8% of their initial values
(mean 0, variance 1) after 256 updates, and they lag behind weights that change fast:
the original DeepSCEM predicted all zeros after a 15-minute training for that reason
(and its validation loss, computed in inference mode, stayed ~1.0). Two fixes here:

* :func:`limit_momentum` lowers the momentum of every BatchNorm layer to at most 0.9
  for training, so the averages follow the weights within ~20 batches;
* :func:`recompute_batchnorm` (called by the trainer at the end)
  replaces the moving averages by the plain average of the batch statistics over a few
  batches of training patches, with the final weights: what inference then sees is
  what training saw.

And one for speed: :func:`fuse_batchnorm` trains the layers through TensorFlow's fused kernel
(Keras 3's own BatchNorm took 44 % of a CPU training step).
"""

from __future__ import annotations

import keras
import numpy as np

from deepscem.models.introspection import all_layers


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization layer of ``model``, nested models included."""
    return [layer for layer in all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]


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


def prepare_for_training(model: keras.Model) -> None:
    """What the trainer does to BatchNorm before compiling: :func:`limit_momentum` and
    :func:`fuse_batchnorm`."""
    limit_momentum(model)
    fuse_batchnorm(model)


def fuse_batchnorm(model: keras.Model) -> int:
    """Under TensorFlow, compute every BatchNormalization layer's training-mode pass with
    TensorFlow's fused kernel; returns how many layers now do (0 under other backends).

    Keras 3 computes it as a dozen separate float32 operations (moments, then the
    normalisation, and their gradients): a BatchNorm layer of the default U-Net cost 4x a
    3x3 convolution of the same tensor on a CPU, and BatchNorm 44 % of a training step. The
    fused kernel takes the same (2, 256, 256, 16) bfloat16 tensor forward and back in 2.4
    CPU-ms instead of 13.4 (bench/README.md, "Fused BatchNorm"). The results agree to
    float32 rounding (the moving variance is the same biased estimate: the kernel's unbiased
    one times (n - 1) / n). Only the layer objects of ``model`` change (their ``call``): the
    layer stays Keras' own BatchNormalization in saved files and exports, and inference,
    masked or synchronised calls and non-last channel axes take Keras' own path.
    """
    if keras.backend.backend() != "tensorflow":
        return 0
    import types

    layers = [bn for bn in batchnorm_layers(model) if not bn.synchronized]
    for bn in layers:
        bn.call = types.MethodType(_fused_call, bn)
    return len(layers)


def _fused_call(self, inputs, training=None, mask=None):
    import tensorflow as tf

    rank = len(inputs.shape)
    if (not (training and self.trainable) or mask is not None or rank not in (4, 5)
            or self.axis % rank != rank - 1):
        return type(self).call(self, inputs, training=training, mask=mask)
    shape = tf.shape(inputs)
    x = inputs if rank == 4 else tf.reshape(inputs, [shape[0], -1, shape[3], shape[4]])  # same stats
    channels = inputs.shape[-1]
    gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels], tf.float32)
    beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels], tf.float32)
    y, mean, variance = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=self.epsilon,
                                                         is_training=True)
    n = tf.cast(tf.size(x, out_type=tf.int64) // channels, tf.float32)
    variance = variance * (n - 1.0) / tf.maximum(n, 1.0)
    self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
    self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
    return tf.cast(y if rank == 4 else tf.reshape(y, shape), inputs.dtype)


def recompute_batchnorm(model: keras.Model, batches) -> int:
    """Set every BatchNormalization's moving statistics to their mean over ``batches``.

    ``batches``: an iterable of input arrays (batch, [Z,] Y, X, 1) float32, e.g. a few
    dozen training patches. Runs the model in training mode once per batch with a
    momentum of 0, so after each batch the moving mean/variance hold that batch's
    statistics, and sets them at the end to the plain average of those (no lag behind the
    final weights). Weights are untouched; on an error the statistics stay as they were.
    Returns the number of batches used (0 leaves the statistics as they were).

    Under TensorFlow the forward pass is a compiled graph: called eagerly, a functional
    model keeps every intermediate tensor alive until its output is ready, which for a
    batch of 8 256² patches took more memory than a training step.
    """
    bns = batchnorm_layers(model)
    if not bns:
        return 0
    saved = [(bn.momentum, bn.moving_mean.numpy(), bn.moving_variance.numpy()) for bn in bns]
    sums = [[0.0, 0.0] for _ in bns]
    count = 0
    try:
        for bn in bns:
            bn.momentum = 0.0  # read when the forward pass is traced: set it first
        forward = _training_forward(model)
        for batch in batches:
            forward(batch)
            count += 1
            for total, bn in zip(sums, bns):
                total[0] = total[0] + bn.moving_mean.numpy().astype(np.float64)
                total[1] = total[1] + bn.moving_variance.numpy().astype(np.float64)
    except BaseException:
        count = 0
        raise
    finally:
        for bn, total, (momentum, mean, variance) in zip(bns, sums, saved):
            bn.momentum = momentum
            if count:
                mean, variance = total[0] / count, total[1] / count
            bn.moving_mean.assign(np.asarray(mean, np.float32))
            bn.moving_variance.assign(np.asarray(variance, np.float32))
    return count


def _training_forward(model: keras.Model):
    """``x -> model(x, training=True)``; a tf.function under TensorFlow, so intermediate
    tensors are freed as soon as nothing needs them."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(lambda x: model(x, training=True), reduce_retracing=True)
    return lambda x: model(x, training=True)
