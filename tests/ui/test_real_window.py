"""``run.py`` in a real X window (Xvfb, Qt's xcb platform), driven with xdotool.

The other GUI tests run on Qt's ``offscreen`` platform, which cannot see what broke on a
real desktop: a segfault at start-up (Qt's GLX integration loading Mesa's libLLVM next to
TensorFlow's), menu shortcuts that raise instead of quitting, keys the image view swallows.
This test starts the app as a user would, waits until TensorFlow has loaded, opens a
dataset through File > Load (Ctrl+O and the file dialog), changes Z with Page Up and with
Up after clicking the image, saves a screenshot and quits with Ctrl+Q: exit code 0.

Skipped when Xvfb or xdotool is missing (``.ci/run`` installs them). The screenshot goes
to the test's tmp folder, or to ``$DEEPSCEM_SCREENSHOT_DIR`` when set.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from synthetic_data import synthetic_volume

from deepscem.dataset import Dataset

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("Xvfb", "xdotool")
pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in TOOLS) or sys.platform != "linux",
                                reason="needs Linux with Xvfb and xdotool (installed by .ci/run)")


class LogWatcher:
    """Collects a process' stderr lines in a thread; :meth:`wait_for` a pattern."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float, proc: subprocess.Popen) -> str:
        regex = re.compile(pattern)
        for line in self.lines:
            if regex.search(line):
                return line
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:  # stderr closed: the app ended (crashed?)
                proc.wait(5)
                pytest.fail(f"run.py ended (exit code {proc.returncode}) while waiting for "
                            f"{pattern!r}:\n" + "\n".join(self.lines[-30:]))
            self.lines.append(line)
            if regex.search(line):
                return line
        pytest.fail(f"no {pattern!r} within {timeout} s; stderr:\n" + "\n".join(self.lines[-30:]))


@pytest.fixture
def xvfb():
    """A fresh X server on a free display (``-displayfd`` lets Xvfb pick it)."""
    read, write = os.pipe()
    command = ["Xvfb", "-displayfd", str(write), "-screen", "0", "1440x900x24", "-nolisten", "tcp"]
    quiet = subprocess.DEVNULL
    server = subprocess.Popen(command, pass_fds=(write,), stdout=quiet, stderr=quiet)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    if not number:
        server.kill()
        pytest.skip("Xvfb did not start")
    yield f":{number}"
    server.terminate()
    server.wait(10)


def xdotool(display: str, *args: str) -> str:
    out = subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=display), capture_output=True,
                         text=True, timeout=20)
    return out.stdout.strip()


def focus(display: str, title: str) -> str:
    """Give the keyboard to the window titled ``title`` (there is no window manager)."""
    window = xdotool(display, "search", "--sync", "--onlyvisible", "--name", f"^{title}$").split()[0]
    xdotool(display, "windowfocus", "--sync", window)
    return window


def screenshot(display: str, window: str, folder: Path) -> Path | None:
    """The window as PNG (ImageMagick's ``import``), or None when it is missing."""
    if not shutil.which("import"):
        return None
    path = folder / "main_window_xcb.png"
    subprocess.run(["import", "-window", window, str(path)], env=dict(os.environ, DISPLAY=display),
                   timeout=30, check=True)
    return path


def test_run_py_in_a_real_x_window_loads_a_dataset_changes_z_and_quits_with_ctrl_q(xvfb, tmp_path):
    data = tmp_path / "smoke.hdf5"
    with Dataset.create(data, "smoke", 1) as ds:
        image, mask = synthetic_volume((8, 96, 128))
        ds.add_sample("s0", image, [mask])
    env = {k: v for k, v in os.environ.items() if k != "QT_XCB_GL_INTEGRATION"}  # the app sets it
    env.update(DISPLAY=xvfb, QT_QPA_PLATFORM="xcb", DEEPSCEM_LOG="debug", XDG_CONFIG_HOME=str(tmp_path),
               XDG_RUNTIME_DIR=str(tmp_path))
    app = subprocess.Popen([sys.executable, str(ROOT / "run.py")], cwd=ROOT, env=env, text=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = LogWatcher(app.stderr)
    try:
        # Before the fix, the app segfaulted here (Mesa's LLVM vs TensorFlow's): 5 starts of 5.
        log.wait_for(r"TensorFlow loaded", 90, app)
        time.sleep(1.0)  # the crash came ~1 s after the import
        assert app.poll() is None, "\n".join(log.lines)

        focus(xvfb, "DeepSCEM")
        xdotool(xvfb, "key", "ctrl+o")
        focus(xvfb, "Load datasets")
        xdotool(xvfb, "type", "--delay", "2", str(data))
        xdotool(xvfb, "key", "Return")
        log.wait_for(r"dataset loaded: .*smoke\.hdf5", 20, app)

        window = focus(xvfb, "DeepSCEM")  # the middle slice of 8 is z 4
        xdotool(xvfb, "key", "Page_Up", "Page_Up")
        log.wait_for(r"slice z 6 shown", 10, app)
        # Up after clicking the image (the view would scroll instead; the docs promise Z).
        geometry = dict(re.findall(r"(\w+)=(\d+)", xdotool(xvfb, "getwindowgeometry", "--shell", window)))
        x = int(geometry["X"]) + int(int(geometry["WIDTH"]) * 0.62)
        y = int(geometry["Y"]) + int(int(geometry["HEIGHT"]) * 0.5)
        xdotool(xvfb, "mousemove", "--sync", str(x), str(y), "click", "1")
        xdotool(xvfb, "key", "Up")
        log.wait_for(r"slice z 7 shown", 10, app)

        folder = Path(os.environ.get("DEEPSCEM_SCREENSHOT_DIR") or tmp_path)
        folder.mkdir(parents=True, exist_ok=True)
        shot = screenshot(xvfb, window, folder)
        assert shot is None or shot.stat().st_size > 10_000

        focus(xvfb, "DeepSCEM")
        xdotool(xvfb, "key", "ctrl+q")  # File > Quit's shortcut: raised a TypeError box before
        assert app.wait(20) == 0, "\n".join(log.lines)
        log.wait_for(r"event loop ended \(exit code 0\)", 5, app)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
