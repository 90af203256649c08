"""Which Keras backend and device computations run on, in words (printed before training/predicting)."""

from __future__ import annotations


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
    return f"{backend}"


def has_gpu() -> bool:
    """True when the Keras backend computes on a GPU."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if keras.backend.backend() == "torch":
        import torch

        return bool(torch.cuda.is_available())
    return False
