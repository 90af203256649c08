"""bfloat16 mixed precision for training, only when asked, and where it is fast
(:func:`deepscem.devices.bf16_supported` says where).

A built model keeps the dtype policy of its layers, so mixed precision is applied to a
clone: every layer but the last computes in bfloat16 (weights stay float32), the output
layer stays float32 so losses are computed in full precision. The trainer copies the
weights back into the caller's float32 model, which is what gets saved.
"""

from __future__ import annotations

import keras

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
