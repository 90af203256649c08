"""The U-Net's building blocks, 2D or 3D, written with ``keras.layers`` only.

No backend calls (no ``tf.``), so the same blocks run under ``KERAS_BACKEND=torch``.
Tensors are channels-last: (batch, Y, X, C) in 2D, (batch, Z, Y, X, C) in 3D.

A "block" is one convolution (+ batch or instance normalisation) + ReLU, as in the original DeepSCEM:
a VGG level is ``blocks_per_level`` blocks in a row; a residual level is the same row plus
a 1x1 convolution shortcut added before the last ReLU.
"""

from __future__ import annotations

from keras import layers

# Keras' default BatchNormalization momentum (0.99) averages the batch statistics over
# ~100 steps. During a short training the weights move faster than that, so the moving
# statistics used at inference lag behind the ones the network was trained with and the
# inference output can be far from the training output (the original DeepSCEM predicted
# all zeros after a few hundred steps). 0.9 follows the weights within ~10 steps; the
# trainer can also recompute exact statistics at the end
# (see ``deepscem.training.batchnorm.recompute_batchnorm``).
DEFAULT_BN_MOMENTUM = 0.9


def conv_layer(dim: int):
    return layers.Conv2D if dim == 2 else layers.Conv3D


def conv_block(x, filters: int, *, dim: int, kernel_size: int, normalization: str,
               bn_momentum: float, name: str, activation: bool = True):
    """Convolution ("same" padding) -> normalization (if asked) -> ReLU (if ``activation``).

    ``normalization``: "batchnorm", "instance" (per patch and channel, nnU-Net's choice for
    small batches; GroupNormalization with one channel per group), or "none".
    """
    normalized = normalization != "none"
    # The bias is redundant before a normalization (its beta plays that role).
    x = conv_layer(dim)(filters, kernel_size, padding="same", use_bias=not normalized,
                        kernel_initializer="he_normal", name=f"{name}_conv")(x)
    if normalization == "batchnorm":
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    elif normalization == "instance":
        x = layers.GroupNormalization(groups=-1, epsilon=1e-5, name=f"{name}_in")(x)
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
