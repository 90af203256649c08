"""Start the desktop application: ``run_app(safe=True) -> int`` (called by ``run.py``).

The window is shown before anything heavy is imported; TensorFlow is then loaded in the
background (to name the device in Help > About and to make the first model action quick).

``DEEPSCEM_GUI_QUIT_AFTER_SHOW=1`` quits as soon as the window is shown and prints
``time-to-window: X.XX s`` (seconds since the process started), to measure start-up.
``DEEPSCEM_LOG=info`` (or debug) logs the start-up steps on stderr, among them
``TensorFlow loaded: <device>`` once the background import is done.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("deepscem.gui")


def avoid_glx_integration() -> None:
    """Keep Qt's xcb platform off GLX unless the user chose otherwise (before Qt starts).

    Qt's GLX integration loads Mesa's driver and its libLLVM into the process; TensorFlow,
    imported later in the background, brings its own LLVM and the two clash: on Debian
    with ``libgl1-mesa-dri`` (Xvfb, most desktops) ``run.py`` segfaulted ~1 s after the
    window appeared, 5 starts out of 5. The window is painted by the raster engine, so
    nothing is lost; a user who needs GLX sets ``QT_XCB_GL_INTEGRATION`` themselves.
    """
    os.environ.setdefault("QT_XCB_GL_INTEGRATION", "none")


def configure_logging() -> None:
    """``DEEPSCEM_LOG=info|debug`` sends the GUI's log lines to stderr (default: warnings)."""
    level = getattr(logging, os.environ.get("DEEPSCEM_LOG", "warning").upper(), logging.WARNING)
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("deepscem: %(message)s"))
        log.addHandler(handler)
    log.setLevel(level)


def seconds_since_process_start() -> float | None:
    """Seconds since this process started (Linux: /proc, 10 ms resolution), else None.

    psutil's create_time adds the boot time rounded to whole seconds, too coarse here.
    """
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run_app(safe: bool = True, argv: list[str] | None = None, files: list[str] | None = None) -> int:
    """Open the main window (``safe=False``: number of labels unlocked) with ``files``
    (datasets, OME-Zarr images) loaded, and run the event loop."""
    avoid_glx_integration()  # before the first Qt import: the platform plugin reads it at start
    configure_logging()
    from PyQt5.QtCore import Qt, QTimer
    from PyQt5.QtWidgets import QApplication

    from .errors import install_excepthook
    from .main_window import MainWindow

    app = QApplication.instance()
    if app is None:
        QApplication.setAttribute(Qt.AA_EnableHighDpiScaling, True)  # only before the app exists
        app = QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("DeepSCEM")
    window = MainWindow(safe=safe)
    install_excepthook(lambda: window)
    window.show()
    for path in files or []:
        window.dataset_actions.load_or_report(path)

    if os.environ.get("DEEPSCEM_GUI_QUIT_AFTER_SHOW"):
        def report() -> None:
            elapsed = seconds_since_process_start()
            shown = f"{elapsed:.2f} s" if elapsed is not None else "unknown (no /proc)"
            heavy = sorted(m for m in ("tensorflow", "keras", "torch") if m in sys.modules)
            print(f"time-to-window: {shown}; heavy modules loaded: {', '.join(heavy) or 'none'}",
                  flush=True)
            app.quit()
        QTimer.singleShot(0, report)  # runs once the first show/paint events are processed
    else:
        QTimer.singleShot(500, window.detect_device)
    code = app.exec_()
    log.info("event loop ended (exit code %d)", code)
    window.tasks.cancel_all(5000)
    return code
