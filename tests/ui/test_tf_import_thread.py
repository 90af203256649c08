"""TensorFlow's first import in the GUI happens in a thread of its own, not the worker pool:
imported in a pool thread, the next task the pool ran in that thread crashed the process
(segfault while building a Keras layer: start the GUI, click New model some seconds later)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("keras")

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import sys, time
    from PyQt5.QtWidgets import QApplication
    app = QApplication(sys.argv[:1])
    from ui.main_window import MainWindow
    from deepscem.config import UNetConfig
    assert "tensorflow" not in sys.modules  # the first import is the window's own

    def wait(worker):
        while not worker.is_done:
            app.processEvents()
            time.sleep(0.01)
        app.processEvents()

    window = MainWindow()
    window.show()
    wait(window.detect_device())
    for k in range(3):  # tasks the pool may hand to one thread
        wait(window.model_actions.create(UNetConfig(filters=2, depth=1, name=f"m{k}")))
    print("models:", [e.name for e in window.models.entries()], flush=True)
""")


def test_models_are_built_after_tensorflow_loaded_in_the_background(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT),
           "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONFAULTHANDLER": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "models: ['m0', 'm1', 'm2']" in done.stdout
