"""Take the README's GUI screenshots offscreen (QWidget.grab) on a synthetic EM-like volume.

    QT_QPA_PLATFORM=offscreen python docs/make_screenshots.py [--train]

Writes docs/img/main_window.png (dataset loaded, label overlay, orthogonal views) and,
with --train (a few minutes of CPU), docs/img/training.png with the live loss curves of a
short real training, then main_window.png again with that model's prediction drawn over
the labels.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "img"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", action="store_true", help="also train a small model for the curves")
    args = parser.parse_args()

    from PyQt5.QtWidgets import QApplication

    from deepscem.dataset import Dataset
    from deepscem.dataset.synthetic import em_like_volume
    from ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="deepscem_shots_"))
    path = work / "em_demo.hdf5"
    with Dataset.create(path, "EM demo", 1) as ds:
        ds.set_label_aliases(["mito"])
        for i in range(2):
            image, label = em_like_volume((16, 256, 256), seed=i)
            ds.add_sample(f"volume_{i}", image, [label])

    window = MainWindow(safe=True)
    window.resize(1400, 860)
    window.show()
    window.dataset_actions.load(path)
    window.tree.select(path, "volume_0")
    window.tree.set_checked(path, "volume_0", "label_0000", True)
    window.view.ortho_box.setChecked(True)
    window.view._place_cross(120, 140)
    window.view.set_z(8)
    window.view._show_position(120, 140)
    app.processEvents()
    window.view.canvas.fit()
    app.processEvents()
    window.grab().save(str(OUT / "main_window.png"))
    print("wrote", OUT / "main_window.png")

    if args.train:
        train_shot(app, window, path)
    window.models.clear()
    return 0


def train_shot(app, window, path: Path) -> None:
    import time

    from deepscem.config import TrainConfig, UNetConfig
    from ui.dialogs.model_dialogs import TrainRequest

    worker = window.model_actions.create(UNetConfig(filters=8, depth=3, name="unet_demo"))
    while not worker.is_done:
        app.processEvents()
        time.sleep(0.05)
    app.processEvents()
    config = TrainConfig(batch_size=4, patch=(1, 128, 128), steps_per_epoch=24, epochs=5,
                         validation_steps=4, label_focus=0.5, seed=0)
    worker = window.model_actions.train(TrainRequest("unet_demo", (path,), (path,), config))
    dialog = window.model_actions.train_dialog
    shot = OUT / "training.png"

    def grab_live(record) -> None:  # a few batches before the end: curves, bar and ETA all live
        if record.stage == "train" and record.done == record.total - 5:
            app.processEvents()
            dialog.grab().save(str(shot))
            print("wrote", shot)
    worker.signals.progress.connect(grab_live)
    while not worker.is_done:
        app.processEvents()
        time.sleep(0.05)
    app.processEvents()
    # Then predict with it, and show the prediction (from its own file) over the labels.
    from deepscem.config import PredictConfig
    from ui.dialogs.model_dialogs import PredictRequest

    out = path.with_name("em_demo_prediction.hdf5")
    worker = window.model_actions.predict(PredictRequest("unet_demo", path, out, PredictConfig()))
    while not worker.is_done:
        app.processEvents()
        time.sleep(0.05)
    app.processEvents()
    window.tree.select(path, "volume_0")
    window.tree.set_checked(path, "volume_0", f"prediction_0000@{out}", True)
    window.view.set_z(8)
    window.view._show_position(120, 140)
    app.processEvents()
    window.grab().save(str(OUT / "main_window.png"))
    print("wrote", OUT / "main_window.png", "(labels and prediction)")
    for entry in window.models.entries():
        entry.saved = True


if __name__ == "__main__":
    sys.exit(main())
