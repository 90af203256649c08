"""ui.workers: every outcome reaches the GUI thread, and ``finished`` always fires last."""

from __future__ import annotations

import threading
import time

from deepscem.errors import Cancelled, DatasetError
from deepscem.progress import emit
from ui.workers import Worker, start_worker


def _record(worker):
    seen = []
    s = worker.signals
    s.started.connect(lambda: seen.append("started"))
    s.progress.connect(lambda p: seen.append(("progress", p.done, p.total)))
    s.result.connect(lambda v: seen.append(("result", v)))
    s.error.connect(lambda e: seen.append(("error", type(e).__name__)))
    s.aborted.connect(lambda: seen.append("aborted"))
    s.finished.connect(lambda: seen.append("finished"))
    return seen


def test_result_and_progress_arrive_in_order(qtbot):
    def work(n, *, progress=None, cancel=None):
        for i in range(n):
            emit(progress, i + 1, n, "steps")
        return threading.current_thread().name

    worker = Worker(work, 3)
    seen = _record(worker)
    with qtbot.waitSignal(worker.signals.finished, timeout=5000):
        start_worker(worker)
    qtbot.wait(10)
    assert seen[0] == "started"
    assert [s for s in seen if s[0] == "progress"] == [("progress", i, 3) for i in (1, 2, 3)]
    assert seen[-2][0] == "result" and seen[-2][1] != threading.current_thread().name  # ran elsewhere
    assert seen[-1] == "finished"


def test_error_then_finished(qtbot):
    def work(*, progress=None, cancel=None):
        raise DatasetError("broken file")

    worker = Worker(work)
    seen = _record(worker)
    with qtbot.waitSignal(worker.signals.finished, timeout=5000):
        start_worker(worker)
    qtbot.wait(10)
    assert ("error", "DatasetError") in seen and seen[-1] == "finished"
    assert not any(s[0] == "result" for s in seen if isinstance(s, tuple))


def test_cancel_gives_aborted_then_finished(qtbot):
    started = threading.Event()

    def work(*, progress=None, cancel=None):
        started.set()
        for _ in range(500):
            time.sleep(0.01)
            if cancel.cancelled:
                raise Cancelled()
        return "not cancelled"

    worker = Worker(work)
    seen = _record(worker)
    with qtbot.waitSignal(worker.signals.finished, timeout=5000):
        start_worker(worker)
        assert started.wait(5)
        worker.cancel()
    qtbot.wait(10)
    assert "aborted" in seen and seen[-1] == "finished"
    assert not any(isinstance(s, tuple) and s[0] == "result" for s in seen)


def test_each_task_runs_in_a_python_thread_that_ends_with_it(qtbot):
    # not in the pool's own (reused) threads: TensorFlow's bindings cache a Python thread state
    # per OS thread, and a pool thread reused after a training crashed Predict (ui/workers.py)
    threads = []

    def work(*, progress=None, cancel=None):
        threads.append(threading.current_thread())

    for _ in range(2):
        worker = Worker(work, title="probe")
        with qtbot.waitSignal(worker.signals.finished, timeout=5000):
            start_worker(worker)
    for thread in threads:
        assert not isinstance(thread, threading._DummyThread) and thread.name == "deepscem: probe"
        thread.join(5)
        assert not thread.is_alive()
    assert threads[0] is not threads[1]
