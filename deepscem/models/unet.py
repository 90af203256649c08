"""The U-Net builder: a plain function returning a functional ``keras.Model``.

Input (None, None, 1) for 2D (Y, X, grey) and (None, None, None, 1) for 3D (Z, Y, X,
grey) (2.5D: (None, None, 1 + 2 * context), the neighbouring slices as channels), so
prediction tiles can be larger than training patches; output has the same spatial shape
with ``config.outputs`` channels (one per label).

Every spatial size must be a multiple of 2**depth (each level halves it, and the
up-sampling path doubles it back; of scale * 2**depth for a ``UNetConfig.scale`` model, whose
network works at 1/scale of the resolution): ``introspection.tile_multiple`` tells the
predictor how much to pad, ``check_tile_shape`` refuses a tile that does not fit with a clear message.

Only ``keras.layers`` are used, so the model runs under the TensorFlow (default) and
PyTorch backends. The output activation is computed in float32, so a model built under
the ``mixed_bfloat16`` / ``mixed_float16`` policy still gives float32 probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from deepscem.config import UNetConfig
from deepscem.errors import ConfigError
from deepscem.models import blocks
from deepscem.models.blocks import DEFAULT_BN_MOMENTUM


def build_unet(config: UNetConfig, *, bn_momentum: float = DEFAULT_BN_MOMENTUM,
               dropout: float = 0.0) -> keras.Model:
    """Build an untrained U-Net described by ``config``.

    Level l (0 = full resolution) has ``config.filters * 2**l`` filters; there are
    ``config.depth`` poolings (depth 0 = a single level, no pooling). ``bn_momentum`` is
    the BatchNormalization moving-average momentum (see ``blocks.DEFAULT_BN_MOMENTUM`` for
    why it is lower than Keras' 0.99). ``dropout``: the fraction of the bottleneck's and the
    deepest encoder level's channels dropped in training (the original U-Net's "drop-out at
    the end of the contracting path"; 0 = none). Raises ConfigError for impossible combinations.
    """
    if config.activation == "softmax" and config.outputs < 2:
        raise ConfigError("a softmax output needs at least 2 outputs (it is always 1 for a single "
                          "output); use sigmoid for one label")
    if not str(config.name).strip() or "/" in str(config.name):
        raise ConfigError(f"model name {config.name!r} is not allowed: give a non-empty name "
                          "without '/'")
    if not 0.0 <= float(bn_momentum) < 1.0:
        raise ConfigError(f"BatchNorm momentum must be in [0, 1), got {bn_momentum}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
    dim = int(config.dim)
    common = dict(dim=dim, kernel_size=int(config.kernel_size), blocks=int(config.blocks_per_level),
                  normalization=config.normalization, bn_momentum=float(bn_momentum))

    # 2.5D: the neighbouring slices are extra channels of the first convolution (cheap).
    inputs = keras.Input(shape=(None,) * dim + (config.input_channels,), name="image")
    x = inputs
    scale = int(config.scale)
    if scale > 1:  # the network sees scale x scale block means: scale**2 the field of view
        x = layers.AveragePooling2D(scale, name="downscale")(x)
    skips = []
    drop = layers.SpatialDropout2D if dim == 2 else layers.SpatialDropout3D
    for lv in range(config.depth):
        x = blocks.level(x, config.filters * 2**lv, block=config.block, name=f"enc{lv}", **common)
        if dropout and lv == config.depth - 1:
            x = drop(dropout, name=f"enc{lv}_dropout")(x)
        skips.append(x)
        x = blocks.downsample(x, dim=dim, name=f"pool{lv}")
    x = blocks.level(x, config.filters * 2**config.depth, block=config.block, name="center", **common)
    if dropout:
        x = drop(dropout, name="center_dropout")(x)
    for lv in reversed(range(config.depth)):
        x = blocks.upsample(x, config.filters * 2**lv, dim=dim, name=f"up{lv}")
        x = layers.Concatenate(name=f"concat{lv}")([x, skips[lv]])
        x = blocks.level(x, config.filters * 2**lv, block=config.block, name=f"dec{lv}", **common)

    logits = blocks.conv_layer(dim)(config.outputs, 1, name="logits")(x)
    if scale > 1:  # logits back to the input's resolution (linear, so calibration still holds)
        logits = layers.UpSampling2D(scale, interpolation="bilinear", name="upscale")(logits)
    # float32 here whatever the global dtype policy: softmax/sigmoid in bfloat16 loses the
    # precision that thresholds and Dice need.
    outputs = layers.Activation(config.activation, dtype="float32", name="output")(logits)
    return keras.Model(inputs, outputs, name=config.name)


def check_tile_shape(shape: Sequence[int], depth_or_multiple, *, is_multiple: bool = False) -> None:
    """Raise ConfigError unless every axis of ``shape`` (spatial, e.g. (Y, X) or (Z, Y, X))
    is a positive multiple of 2**depth (or of ``depth_or_multiple`` itself with
    ``is_multiple=True``). Example: depth 4 -> multiples of 16, so 256 fits, 250 does not."""
    multiple = int(depth_or_multiple) if is_multiple else 2 ** int(depth_or_multiple)
    bad = [int(s) for s in shape if int(s) < 1 or int(s) % multiple]
    if bad:
        fitting = tuple(max(multiple, -(-int(s) // multiple) * multiple) for s in shape)
        raise ConfigError(f"tile {tuple(int(s) for s in shape)} does not fit this model: every axis "
                          f"must be a multiple of {multiple} (2**depth); pad to {fitting}")


def count_parameters(model: keras.Model) -> int:
    """Number of weights (trainable and not, e.g. BatchNorm moving statistics)."""
    return int(model.count_params())
