"""The U-Net's building blocks, 2D or 3D, written with ``keras.layers`` only.

No backend calls (no ``tf.``), so the same blocks run under ``KERAS_BACKEND=torch``.
Tensors are channels-last: (batch, Y, X, C) in 2D, (batch, Z, Y, X, C) in 3D.

A "block" is one convolution (+ batch normalisation) + ReLU, as in the original DeepSCEM:
a VGG level is ``blocks_per_level`` blocks in a row; a residual level is the same row plus
a 1x1 convolution shortcut added before the last ReLU.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

# Keras' default BatchNormalization momentum (0.99) averages the batch statistics over
# ~100 steps. During a short training the weights move faster than that, so the moving
# statistics used at inference lag behind the ones the network was trained with and the
# inference output can be far from the training output (the original DeepSCEM predicted
# all zeros after a few hundred steps). 0.9 follows the weights within ~10 steps; the
# trainer can also recompute exact statistics at the end (see ``recompute_batchnorm``).
DEFAULT_BN_MOMENTUM = 0.9


def conv_layer(dim: int):
    return layers.Conv2D if dim == 2 else layers.Conv3D


def conv_block(x, filters: int, *, dim: int, kernel_size: int, normalization: str,
               bn_momentum: float, name: str, activation: bool = True):
    """Convolution ("same" padding) -> BatchNorm (if asked) -> ReLU (if ``activation``)."""
    use_bn = normalization == "batchnorm"
    # The bias is redundant before a BatchNorm (its beta plays that role).
    x = conv_layer(dim)(filters, kernel_size, padding="same", use_bias=not use_bn,
                        kernel_initializer="he_normal", name=f"{name}_conv")(x)
    if use_bn:
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    if activation:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    return x


def vgg_level(x, filters: int, *, dim: int, kernel_size: int, blocks: int, normalization: str,
              bn_momentum: float, name: str):
    """``blocks`` conv blocks in a row, all with ``filters`` channels."""
    for b in range(blocks):
        x = conv_block(x, filters, dim=dim, kernel_size=kernel_size, normalization=normalization,
                       bn_momentum=bn_momentum, name=f"{name}_b{b}")
    return x


def residual_level(x, filters: int, *, dim: int, kernel_size: int, blocks: int,
                   normalization: str, bn_momentum: float, name: str):
    """``blocks`` conv blocks with a 1x1-convolution shortcut: relu(main(x) + shortcut(x)).

    The last block's ReLU is applied after the addition (the usual residual unit), so the
    shortcut can carry negative values into the sum.
    """
    shortcut = conv_block(x, filters, dim=dim, kernel_size=1, normalization=normalization,
                          bn_momentum=bn_momentum, name=f"{name}_skip", activation=False)
    for b in range(blocks):
        x = conv_block(x, filters, dim=dim, kernel_size=kernel_size, normalization=normalization,
                       bn_momentum=bn_momentum, name=f"{name}_b{b}", activation=b < blocks - 1)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.Activation("relu", name=f"{name}_relu")(x)


def level(x, filters: int, *, block: str, **kwargs):
    """One U-Net level of the given ``block`` kind ("vgg" or "residual")."""
    return (residual_level if block == "residual" else vgg_level)(x, filters, **kwargs)


def downsample(x, *, dim: int, name: str):
    """2x max-pooling on every spatial axis."""
    pool = layers.MaxPooling2D if dim == 2 else layers.MaxPooling3D
    return pool(2, name=name)(x)


def upsample(x, filters: int, *, dim: int, name: str):
    """2x learned up-sampling (transposed convolution, kernel 2, stride 2), as the original."""
    conv_t = layers.Conv2DTranspose if dim == 2 else layers.Conv3DTranspose
    return conv_t(filters, 2, strides=2, padding="valid", kernel_initializer="he_normal",
                  name=name)(x)


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
    from deepscem.models.unet import all_layers

    bns = [layer for layer in all_layers(model) if isinstance(layer, layers.BatchNormalization)]
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
