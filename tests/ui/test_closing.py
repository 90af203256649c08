"""Closing the window: ask before losing a training or unsaved models; never block the GUI."""

from __future__ import annotations

import threading
import time

from gui_helpers import wait_worker
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QMessageBox

from ui.model_list import ModelEntry

pytest_plugins = ["gui_fixtures"]


def test_closing_during_training_asks_then_cancels_without_blocking_the_gui(window, qtbot, messages,
                                                                           monkeypatch):
    release, released = threading.Event(), []

    def training(*, progress=None, cancel=None):
        # `release` is set by a GUI-thread timer: it fires only if closing did not block that
        # thread (it waited up to 30 s on the worker, so the window froze).
        released.append(release.wait(10))
        while not cancel.cancelled:
            time.sleep(0.005)
        cancel.raise_if_cancelled()

    worker = window.tasks.run(training, title="Training m", dialog=False)
    window.model_actions.training.add("m")
    window.models.add_entry(ModelEntry("m", model=None, info=None))
    shutdowns = []
    monkeypatch.setattr(window.view, "shutdown", lambda: shutdowns.append(1))

    messages.answer = QMessageBox.No
    assert not window.close()
    assert messages.shown[-1][1] == "Training is running" and "lost" in messages.shown[-1][2]
    assert window.isVisible() and not worker.cancelled

    messages.answer = QMessageBox.Yes
    QTimer.singleShot(50, release.set)
    window.close()
    titles = [title for _, title, _ in messages.shown]
    assert titles[-2:] == ["Training is running", "Unsaved models"]  # both asked
    assert not window.isVisible() and worker.cancelled and not shutdowns  # hidden, still stopping
    wait_worker(qtbot, worker)
    qtbot.waitUntil(lambda: shutdowns == [1], timeout=5000)  # closed for real once it stopped
    assert released == [True]


def test_closing_with_unsaved_models_still_asks(window, messages):
    window.models.add_entry(ModelEntry("m", model=None, info=None))
    messages.answer = QMessageBox.No
    assert not window.close() and window.isVisible()
    assert messages.shown[-1][1] == "Unsaved models"
    messages.answer = QMessageBox.Yes
    assert window.close() and not window.isVisible()

