"""bfloat16 mixed precision for training, only when asked, and where it is fast.

A built model keeps the dtype policy of its layers, so mixed precision is applied to a
clone: every layer but the last computes in bfloat16 (weights stay float32), the output
layer stays float32 so losses are computed in full precision. The trainer copies the
weights back into the caller's float32 model, which is what gets saved.
"""

from __future__ import annotations

import platform
from pathlib import Path

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


def bf16_supported() -> bool:
    """True where bfloat16 is fast: a GPU of compute capability >= 8 or a CPU with bf16 instructions."""
    if keras.backend.backend() == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_capability(0)[0] >= 8
    else:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:  # the model runs on the first GPU, whatever the CPU can do
            capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
            return bool(capability and capability[0] >= 8)
    flags = _cpu_flags()
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_name() -> str:
    """The CPU model and core count, in words (e.g. "AMD EPYC, 2 cores")."""
    import os

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"
