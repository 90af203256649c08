"""Help > About: version, compute device and how to cite. The device is detected in a
worker (it needs TensorFlow), so About never blocks the window."""

from __future__ import annotations

import os
import platform

from PyQt5.QtWidgets import QMessageBox, QWidget

import deepscem


def detect_device(*, progress=None, cancel=None) -> str:
    """e.g. "TensorFlow 2.20.0 (Keras 3.13.0) on CPU, 16 cores" or "... on GPU: NVIDIA H100"."""
    import keras

    backend = keras.backend.backend()
    cores = os.cpu_count() or 1
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        names = []
        for gpu in gpus:
            try:
                names.append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
            except Exception:  # noqa: BLE001 - details are optional
                names.append(gpu.name)
        where = f"GPU: {', '.join(names)}" if names else f"CPU, {cores} cores"
        return f"TensorFlow {tf.__version__} (Keras {keras.__version__}) on {where}"
    if backend == "torch":
        import torch

        gpu = torch.cuda.is_available()
        where = f"GPU: {torch.cuda.get_device_name(0)}" if gpu else f"CPU, {cores} cores"
        return f"PyTorch {torch.__version__} (Keras {keras.__version__}) on {where}"
    return f"Keras {keras.__version__} ({backend} backend), {cores} CPU cores"


def about_text(device: str | None) -> str:
    return (f"<h3>DeepSCEM {deepscem.__version__}</h3>"
            "<p>Deep-learning segmentation of organelles in cellular electron microscopy.</p>"
            f"<p><b>Device:</b> {device or 'detecting... (TensorFlow is still loading)'}<br>"
            f"<b>Python:</b> {platform.python_version()} on {platform.system()}</p>"
            f"<p><b>How to cite:</b><br>{deepscem.CITATION}</p>")


def show_about(parent: QWidget | None, device: str | None) -> None:
    QMessageBox.about(parent, "About DeepSCEM", about_text(device))
