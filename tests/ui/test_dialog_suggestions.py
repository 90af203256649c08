"""What the dialogs propose follows what the user chose, and never overrides what they typed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from gui_helpers import wait_worker
from PyQt5.QtCore import QMimeData, QPoint, Qt, QUrl
from PyQt5.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PyQt5.QtWidgets import QApplication

from deepscem.errors import DatasetError
from ui.dataset_tree import DatasetSummary
from ui.dialogs.dataset_dialogs import AddSampleDialog
from ui.dialogs.model_dialogs import EvaluateDialog, PredictDialog, reference_for

pytest_plugins = ["gui_fixtures"]


def summary(path: Path, samples=("s0", "s1"), layers=("image", "label_0000")) -> DatasetSummary:
    return DatasetSummary(path, path.stem, 1, ["mito"], {s: ((4, 32, 32), list(layers)) for s in samples})


def test_predict_output_follows_the_dataset_until_the_user_types_one(qtbot, tmp_path):
    a, b = summary(tmp_path / "a.hdf5"), summary(tmp_path / "b.hdf5")
    dialog = PredictDialog(["unet"], [a, b], "unet", a.path)
    qtbot.addWidget(dialog)
    assert dialog.output.text() == str(tmp_path / "a_prediction.hdf5")
    dialog.dataset_combo.setCurrentIndex(1)
    assert dialog.output.text() == str(tmp_path / "b_prediction.hdf5")  # stayed "a_..." before
    dialog.output.setText(str(tmp_path / "mine.hdf5"))
    dialog.dataset_combo.setCurrentIndex(0)
    assert dialog.output.text() == str(tmp_path / "mine.hdf5")


def test_evaluate_proposes_the_predictions_source_as_reference(qtbot, tmp_path):
    other = summary(tmp_path / "other.hdf5", samples=("x0",))
    source = summary(tmp_path / "I3.hdf5")
    unrelated = summary(tmp_path / "J.hdf5", samples=("s0",))
    pred = summary(tmp_path / "I3_prediction.hdf5", layers=("image", "prediction_0000"))
    datasets = [other, unrelated, source, pred]
    dialog = EvaluateDialog(datasets)
    qtbot.addWidget(dialog)
    # Before: reference = the first loaded dataset ("other", no sample in common: empty table).
    assert dialog.segmentation.currentData() == str(pred.path)
    assert dialog.reference.currentData() == str(source.path)
    # What the GUI recorded when it predicted wins over the sample-name guess.
    assert reference_for(pred.path, datasets, {pred.path: unrelated.path}) == unrelated.path
    assert reference_for(other.path, [other, pred]) is None  # nothing in common: no guess
    dialog.segmentation.setCurrentIndex(1)  # J: its samples are in I3 too
    assert dialog.reference.currentData() == str(source.path)


def test_add_sample_name_follows_the_typed_image_path_and_keeps_a_typed_name(qtbot, tmp_path):
    dialog = AddSampleDialog([summary(tmp_path / "d.hdf5")], tmp_path / "d.hdf5")
    qtbot.addWidget(dialog)
    dialog.image_edit.edit.setFocus()
    qtbot.keyClicks(dialog.image_edit.edit, "/data/top_cell.tif")
    assert dialog.name_edit.text() == "top_cell"   # was "/" -> "" then "d"... : the first letter
    dialog.name_edit.setText("cell 3")
    dialog.image_edit.setText("/data/other.tif")
    assert dialog.name_edit.text() == "cell 3"


def test_add_sample_shape_mismatch_keeps_the_form_open(qtbot, tmp_path):
    image, label = tmp_path / "im.tif", tmp_path / "lab.tif"
    tifffile.imwrite(image, np.zeros((4, 32, 32), np.uint8))
    tifffile.imwrite(label, np.zeros((4, 30, 32), np.uint8))
    dialog = AddSampleDialog([summary(tmp_path / "d.hdf5")], tmp_path / "d.hdf5", str(image), [str(label)])
    qtbot.addWidget(dialog)
    dialog.name_edit.setText("new")
    dialog.accept()
    assert dialog.value is None and "(4, 30, 32)" in dialog.error_label.text()
    assert dialog.image_edit.text() == str(image) and dialog.label_edits[0].text() == str(label)


def test_add_sample_failing_in_the_worker_opens_the_form_again_filled(window, qtbot, messages, monkeypatch,
                                                                      tiny_dataset, tiffs):
    from ui import dataset_actions
    from ui.dialogs import dataset_dialogs

    window.dataset_actions.load(tiny_dataset)
    opened = []

    def fake_ask(self):
        opened.append((self.name_edit.text(), self.image_edit.text(), [e.text() for e in self.label_edits]))
        if len(opened) == 1:
            self.name_edit.setText("mine")
            self.value = self.build()
            return self.value
        return None

    def failing_add(req, *, progress=None, cancel=None):
        raise DatasetError("no space left on the disk")
    monkeypatch.setattr(dataset_dialogs.AddSampleDialog, "ask", fake_ask)
    monkeypatch.setattr(dataset_actions, "_add_sample", failing_add)
    window.dataset_actions.add_sample_clicked(str(tiffs[0]), [""])
    wait_worker(qtbot, window.tasks.active[-1])
    assert messages.shown[-1][2] == "no space left on the disk"
    assert opened[1] == ("mine", str(tiffs[0]), [""])


def _drag(widget, path: Path) -> tuple[QDragMoveEvent, QMimeData]:
    """Enter, then move over ``widget`` (Qt shows "refused" when the move is not accepted)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    QApplication.sendEvent(widget, QDragEnterEvent(QPoint(20, 20), Qt.CopyAction, mime, Qt.LeftButton,
                                                   Qt.NoModifier))
    move = QDragMoveEvent(QPoint(24, 24), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    move.ignore()
    QApplication.sendEvent(widget, move)
    return move, mime


def test_files_dropped_on_the_image_view_are_accepted_like_on_the_list(window, tiny_dataset):
    viewport = window.view.canvas.viewport()
    enter, mime = _drag(viewport, tiny_dataset)
    assert enter.isAccepted()  # the QGraphicsView refused it before
    QApplication.sendEvent(viewport, QDropEvent(QPoint(20, 20), Qt.CopyAction, mime, Qt.LeftButton,
                                                Qt.NoModifier))
    assert tiny_dataset in window.tree.summaries
    other, _ = _drag(viewport, tiny_dataset.with_suffix(".txt"))
    assert not other.isAccepted()


def test_up_and_down_change_z_after_clicking_the_image(window, qtbot, tiny_dataset):
    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset, "s0")
    z = window.view.z
    qtbot.mouseClick(window.view.canvas.viewport(), Qt.LeftButton)
    qtbot.keyClick(window.view.canvas, Qt.Key_Up)     # the view scrolled instead before
    assert window.view.z == z + 1
    qtbot.keyClick(window.view.canvas, Qt.Key_Down)
    assert window.view.z == z


def test_readout_follows_z_and_8_bit_contrast_has_no_decimals(window, qtbot, tiny_dataset):
    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset, "s0")
    view = window.view
    assert view.lo_box.text().isdigit() and view.hi_box.text().isdigit()  # "22", not "22.000"
    view.canvas.hovered.emit(5, 6)
    z = view.z
    assert view.position_label.text().startswith(f"z {z}  y 5  x 6")
    view.set_z(z + 1)
    qtbot.waitUntil(lambda: not view.loading, timeout=5000)
    assert view.position_label.text().startswith(f"z {z + 1}  y 5  x 6")  # kept the old z before
