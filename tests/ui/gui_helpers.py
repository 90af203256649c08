"""Helpers for the GUI tests (plain functions; the fixtures are in gui_fixtures)."""


def wait_worker(qtbot, worker, timeout=60000):
    """Wait until ``worker`` has emitted all its signals, then run the queued slots.

    (Waiting on ``finished`` with ``qtbot.waitSignal`` races: a worker may finish between a
    check and the connection, and a queued signal emitted before a connection never reaches it.)
    """
    from PyQt5.QtCore import QCoreApplication

    qtbot.waitUntil(lambda: worker.is_done, timeout=timeout)
    QCoreApplication.processEvents()
    qtbot.wait(10)
    return worker
