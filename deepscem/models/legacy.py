"""Models written by the original DeepSCEM (Keras 2.10 ``.h5`` files, no metadata).

Keras 3 refuses them: their Conv2DTranspose/Conv3DTranspose configs carry ``groups: 1``,
an argument Keras 3 dropped ("Unrecognized keyword arguments passed to Conv2DTranspose").
The subclasses below accept and drop it (groups=1 is the only value the original wrote,
and the only one Keras 3 computes anyway); everything else loads as is.
"""

from __future__ import annotations

import keras
from keras import layers

from deepscem.config import UNetConfig
from deepscem.errors import ModelError


def _drop_groups(kwargs: dict) -> dict:
    groups = kwargs.pop("groups", 1)
    if int(groups) != 1:
        raise ModelError(f"transposed convolution with groups={groups} is not supported")
    return kwargs


@keras.saving.register_keras_serializable(package="deepscem")
class LegacyConv2DTranspose(layers.Conv2DTranspose):
    """Conv2DTranspose that accepts the Keras 2 ``groups`` argument."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **_drop_groups(kwargs))


@keras.saving.register_keras_serializable(package="deepscem")
class LegacyConv3DTranspose(layers.Conv3DTranspose):
    """Conv3DTranspose that accepts the Keras 2 ``groups`` argument."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **_drop_groups(kwargs))


def custom_objects() -> dict:
    """What ``keras.saving.load_model`` needs for the original's files (harmless for ours)."""
    return {"Conv2DTranspose": LegacyConv2DTranspose, "Conv3DTranspose": LegacyConv3DTranspose}


def infer_unet_config(model: keras.Model) -> UNetConfig | None:
    """Best guess of the original's "New model" options from a loaded model's layers.

    Original layout: per level either ``B`` conv+ReLU (VGG) or those plus a 1x1 conv
    shortcut and an Add (residual); one max-pooling between levels; output conv named
    "output" with the activation. Its "BatchNorm" option never took effect, so the
    normalisation is "none" unless the main path has BatchNormalization layers.
    Returns None when the model does not look like a U-Net.
    """
    convs = [lay for lay in model.layers if isinstance(lay, (layers.Conv2D, layers.Conv3D))
             and not isinstance(lay, (layers.Conv2DTranspose, layers.Conv3DTranspose))]
    pools = [lay for lay in model.layers if isinstance(lay, (layers.MaxPooling2D, layers.MaxPooling3D))]
    if len(convs) < 2:
        return None
    try:
        dim = len(model.inputs[0].shape) - 2
        first = convs[0]
        main = [c for c in convs[:-1] if max(c.kernel_size) > 1]
        residual = any(isinstance(lay, layers.Add) for lay in model.layers)
        depth = len(pools)
        levels = 2 * depth + 1
        blocks = max(1, len(main) // levels)
        out = convs[-1]
        activation = keras.activations.serialize(out.activation)
        activation = activation if isinstance(activation, str) else activation.get("config", "linear")
        # Shortcut BatchNorms (always there in the original's residual blocks) do not count.
        n_bn = sum(isinstance(lay, layers.BatchNormalization) for lay in model.layers)
        has_main_bn = n_bn > (levels if residual else 0)
        return UNetConfig(
            dim=dim, block="residual" if residual else "vgg", kernel_size=int(first.kernel_size[0]),
            filters=int(first.filters), blocks_per_level=blocks,
            normalization="batchnorm" if has_main_bn else "none", depth=depth,
            outputs=int(out.filters),
            activation=activation if activation in ("sigmoid", "softmax", "tanh", "linear") else "linear",
            name=model.name or "unet")
    except Exception:  # noqa: BLE001  (a guess for display only: never block loading on it)
        return None
