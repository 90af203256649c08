"""Run core calls off the GUI thread, with the core's progress/cancel seam as Qt signals.

Shape after superqt's ``_qthreading``: a :class:`Worker` (a ``QRunnable``) owns a
:class:`WorkerSignals` object whose signals are emitted from the pool thread and
delivered queued to receivers living in the GUI thread:

* ``started``  – the call began;
* ``progress`` – a :class:`deepscem.progress.Progress` record;
* ``result``   – the call's return value;
* ``error``    – the exception it raised (anything but a cancel);
* ``aborted``  – it stopped because :meth:`Worker.cancel` was called (``Cancelled``);
* ``finished`` – always, last, whatever happened (so a window never stays disabled).

The wrapped function receives keyword-only ``progress=`` and ``cancel=``, exactly what
the core's long functions take.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PyQt5.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal

from deepscem.errors import Cancelled
from deepscem.progress import CancelToken, Progress


class WorkerSignals(QObject):
    started = pyqtSignal()
    progress = pyqtSignal(object)
    result = pyqtSignal(object)
    error = pyqtSignal(object)
    aborted = pyqtSignal()
    finished = pyqtSignal()


class Worker(QRunnable):
    """One call of ``fn(*args, progress=..., cancel=..., **kwargs)`` in a thread pool.

    >>> worker = Worker(dataset.add_sample, "s1", image, labels)   # doctest: +SKIP
    >>> worker.signals.result.connect(on_done); start_worker(worker)
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, title: str = "", **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the owner keeps it until ``finished``
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.title = title or getattr(fn, "__name__", "task")
        self.token = CancelToken()
        self.signals = WorkerSignals()
        self.is_running = False
        self.is_done = False

    def cancel(self) -> None:
        """Ask the call to stop at its next unit (batch, tile, slab)."""
        self.token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def _report(self, record: Progress) -> None:
        self.signals.progress.emit(record)

    def run(self) -> None:  # runs in the pool thread
        """Call the function in a Python thread of its own, which the pool thread waits for.

        TensorFlow's bindings (pybind11) cache a Python thread state per OS thread, and the
        pool reuses its threads after PyQt has discarded the thread state of the task before:
        a task that used TensorFlow left such a stale state behind, and the next one in that
        thread crashed the process (segfault in ``PyGraph::version_def``: Predict right after
        Train in a real window). A Python thread ends with its task, and takes that cache with it.
        """
        thread = self.thread()
        thread.start()
        thread.join()

    def thread(self) -> threading.Thread:
        """A new Python thread that runs :meth:`call` (not started)."""
        return threading.Thread(target=self.call, name=f"deepscem: {self.title}", daemon=True)

    def call(self) -> None:
        """Run the function here and report through the signals (what :meth:`run` does in a
        thread of its own)."""
        self.is_running = True
        signals = self.signals
        try:
            signals.started.emit()
            value = self.fn(*self.args, progress=self._report, cancel=self.token, **self.kwargs)
        except Cancelled:
            signals.aborted.emit()
        except BaseException as err:  # noqa: BLE001 - every failure must reach the GUI
            signals.error.emit(err)
        else:
            # A call may stop early on cancel and still return something useful (training
            # returns the best model so far): that is a result, not an abort.
            signals.result.emit(value)
        finally:
            self.is_running = False
            signals.finished.emit()
            # Set after the last emit: once True, every signal is queued for the GUI thread
            # (a test or script can wait for it, then process events, without racing).
            self.is_done = True


_POOL: QThreadPool | None = None


def thread_pool() -> QThreadPool:
    """The pool running workers: a private one, so tests can wait for it to drain."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        # Two workers at most: TensorFlow uses every core itself, and the HDF5 library
        # serialises calls anyway, so more threads would only add contention.
        _POOL.setMaxThreadCount(2)
    return _POOL


def start_worker(worker: Worker, *, own_thread: bool = False) -> Worker:
    """Queue ``worker`` on the pool; returns it for chaining.

    ``own_thread``: start it at once in a new Python thread, outside the pool's limit of two
    (the background import of TensorFlow, which must not hold up a task). Either way the
    function runs in a Python thread that ends with it (:meth:`Worker.run`): TensorFlow keeps
    per-thread state tied to a Python thread state, and in a reused pool thread that state had
    gone stale (segfaults: 'New model' 15 s after start, tests/ui/test_tf_import_thread.py;
    Predict right after Train).
    """
    if own_thread:
        worker.thread().start()
    else:
        thread_pool().start(worker)
    return worker
