"""Start the desktop application: ``run_app(safe=True) -> int`` (called by ``run.py``).

The window is shown before anything heavy is imported; TensorFlow is then loaded in the
background (to name the device in Help > About and to make the first model action quick).

``DEEPSCEM_GUI_QUIT_AFTER_SHOW=1`` quits as soon as the window is shown and prints
``time-to-window: X.XX s`` (seconds since the process started), to measure start-up.
"""

from __future__ import annotations

import os
import sys
import time


def _process_start() -> float:
    """Wall-clock time the process started (psutil), or now if unknown."""
    try:
        import psutil

        return psutil.Process().create_time()
    except Exception:  # noqa: BLE001 - only used for a measurement
        return time.time()


def run_app(safe: bool = True, argv: list[str] | None = None) -> int:
    """Open the main window (``safe=False``: number of labels unlocked) and run the event loop."""
    from PyQt5.QtCore import Qt, QTimer
    from PyQt5.QtWidgets import QApplication

    from ui.errors import install_excepthook
    from ui.main_window import MainWindow

    QApplication.setAttribute(Qt.AA_EnableHighDpiScaling, True)
    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("DeepSCEM")
    window = MainWindow(safe=safe)
    install_excepthook(lambda: window)
    window.show()

    if os.environ.get("DEEPSCEM_GUI_QUIT_AFTER_SHOW"):
        def report() -> None:
            print(f"time-to-window: {time.time() - _process_start():.2f} s", flush=True)
            app.quit()
        QTimer.singleShot(0, report)  # runs once the first show/paint events are processed
    else:
        QTimer.singleShot(500, window.detect_device)
    code = app.exec_()
    window.tasks.cancel_all(5000)
    return code
