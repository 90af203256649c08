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


def with_policy(model: keras.Model, policy: str) -> keras.Model:
    """A copy of a functional ``model`` whose layers compute with ``policy`` (last layer float32)."""
    config = model.get_config()
    layers = config.get("layers")
    if not layers:
        raise ValueError("mixed precision needs a functional model")
    for layer in layers:
        if layer["class_name"] != "InputLayer" and layer is not layers[-1]:
            layer["config"]["dtype"] = policy
    clone = model.__class__.from_config(config)
    clone.set_weights(model.get_weights())
    return clone


def resolved(config: TrainConfig, info: ModelInfo) -> TrainConfig:
    """``config`` with what the model decides: the boundary target of a model created with
    boundary outputs, and mixed precision when not chosen (None): bfloat16 for 2D models where the
    device computes it fast (measured: same IoU, ~20 % more steps; bench/README.md), float32 for
    3D models (not measured; a 1-step 3D test ended in NaN in bfloat16). Recorded in the history."""
    if getattr(info, "targets", "label") == "label+boundary" and config.target == "label":
        config = dataclasses.replace(config, target="label+boundary")  # model create --boundary
    if config.mixed_precision is None:
        fast = int(getattr(info, "dimension", 2) or 2) == 2 and bf16_supported()
        config = dataclasses.replace(config, mixed_precision=fast)
    return config
