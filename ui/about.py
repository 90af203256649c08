"""Help > About: version, compute device and how to cite. The device is detected in a
worker (it needs TensorFlow), so About never blocks the window."""

from __future__ import annotations

import platform

from PyQt5.QtWidgets import QMessageBox, QWidget

import deepscem


def detect_device(*, progress=None, cancel=None) -> str:
    """e.g. "tensorflow on CPU (Keras 3.13.0, 16 CPU cores)"; imports Keras, so run it in a worker."""
    from deepscem.devices import describe_runtime

    return describe_runtime()


def about_text(device: str | None) -> str:
    return (f"<h3>DeepSCEM {deepscem.__version__}</h3>"
            "<p>Deep-learning segmentation of organelles in cellular electron microscopy.</p>"
            f"<p><b>Device:</b> {device or 'detecting... (TensorFlow is still loading)'}<br>"
            f"<b>Python:</b> {platform.python_version()} on {platform.system()}</p>"
            f"<p><b>How to cite:</b><br>{deepscem.CITATION}</p>")


def show_about(parent: QWidget | None, device: str | None) -> None:
    QMessageBox.about(parent, "About DeepSCEM", about_text(device))
