"""The device line, GPU and bfloat16 answers for Keras' JAX backend (jax itself is faked: it is
not a dependency; bench/README.md "Batch building on a GPU" ran the real one)."""

import sys
import types


def test_the_jax_backend_is_recognised(monkeypatch):
    import keras

    from deepscem import devices

    class Gpu:
        device_kind = "NVIDIA H200"
        compute_capability = "9.0"

    fake = types.ModuleType("jax")
    fake.devices = lambda kind=None: [Gpu()] if kind == "gpu" else []
    monkeypatch.setitem(sys.modules, "jax", fake)
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    assert devices.describe_device() == "jax on GPU (NVIDIA H200)"
    assert devices.has_gpu() and devices.bf16_supported()
    Gpu.compute_capability = "7.5"  # a Turing card: no fast bfloat16
    assert not devices.bf16_supported()

    def no_gpu_platform(kind=None):
        raise RuntimeError("Unknown backend: 'gpu' requested, but no platforms that are instances of gpu")

    fake.devices = no_gpu_platform
    assert devices.describe_device() == "jax on CPU" and not devices.has_gpu()
