"""Screenshots of the Objects panel: the object table with a highlighted object, then a split.

    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_XCB_GL_INTEGRATION=none QT_QPA_PLATFORM=xcb \\
        python docs/make_object_screenshots.py --dataset lucchi_pred.hdf5 --sample test

DATASET: a dataset with an ``instance_0000`` layer (e.g. a Lucchi++ prediction after
``run.py instances``); it is copied first (the split is written into the copy). Without
``--dataset`` a synthetic EM-like volume is used, its objects labelled from its labels.
Writes docs/img/objects_table.png and docs/img/objects_split.png.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "img"


def wait(app, until, timeout=120.0) -> None:
    end = time.time() + timeout
    while not until() and time.time() < end:
        app.processEvents()
        time.sleep(0.02)
    app.processEvents()


def synthetic(work: Path) -> tuple[Path, str]:
    from deepscem.dataset import Dataset
    from deepscem.dataset.synthetic import em_like_volume
    from deepscem.postprocessing.instance_layers import add_instance_layers

    path = work / "em_demo.hdf5"
    with Dataset.create(path, "EM demo", 1) as ds:
        image, label = em_like_volume((16, 256, 256), seed=0)
        ds.add_sample("volume_0", image, [label], voxel_size=(5, 5, 5))
        add_instance_layers(ds, source="label")
    return path, "volume_0"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--sample")
    args = parser.parse_args()

    import numpy as np
    from PyQt5.QtCore import Qt
    from PyQt5.QtWidgets import QApplication

    from deepscem.dataset import Dataset
    from ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="deepscem_objects_"))
    if args.dataset:
        path, sample = work / args.dataset.name, args.sample
        shutil.copy(args.dataset, path)
    else:
        path, sample = synthetic(work)
    window = MainWindow(safe=True)
    window.resize(1600, 940)
    window.show()
    panel = window.objects
    window.objects_dock.show()
    window.resizeDocks([window.objects_dock], [620], Qt.Horizontal)
    counts: list[int] = []
    panel.measured.connect(counts.append)
    window.dataset_actions.load(path)
    window.tree.select(path, sample)
    wait(app, lambda: counts)
    panel.table.sortItems(1, Qt.DescendingOrder)  # largest first
    rows = sorted(panel.table.rows.values(), key=lambda r: -r["volume"])
    row = rows[0]  # the largest object
    window.view.canvas.fit()
    panel.table.select_id(row["id"])
    panel.jump_to(row)
    wait(app, lambda: not window.view.loading)
    window.grab().save(str(OUT / "objects_table.png"))
    print("wrote", OUT / "objects_table.png", f"({counts[-1]} objects, object {row['id']})")

    # a proofreading step: split that object by two clicks along its longest in-plane extent
    with Dataset.open(path) as ds:
        plane = ds.sample(sample).read_layer(panel.layer)[window.view.z] == row["id"]
    ys, xs = np.nonzero(plane)
    axis = xs if np.ptp(xs) >= np.ptp(ys) else ys
    order = np.argsort(axis, kind="stable")
    # a fifth of the way in from either end of the object's longest in-plane extent
    seeds = [(int(ys[order[k]]), int(xs[order[k]])) for k in (len(order) // 5, -len(order) // 5)]
    done = len(counts)
    panel.buttons["split"].click()
    for y, x in seeds:
        window.view.canvas.clicked.emit(y, x)
    wait(app, lambda: len(counts) > done)
    window.view.highlight = None
    window.view.reload()
    wait(app, lambda: not window.view.loading)
    window.grab().save(str(OUT / "objects_split.png"))
    print("wrote", OUT / "objects_split.png", f"({panel.status.text()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
