"""Start core calls as workers, show their progress, route their outcome.

The main window's slots call :meth:`TaskRunner.run` and return at once; the result
arrives through ``on_result`` in the GUI thread, errors through the one error handler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt5.QtCore import QObject, pyqtSignal
from PyQt5.QtWidgets import QWidget

from .errors import guard, show_error
from .task_dialog import TaskDialog
from .workers import Worker, start_worker, thread_pool


class TaskRunner(QObject):
    """Owns the running workers (so they are not garbage collected) and their dialogs."""

    busyChanged = pyqtSignal(bool)
    message = pyqtSignal(str)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.parent_widget = parent
        self.active: list[Worker] = []

    def run(self, fn: Callable[..., Any], *args: Any, title: str,
            on_result: Callable[[Any], None] | None = None,
            on_done: Callable[[], None] | None = None,
            on_error: Callable[[BaseException], None] | None = None,
            dialog: QWidget | bool = True, own_thread: bool = False, **kwargs: Any) -> Worker:
        """Run ``fn(*args, progress=, cancel=, **kwargs)`` in a worker.

        ``dialog``: True shows a :class:`TaskDialog`; a widget (e.g. the training dialog)
        is shown instead and must follow the worker itself; False shows nothing.
        ``on_error`` runs after the error's message box (e.g. to open the form again).
        ``own_thread``: run it in a Python thread of its own, not the pool (see
        :func:`workers.start_worker`).
        """
        worker = Worker(fn, *args, title=title, **kwargs)
        return self.run_worker(worker, on_result=on_result, on_done=on_done, on_error=on_error,
                               dialog=dialog, own_thread=own_thread)

    def run_worker(self, worker: Worker, *, on_result: Callable[[Any], None] | None = None,
                   on_done: Callable[[], None] | None = None,
                   on_error: Callable[[BaseException], None] | None = None,
                   dialog: QWidget | bool = True, own_thread: bool = False) -> Worker:
        """Start an already built worker (when its dialog must exist before it starts)."""
        title = worker.title
        signals = worker.signals
        # Connected first, so a message set by ``on_result`` stays on the status bar.
        signals.result.connect(lambda _value: self.message.emit(f"{title}: done"))
        if on_result is not None:
            signals.result.connect(guard(self.parent_widget, on_result, title))
        signals.error.connect(lambda _err: self.message.emit(f"{title}: failed"))
        signals.error.connect(lambda err: show_error(self.parent_widget, err, title))
        if on_error is not None:
            signals.error.connect(guard(self.parent_widget, on_error, title))
        signals.aborted.connect(lambda: self.message.emit(f"{title}: cancelled"))
        signals.finished.connect(lambda: self._finished(worker, on_done))
        if dialog is True:
            worker.dialog = TaskDialog(worker, self.parent_widget)
            worker.dialog.show()
        elif isinstance(dialog, QWidget):
            worker.dialog = dialog
            dialog.show()
        self.active.append(worker)
        self.busyChanged.emit(True)
        self.message.emit(f"{title}...")
        return start_worker(worker, own_thread=own_thread)

    def _finished(self, worker: Worker, on_done: Callable[[], None] | None) -> None:
        if worker in self.active:
            self.active.remove(worker)
        try:
            if on_done is not None:
                on_done()
        finally:
            if not self.active:
                self.busyChanged.emit(False)

    def cancel_all(self, wait_ms: int = 30000) -> bool:
        """Cancel every running task and wait for the pool to drain; True when it did."""
        for worker in list(self.active):
            worker.cancel()
        return thread_pool().waitForDone(wait_ms)
