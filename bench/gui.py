"""GUI responsiveness: time to window, and what showing a large volume costs.

    QT_QPA_PLATFORM=offscreen python bench/gui.py [--gib 2] [--keep FILE]

Prints (numbers, not pass/fail):
- ``python run.py`` time to window (3 runs; the app prints it with DEEPSCEM_GUI_QUIT_AFTER_SHOW);
- for a generated uint8 volume of ``--gib`` GiB stored as a DeepSCEM dataset: time to load the
  dataset into the list and show its middle slice, per Z change (with a label overlay), to draw
  the XZ / YZ planes, and the process's peak RSS, which stays far below the volume size
  because only the visible planes are read;
- painting on the 4096² slice: the GUI thread's time per mouse move of a brush stroke (only
  the dirty rectangle is composed again), at the fitted zoom and at 1:1, and the time to write
  a stroke into the file on release (its bounding box, chunk by chunk, flushed).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def time_to_window(runs: int = 3) -> list[float]:
    env = dict(os.environ, DEEPSCEM_GUI_QUIT_AFTER_SHOW="1")
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, str(ROOT / "run.py")], env=env, capture_output=True, text=True)
        match = re.search(r"time-to-window: ([\d.]+) s", out.stdout)
        times.append(float(match.group(1)) if match else float("nan"))
    return times


def make_volume(folder: Path, gib: float) -> Path:
    """A (Z, 4096, 4096) uint8 volume with a blob label, added through the core from .npy files."""
    import numpy as np

    from deepscem.dataset import Dataset

    z = max(1, int(gib * 2**30 / 4096**2))
    image = np.lib.format.open_memmap(folder / "image.npy", "w+", np.uint8, (z, 4096, 4096))
    label = np.lib.format.open_memmap(folder / "label.npy", "w+", np.uint8, (z, 4096, 4096))
    yy, xx = np.mgrid[:4096, :4096]
    for k in range(z):  # slab by slab: never the whole volume in memory
        image[k] = ((yy + xx + 13 * k) % 251).astype(np.uint8)
        label[k] = ((yy - 2048) ** 2 + (xx - 2048 - 8 * k) ** 2 < 900**2)
    image.flush()
    label.flush()
    del image, label
    path = folder / "big.hdf5"
    with Dataset.create(path, "big", 1) as ds:
        ds.add_sample("volume", str(folder / "image.npy"), [str(folder / "label.npy")])
    (folder / "image.npy").unlink()
    (folder / "label.npy").unlink()
    return path


def stroke_latency(app, window, shape) -> None:
    """Brush strokes through the paint controller's press / drag / release (the slots the
    canvas signals call), timed on the GUI thread."""
    import time as _time

    view, painter = window.view, window.painter
    painter.set_tool("brush")
    painter.set_size(15)
    while view.loading:
        app.processEvents()
        _time.sleep(0.001)
    for label, zoom in (("fitted", None), ("1:1", 1.0)):
        if zoom:
            view.canvas.resetTransform()
            view.canvas.zoom(zoom)
            view.canvas.centerOn(shape[2] / 2, shape[1] / 2)
            app.processEvents()
        moves = []
        for k in range(3):  # three strokes of 60 moves, 8 px apart
            row = shape[1] // 2 + 40 * k
            painter._press(view.canvas, row, 1000)
            for i in range(1, 61):
                t = _time.perf_counter()
                painter._drag(view.canvas, row + (i % 7), 1000 + 8 * i)
                app.processEvents()  # includes repainting the dirty rectangle
                moves.append(_time.perf_counter() - t)
            painter._release(view.canvas, row, 1480)
            while view.loading:
                app.processEvents()
                _time.sleep(0.001)
        moves.sort()
        print(f"brush stroke on {shape[1]}x{shape[2]} at {label} zoom (stride {view.canvas.stride()}): "
              f"per mouse move median {moves[len(moves) // 2] * 1000:.1f} ms, max {moves[-1] * 1000:.1f} ms")
    commits = sorted(painter.latencies_ms)
    print(f"stroke written to the file on release (bounding box, flushed): median "
          f"{commits[len(commits) // 2]:.0f} ms, max {commits[-1]:.0f} ms over {len(commits)} strokes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=2.0, help="volume size in GiB (uint8)")
    parser.add_argument("--keep", type=Path, help="reuse/keep the generated dataset at this path")
    args = parser.parse_args()

    ttw = time_to_window()
    print(f"run.py time to window: {', '.join(f'{t:.2f}' for t in ttw)} s")

    from PyQt5.QtWidgets import QApplication

    from ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    folder = Path(tempfile.mkdtemp(prefix="deepscem_gui_bench_"))
    path = args.keep if args.keep and args.keep.exists() else None
    if path is None:
        t = time.perf_counter()
        path = make_volume(folder, args.gib)
        if args.keep:
            path.rename(args.keep)
            path = args.keep
        print(f"generated {path.stat().st_size / 2**30:.2f} GiB dataset in {time.perf_counter() - t:.1f} s")
    import psutil

    proc = psutil.Process()
    rss = [proc.memory_info().rss / 2**20]  # sampled after each step (the generation's peak excluded)

    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    t = time.perf_counter()
    window.dataset_actions.load(path)
    load_held = time.perf_counter() - t  # the GUI thread part (slices over 2048² load in the background)
    while window.view.loading:
        app.processEvents()
        time.sleep(0.001)
    app.processEvents()
    t_load = time.perf_counter() - t  # load() selects the first sample: this includes showing it
    rss.append(proc.memory_info().rss / 2**20)
    shape = window.tree.summaries[path].samples["volume"][0]
    window.tree.set_checked(path, "volume", "label_0000", True)
    zs = list(range(0, shape[0], max(1, shape[0] // 10)))
    t = time.perf_counter()
    blocked = []  # the longest the GUI thread was held at once per Z change (reads run in the background)
    for z in zs:
        t_call = time.perf_counter()
        window.view.set_z(z)
        longest = time.perf_counter() - t_call
        while True:  # until the slice is read and drawn
            t_call = time.perf_counter()
            app.processEvents()
            longest = max(longest, time.perf_counter() - t_call)
            if not window.view.loading:
                break
            time.sleep(0.001)
        blocked.append(longest)
        rss.append(proc.memory_info().rss / 2**20)
    t_z = (time.perf_counter() - t) / len(zs)
    sync = []  # the same slices read and drawn on the GUI thread (how Z changes worked before)
    for z in zs:
        window.view.z = z
        t_call = time.perf_counter()
        window.view.refresh(ortho=False)
        sync.append(time.perf_counter() - t_call)
    t = time.perf_counter()
    window.view.ortho_box.setChecked(True)
    ortho_held = time.perf_counter() - t  # the GUI thread's part; the planes are read in the background
    while window.view.loading:
        app.processEvents()
        time.sleep(0.001)
    t_ortho = time.perf_counter() - t
    rss.append(proc.memory_info().rss / 2**20)
    print(f"volume {shape} uint8 ({shape[0] * shape[1] * shape[2] / 2**30:.2f} GiB) + one label")
    print(f"load into the list and show the middle slice: {t_load * 1000:.0f} ms (the GUI thread held "
          f"{load_held * 1000:.0f} ms of it)")
    print(f"per Z change, image + label overlay ({shape[1]}x{shape[2]}): {t_z * 1000:.0f} ms until shown; "
          f"the GUI thread held at most {max(blocked) * 1000:.0f} ms at a time (median "
          f"{sorted(blocked)[len(blocked) // 2] * 1000:.0f} ms: drawing; the read is in the background)")
    print(f"  side by side, reading on the GUI thread: it is held {max(sync) * 1000:.0f} ms at most "
          f"(median {sorted(sync)[len(sync) // 2] * 1000:.0f} ms) per Z change")
    print(f"XZ + YZ planes through all {shape[0]} slices: {t_ortho * 1000:.0f} ms until shown "
          f"(the GUI thread held {ortho_held * 1000:.0f} ms when they were switched on)")
    print(f"RSS while viewing: max {max(rss):.0f} MiB (before the window: {rss[0]:.0f} MiB)")
    window.view.ortho_box.setChecked(False)
    stroke_latency(app, window, shape)
    if not args.keep:
        path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
