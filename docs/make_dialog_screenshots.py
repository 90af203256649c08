"""Take the GUI manual's dialog screenshots offscreen (QWidget.grab) on a synthetic EM-like dataset.

    QT_QPA_PLATFORM=offscreen python docs/make_dialog_screenshots.py

Writes docs/img/dialog_add_sample.png, dialog_new_model.png, dialog_train.png,
dialog_predict.png and dialog_evaluation.png. The evaluation compares the dataset with a copy
whose label was dilated by 2 voxels (no model needed), so its scores are those of that copy.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "img"


def make_datasets(work: Path) -> tuple[Path, Path]:
    """em.hdf5 (2 samples, label "mito") and em_dilated.hdf5 (the labels dilated by 2 voxels)."""
    from scipy import ndimage

    from deepscem.dataset import Dataset
    from deepscem.dataset.synthetic import em_like_volume

    path, dilated = work / "em.hdf5", work / "em_dilated.hdf5"
    with Dataset.create(path, "EM demo", 1) as ds, Dataset.create(dilated, "EM dilated", 1) as dd:
        for ds_ in (ds, dd):
            ds_.set_label_aliases(["mito"])
        for i in range(2):
            image, label = em_like_volume((8, 128, 128), seed=i)
            ds.add_sample(f"volume_{i}", image, [label])
            grown = ndimage.binary_dilation(label, iterations=2).astype("uint8")
            dd.add_sample(f"volume_{i}", image, [grown])
    return path, dilated


def grab(widget, name: str, width: int = 0) -> None:
    from PyQt5.QtWidgets import QApplication

    widget.show()
    widget.adjustSize()
    if width:
        widget.resize(max(width, widget.width()), widget.height())
    QApplication.processEvents()
    widget.grab().save(str(OUT / name))
    print("wrote", OUT / name)
    widget.close()


def main() -> int:
    from PyQt5.QtWidgets import QApplication

    from deepscem.evaluation.report import evaluate
    from ui.dataset_tree import read_summary
    from ui.dialogs.dataset_dialogs import AddSampleDialog
    from ui.dialogs.evaluation_result import EvaluationResultDialog
    from ui.dialogs.model_dialogs import CreateModelDialog, PredictDialog, TrainDialog

    app = QApplication.instance() or QApplication([])
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="deepscem_dialogs_"))
    path, dilated = make_datasets(work)
    summaries = [read_summary(path), read_summary(dilated)]

    # Paths as a user would see them (the fields are only shown, nothing is read from them).
    grab(AddSampleDialog(summaries[:1], path, "~/em/volume_2.tif", ["~/em/volume_2_label.tif"]),
         "dialog_add_sample.png", 520)
    grab(CreateModelDialog(locked_outputs=1), "dialog_new_model.png")
    import keras  # noqa: F401  (as in the app once a model exists: the device is known)

    train = TrainDialog(["unet"], summaries[:1], "unet", path, dim=2, contexts={"unet": 0})
    train.choose_from_data()  # the training dataset ticked, its automatic configuration shown
    grab(train, "dialog_train.png", 860)
    predict = PredictDialog(["unet"], summaries[:1], "unet", path)
    predict.output.setText("~/em/em_prediction.hdf5")
    grab(predict, "dialog_predict.png", 700)
    report = evaluate(path, dilated)
    dialog = EvaluationResultDialog(report, f"{dilated.name} vs {path.name}")
    dialog.resize(900, 330)
    dialog.show()
    app.processEvents()
    dialog.grab().save(str(OUT / "dialog_evaluation.png"))
    print("wrote", OUT / "dialog_evaluation.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
