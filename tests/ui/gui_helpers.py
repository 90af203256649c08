"""Helpers for the GUI tests (plain functions; the fixtures are in gui_fixtures)."""


def wait_worker(qtbot, worker, timeout=60000):
    """Wait until ``worker`` finished (finished always fires), then let queued slots run."""
    if not worker.is_done:
        with qtbot.waitSignal(worker.signals.finished, timeout=timeout):
            pass
    qtbot.wait(20)
    return worker
