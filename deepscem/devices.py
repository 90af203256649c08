"""The compute device: which Keras backend and device computations run on, in words (printed
before training/predicting), whether bfloat16 is fast there, and the CPU's name."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe_device() -> str:
    """The backend and the device the model runs on, in words."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            names = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
                     for g in gpus]
            return f"tensorflow on GPU ({', '.join(names)})"
        return "tensorflow on CPU"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"torch on cuda:0 ({torch.cuda.get_device_name(0)})"
        return "torch on CPU"
    if backend == "jax":
        gpu = _jax_gpu()
        return f"jax on GPU ({gpu.device_kind})" if gpu is not None else "jax on CPU"
    return f"{backend}"


def _jax_gpu():
    """The first JAX GPU device, or None."""
    import jax

    try:
        gpus = jax.devices("gpu")
    except RuntimeError:  # no GPU platform in this jaxlib
        return None
    return gpus[0] if gpus else None


def has_gpu() -> bool:
    """True when the Keras backend computes on a GPU."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if keras.backend.backend() == "torch":
        import torch

        return bool(torch.cuda.is_available())
    if keras.backend.backend() == "jax":
        return _jax_gpu() is not None
    return False


def bf16_supported() -> bool:
    """True where bfloat16 is fast: a GPU of compute capability >= 8 or a CPU with bf16 instructions."""
    import keras

    if keras.backend.backend() == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_capability(0)[0] >= 8
    elif keras.backend.backend() == "jax":
        gpu = _jax_gpu()
        if gpu is not None:
            return float(getattr(gpu, "compute_capability", "0") or 0) >= 8
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
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def describe_runtime() -> str:
    """e.g. "tensorflow on CPU (Keras 3.13.0, 16 CPU cores)"; imports Keras (seconds)."""
    import keras

    return f"{describe_device()} (Keras {keras.__version__}, {os.cpu_count() or 1} CPU cores)"
