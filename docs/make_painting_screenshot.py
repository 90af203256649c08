"""The painting screenshot (docs/img/painting.png): real mouse drags and keys (xdotool) on the
real window under Xvfb, on the first 40 slices of Lucchi++ with a blank label.

    Xvfb :66 -screen 0 1600x1000x24 &
    QT_XCB_GL_INTEGRATION=none DISPLAY=:66 QT_QPA_PLATFORM=xcb python docs/make_painting_screenshot.py

Needs xdotool and ../shared/data/lucchi-pp. Draws the outlines of the three largest
mitochondria of the middle slice with the brush (B), fills two of them (F), marks a rectangle
annotated (R) and shows the `annotated` layer; prints the time each edit took to be written.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "img" / "painting.png"
DATA = ROOT.parent / "shared" / "data" / "lucchi-pp"
TMP = Path(tempfile.mkdtemp(prefix="deepscem_paint_shot_"))
os.environ["DEEPSCEM_SETTINGS_DIR"] = str(TMP)  # a fresh view, the user's settings untouched

import numpy as np  # noqa: E402 - after the settings folder is chosen
import tifffile  # noqa: E402
from PyQt5.QtCore import QTimer  # noqa: E402
from PyQt5.QtWidgets import QApplication  # noqa: E402
from scipy import ndimage  # noqa: E402
from skimage.measure import find_contours  # noqa: E402

from deepscem.dataset import Dataset  # noqa: E402

path = TMP / "lucchi_paint.hdf5"
img = tifffile.imread(DATA / "train_image.tif")[:40]
ref = (tifffile.imread(DATA / "train_label.tif")[:40] > 0).astype(np.uint8)
with Dataset.create(path, "lucchi", 1) as ds:
    ds.add_sample("train", img, [None])
    ds.set_label_aliases(["mito"])
app = QApplication(sys.argv)
from ui.main_window import MainWindow  # noqa: E402

w = MainWindow()
w.resize(1500, 950)
w.move(0, 0)
w.show()
w.dataset_actions.load(path)
w.tree.select(path, "train")



def pump(n=10):
    for _ in range(n):
        app.processEvents()
        time.sleep(0.02)


def xdo(*args):
    subprocess.run(["xdotool", *map(str, args)], check=True)


def step():
    v = w.view
    v.ortho_box.setChecked(True)
    pump()
    z = v.z
    lab, n = ndimage.label(ref[z])
    sizes = ndimage.sum(ref[z], lab, range(1, n + 1))
    objs = [o + 1 for o in np.argsort(sizes)[::-1][:3]]
    def glob(r, c):
        p = v.canvas.viewport().mapToGlobal(v.canvas.mapFromScene(c + 0.5, r + 0.5))
        return p.x(), p.y()
    w.activateWindow()
    xdo("mousemove", *glob(256, 320), "click", 1)  # focus the window (no window manager)
    pump(5)
    xdo("key", "b")
    pump(3)
    assert w.painter.tool == "brush", w.painter.tool
    w.painter.set_size(3)
    for obj in objs:
        contour = max(find_contours((lab == obj).astype(float), 0.5), key=len)
        pts = contour[::3].round().astype(int)
        xdo("mousemove", *glob(*pts[0]), "mousedown", 1)
        for r, c in list(pts[1:]) + [pts[0]]:
            xdo("mousemove", *glob(r, c))
            app.processEvents()
        xdo("mouseup", 1)
        pump(5)
    xdo("key", "f")
    pump(3)
    for obj in objs[:2]:  # fill two outlines, the third stays an outline
        r, c = np.round(ndimage.center_of_mass(lab == obj)).astype(int)
        if lab[r, c] != obj:
            ys, xs = np.nonzero(ndimage.binary_erosion(lab == obj, iterations=4))
            r, c = ys[len(ys) // 2], xs[len(xs) // 2]
        xdo("mousemove", *glob(r, c), "click", 1)
        pump(5)
    xdo("key", "r")
    pump(3)
    ys, xs = np.nonzero(lab == objs[2])
    r0, c0 = max(ys.min() - 25, 0), max(xs.min() - 40, 0)
    r1, c1 = min(ys.max() + 25, 511), min(xs.max() + 25, 639)
    xdo("mousemove", *glob(r0, c0), "mousedown", 1)
    for t in np.linspace(0, 1, 8)[1:]:
        xdo("mousemove", *glob(r0 + t * (r1 - r0), c0 + t * (c1 - c0)))
        app.processEvents()
    xdo("mouseup", 1)
    pump(5)
    w.tree.set_checked(path, "train", "annotated", True)
    pump(10)
    xdo("key", "b")
    pump(3)
    w.painter.set_size(14)
    ys, xs = np.nonzero(lab == objs[2])
    xdo("mousemove", *glob(ys.max() + 30, xs.mean()))
    pump(20)
    w.grab().save(str(OUT))
    print("strokes written (ms):", [round(t, 1) for t in w.painter.latencies_ms], flush=True)
    app.quit()

QTimer.singleShot(1500, step)
app.exec_()
