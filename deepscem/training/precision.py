"""bfloat16 mixed precision for training: when asked, and by default for 2D models where it is
fast (:func:`deepscem.devices.bf16_supported` says where; :func:`resolved` decides).

A built model keeps the dtype policy of its layers, so mixed precision is applied to a
clone: every layer but the last computes in bfloat16 (weights stay float32), the output
layer stays float32 so losses are computed in full precision. The trainer copies the
weights back into the caller's float32 model, which is what gets saved.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import keras

from deepscem.config import TrainConfig
from deepscem.devices import bf16_supported

if TYPE_CHECKING:
    from deepscem.models.introspection import ModelInfo

MIXED = "mixed_bfloat16"


def with_policy(model: keras.Model, policy: str, keep: frozenset[str] = frozenset()) -> keras.Model:
    """A copy of a functional ``model`` whose layers compute with ``policy``; the last layer and
    the layers named in ``keep`` stay float32."""
    config = model.get_config()
    layers = config.get("layers")
    if not layers:
        raise ValueError("mixed precision needs a functional model")
    for layer in layers:
        if (layer["class_name"] != "InputLayer" and layer is not layers[-1]
                and layer["config"].get("name") not in keep):
            layer["config"]["dtype"] = policy
    clone = model.__class__.from_config(config)
    clone.set_weights(model.get_weights())
    return clone


def resolved(config: TrainConfig, info: ModelInfo) -> TrainConfig:
    """``config`` with what the model decides: the boundary target of a model created with
    boundary outputs, and mixed precision when not chosen (None): bfloat16 for 2D models where the
    device computes it fast (measured: same IoU, ~20 % more steps; bench/README.md), float32 for
    3D models (not measured there; see :func:`float32_layers` for what stays float32 when asked).
    Recorded in the history."""
    if getattr(info, "targets", "label") == "label+boundary" and config.target == "label":
        config = dataclasses.replace(config, target="label+boundary")  # model create --boundary
    if config.mixed_precision is None:
        fast = int(getattr(info, "dimension", 2) or 2) == 2 and bf16_supported()
        config = dataclasses.replace(config, mixed_precision=fast)
    return config


def float32_layers(model: keras.Model, micro: int, patch: tuple[int, int, int]) -> frozenset[str]:
    """The 3D convolutions that must stay float32 when training ``model`` on (Z, Y, X) ``patch``es
    in passes of ``micro`` on a CPU: those whose input or output is 2 slices deep. TensorFlow's
    (2.20, oneDNN) bfloat16 Conv3D filter gradient is wrong there for more than one patch per pass
    (errors of 100 % or inf against float32; < 0.5 % at 1 or >= 3 slices), which trained a 3D
    U-Net into NaN. Nothing for 2D models, GPUs or single-patch passes."""
    from deepscem.devices import has_gpu

    convs = [layer for layer in model.layers
             if isinstance(layer, (keras.layers.Conv3D, keras.layers.Conv3DTranspose))]
    if not convs or micro < 2 or has_gpu():
        return frozenset()
    probe = keras.Model(model.inputs, [[c.input, c.output] for c in convs])
    channels = int(model.inputs[0].shape[-1] or 1)
    specs = probe.compute_output_spec(keras.KerasTensor((micro, *patch, channels)))
    return frozenset(c.name for c, (x, y) in zip(convs, specs) if 2 in (x.shape[1], y.shape[1]))
