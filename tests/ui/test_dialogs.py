"""The action dialogs build valid config objects and stay open on invalid input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from deepscem.config import PredictConfig, TrainConfig, UNetConfig
from ui.dataset_tree import DatasetSummary
from ui.dialogs.base import SCREEN_SHARE
from ui.dialogs.dataset_dialogs import (
    AddSampleDialog,
    CreateDatasetDialog,
    CropDialog,
    DistanceDialog,
    SaveAsDialog,
)
from ui.dialogs.model_dialogs import CreateModelDialog, EvaluateDialog, PredictDialog, TrainDialog


def _summary(tmp_path, n_labels=2) -> DatasetSummary:
    path = tmp_path / "d.hdf5"
    path.write_bytes(b"")
    return DatasetSummary(path, "d", n_labels, ["mito", "er"][:n_labels],
                          {"s0": ((4, 32, 32), ["image", "label_0000"])})


def test_create_dataset_dialog(qtbot, tmp_path):
    dialog = CreateDatasetDialog()
    qtbot.addWidget(dialog)
    dialog.accept()
    assert dialog.value is None and "choose where" in dialog.error_label.text()
    dialog.path_edit.setText(str(tmp_path / "new"))
    dialog.labels_spin.setValue(2)
    dialog.accept()
    assert dialog.value.path == tmp_path / "new.hdf5" and dialog.value.n_labels == 2
    assert dialog.value.name == "new"


def test_add_sample_dialog_has_one_row_per_label_and_checks_files(qtbot, tmp_path):
    summary = _summary(tmp_path)
    image = tmp_path / "img.tif"
    tifffile.imwrite(image, np.zeros((4, 32, 32), np.uint8))
    dialog = AddSampleDialog([summary], summary.path, image=str(image))
    qtbot.addWidget(dialog)
    assert len(dialog.label_edits) == 2 and dialog.name_edit.text() == "img"
    dialog.label_edits[0].setText(str(tmp_path / "missing.tif"))
    dialog.accept()
    assert dialog.value is None and "missing.tif" in dialog.error_label.text()
    dialog.label_edits[0].setText("")
    dialog.name_edit.setText("s0")
    dialog.accept()
    assert "already has a sample" in dialog.error_label.text()
    dialog.name_edit.setText("s1")
    dialog.accept()
    assert dialog.value.labels == (None, None) and dialog.value.image == image


def test_create_model_dialog_and_safe_mode_lock(qtbot):
    dialog = CreateModelDialog(locked_outputs=3)
    qtbot.addWidget(dialog)
    assert not dialog.outputs.isEnabled()
    dialog.dim.setCurrentText("3")
    dialog.filters.setValue(4)
    dialog.depth.setValue(2)
    dialog.accept()
    assert dialog.value == UNetConfig(dim=3, filters=4, depth=2, outputs=3)
    assert CreateModelDialog(locked_outputs=None).outputs.isEnabled()


def test_create_model_dialog_context(qtbot, tmp_path):
    dialog = CreateModelDialog(datasets=[])
    qtbot.addWidget(dialog)
    dialog.context.setCurrentText("2")
    dialog.accept()
    assert dialog.value.context == 2 and dialog.auto_data is None
    dialog.context.setCurrentText("auto")  # measured on the loaded datasets: none loaded
    dialog.value = None
    dialog.accept()
    assert dialog.value is None and "load the training dataset" in dialog.error_label.text()
    dialog.dim.setCurrentText("3")  # 3D models have no 2.5D context
    assert not dialog.context.isEnabled()
    dialog.accept()
    assert dialog.value.dim == 3 and dialog.value.context == 0 and dialog.auto_data is None
    loaded = CreateModelDialog(datasets=[tmp_path / "a.hdf5"])
    qtbot.addWidget(loaded)
    assert CreateModelDialog(datasets=[]).context.currentText() == "0"
    assert loaded.context.currentText() == "auto"  # the default when there is data to measure
    loaded.accept()
    assert loaded.value.context == 0 and loaded.auto_data == (tmp_path / "a.hdf5",)


def test_create_model_dialog_scale_and_the_train_dialog_patch_that_follows_it(qtbot):
    dialog = CreateModelDialog(datasets=[])
    qtbot.addWidget(dialog)
    assert dialog.scale.currentText() == "1"
    dialog.scale.setCurrentText("2")
    dialog.accept()
    assert dialog.value.scale == 2
    dialog.dim.setCurrentText("3")  # a 3D model works at full resolution
    assert not dialog.scale.isEnabled()
    dialog.accept()
    assert dialog.value.dim == 3 and dialog.value.scale == 1
    for scale, side in ((1, 256), (2, 512)):
        train = TrainDialog(["unet"], [], "unet", None, scale=scale)
        qtbot.addWidget(train)
        assert [s.value() for s in train.patch] == [1, side, side]
    # the default patch follows the model chosen in the dialog, a typed one stays
    kinds = {"plain": (2, 1), "half": (2, 2), "vol": (3, 1)}
    train = TrainDialog(list(kinds), [], "plain", None, kinds=kinds)
    qtbot.addWidget(train)

    def patch():
        return [s.value() for s in train.patch]

    train.model_combo.setCurrentText("half")
    assert patch() == [1, 512, 512]
    train.model_combo.setCurrentText("vol")
    assert patch() == [32, 128, 128]
    train.model_combo.setCurrentText("plain")
    assert patch() == [1, 256, 256]
    train.patch[1].setValue(320)
    train.model_combo.setCurrentText("half")
    assert patch() == [1, 320, 256]


def test_train_dialog_steps_follow_the_batch_until_typed(qtbot, tmp_path):
    dialog = TrainDialog(["unet"], [_summary(tmp_path)], "unet", None)
    qtbot.addWidget(dialog)
    assert (dialog.batch.value(), dialog.steps.value(), dialog.valid_steps.value()) == (2, 256, 32)
    dialog.batch.setValue(8)  # the same 512 / 64 patches per epoch / validation
    assert (dialog.steps.value(), dialog.valid_steps.value()) == (64, 8)
    dialog.steps.setValue(100)
    dialog.batch.setValue(4)
    assert (dialog.steps.value(), dialog.valid_steps.value()) == (100, 16)
    dialog.valid_steps.setValue(0)  # no validation stays no validation
    dialog.batch.setValue(2)
    assert (dialog.steps.value(), dialog.valid_steps.value()) == (100, 0)


def test_train_dialog_builds_a_train_config(qtbot, tmp_path):
    summary = _summary(tmp_path)
    dialog = TrainDialog(["unet"], [summary], "unet", None)
    qtbot.addWidget(dialog)
    dialog.accept()
    assert "training dataset" in dialog.error_label.text()
    dialog.train_list.set_ticked([summary.path])
    dialog.accept()
    assert "validation" in dialog.error_label.text()
    dialog.valid_steps.setValue(0)
    dialog.steps.setValue(2)
    assert [s.value() for s in dialog.patch] == [1, 32, 32]  # the default, shrunk to fit the samples
    dialog.patch[2].setValue(64)
    dialog.accept()
    assert "larger than sample s0" in dialog.error_label.text()
    dialog.patch[2].setValue(32)
    dialog.accept()
    req = dialog.value
    assert req.train == (summary.path,) and req.valid == ()
    assert req.config == TrainConfig(steps_per_epoch=2, validation_steps=0, patch=(1, 32, 32))
    # a fixed budget: cosine decay over a time limit, in bfloat16
    dialog.schedule.setCurrentText("cosine")
    assert not dialog.reduce_lr.isEnabled()  # only the plateau schedule uses it
    dialog.time_limit.setValue(15)
    assert dialog.mixed.currentText() == "auto"  # TrainConfig's None: bfloat16 where it is fast
    dialog.mixed.setCurrentText("bfloat16")
    dialog.loss.setCurrentText("dice+boundarycrossentropy")
    dialog.deform.setChecked(not TrainConfig().deform)
    assert not dialog.calibrate.isChecked()  # off by default, as on the CLI
    dialog.calibrate.setChecked(True)
    dialog.accept()
    assert dialog.value.config == TrainConfig(steps_per_epoch=2, validation_steps=0, patch=(1, 32, 32),
                                              lr_schedule="cosine", time_limit_minutes=15,
                                              mixed_precision=True, deform=not TrainConfig().deform,
                                              loss="dice+boundarycrossentropy", calibrate=True)
    # passes of fewer patches than the batch (less memory); they must divide the batch
    assert dialog.micro.text() == "auto"
    dialog.batch.setValue(8)
    dialog.micro.setValue(3)
    dialog.accept()
    assert "divide batch_size" in dialog.error_label.text()
    dialog.micro.setValue(4)
    dialog.accept()
    assert dialog.value.config.micro_batch_size == 4
    # the same file ticked for validation: its last slices are held back instead
    dialog.valid_list.set_ticked([summary.path])
    dialog.valid_steps.setValue(1)
    dialog.accept()
    assert dialog.value.valid == (summary.path,) and dialog.value.config.holdout == 0.15


def test_train_dialog_chooses_from_the_data(qtbot, tmp_path):
    """'Choose from the data' fills the form as ``train --auto`` would and says why."""
    from PyQt5.QtCore import Qt
    from scipy.ndimage import gaussian_filter
    from training_data import write_dataset

    rng = np.random.default_rng(0)
    volume = (gaussian_filter(rng.standard_normal((6, 64, 96)), 3.0) * 400 + 128).clip(0, 255)
    volume = volume.astype(np.uint8)  # the same smoothness along Z as in-plane: isotropic
    path = write_dataset(tmp_path / "iso.hdf5", {"s0": (volume, [(volume > 128).astype(np.uint8)])})
    summary = DatasetSummary(path, "iso", 1, ["mito"], {"s0": ((6, 64, 96), ["image", "label_0000"])})
    dialog = TrainDialog(["flat", "vol"], [summary], "flat", None,
                         kinds={"flat": (2, 1), "vol": (3, 1)}, contexts={"flat": 0, "vol": 0})
    qtbot.addWidget(dialog)
    qtbot.mouseClick(dialog.auto_button, Qt.LeftButton)
    assert "tick at least one training dataset" in dialog.error_label.text()
    dialog.train_list.set_ticked([path])
    dialog.valid_steps.setValue(0)
    qtbot.mouseClick(dialog.auto_button, Qt.LeftButton)
    assert dialog.error_label.text() == ""
    assert [s.value() for s in dialog.patch] == [1, 64, 64]  # fits the smallest plane
    assert dialog.schedule.currentText() == "cosine" and dialog.time_limit.value() == 15
    assert not dialog.keep_best.isChecked() and dialog.valid_list.ticked() == (path,)
    note, reasons = dialog.auto_note.text(), dialog.auto_note.toolTip()
    assert "held back" in reasons and "Time budget 15 minutes" in reasons and "'Keep best'" in reasons
    flat = " ".join(note.split())
    assert "anisotropy 1.0" in flat  # measured: an isotropic stack
    assert "Hint: " in flat and "--context 1" in flat  # an isotropic stack, a one-slice model
    dialog.accept()
    config = dialog.value.config
    assert config.holdout == 0.15 and config.lr_schedule == "cosine" and config.time_limit_minutes == 15
    assert (config.patch, config.batch_size, config.steps_per_epoch, config.validation_steps) == (
        (1, 64, 64), 2, 128, 32)
    assert config.epochs >= 10_000 and config.keep_best is False  # the time budget ends it
    # a 3D model: 3D patches, as deep as the samples allow; no 2.5D hint
    dialog.model_combo.setCurrentText("vol")
    qtbot.mouseClick(dialog.auto_button, Qt.LeftButton)
    assert dialog.patch[0].value() > 1 and "Hint" not in dialog.auto_note.text()


def test_predict_dialog_refuses_an_existing_output(qtbot, tmp_path):
    summary = _summary(tmp_path)
    dialog = PredictDialog(["unet"], [summary], "unet", summary.path)
    qtbot.addWidget(dialog)
    assert dialog.output.text().endswith("d_prediction.hdf5")
    dialog.output.setText(str(summary.path))
    dialog.accept()
    assert "already exists" in dialog.error_label.text()
    dialog.overwrite.setChecked(True)
    dialog.accept()
    assert "not the dataset itself" in dialog.error_label.text()
    dialog.output.setText(str(tmp_path / "p.hdf5"))
    assert not dialog.min_size.isEnabled()  # removing objects needs a binary mask
    dialog.use_threshold.setChecked(True)
    assert dialog.min_size.isEnabled()
    dialog.min_size.setValue(100)
    dialog.auto_patch.setChecked(False)
    dialog.accept()
    # engine "auto", as the command line's default (PredictConfig's own default is "keras")
    assert dialog.value.config == PredictConfig(patch=(1, 512, 512), threshold=0.5, min_size=100,
                                                engine="auto")
    assert dialog.z_smooth.text() == "off"
    dialog.z_smooth.setValue(1.5)
    dialog.accept()
    assert dialog.value.config.z_smooth == 1.5
    assert dialog.value.config.tta == 0 and dialog.tta.currentText() == "off"
    dialog.tta.setCurrentIndex(2)  # the four rotations
    dialog.accept()
    assert dialog.value.config.tta == 4


def test_evaluate_crop_distance_and_save_as_dialogs(qtbot, tmp_path):
    summary = _summary(tmp_path)
    dialog = EvaluateDialog([summary])
    qtbot.addWidget(dialog)
    dialog.accept()
    assert dialog.value.reference == summary.path and dialog.value.threshold == 0.5
    crop = CropDialog(summary.path, "s0", (4, 32, 32))
    qtbot.addWidget(crop)
    crop.spins[1][0].setValue(20)
    crop.spins[1][1].setValue(10)
    crop.accept()
    assert "Y: 'from'" in crop.error_label.text()
    crop.spins[1][1].setValue(30)
    crop.accept()
    assert crop.value.y == (20, 30) and crop.value.z == (0, 4) and crop.value.new_name == "s0_crop"
    dt = DistanceDialog(summary.path, "s0", 2)
    qtbot.addWidget(dt)
    dt.label_spin.setValue(1)
    dt.accept()
    assert dt.value.label == 1 and dt.value.sampling == (1.0, 1.0, 1.0)
    save = SaveAsDialog(summary.path)
    qtbot.addWidget(save)
    save.path_edit.setText(str(summary.path))
    save.accept()
    assert save.value is None
    save.path_edit.setText(str(tmp_path / "copy.hdf5"))
    save.accept()
    assert save.value.target == Path(tmp_path / "copy.hdf5")


def test_training_window_plots_batches_and_epoch_validation(qtbot):
    from types import SimpleNamespace

    from deepscem.progress import Progress
    from ui.dialogs.train_progress import TrainProgressDialog
    from ui.workers import Worker

    worker = Worker(lambda **kw: None, title="Training t")
    dialog = TrainProgressDialog(worker, steps_per_epoch=2)
    qtbot.addWidget(dialog)
    for done, metrics in ((1, {"loss": 0.9}), (2, {"loss": 0.8}), (3, {"loss": 0.7, "val_loss": 0.75}),
                          (4, {"loss": 0.6, "val_loss": 0.75})):
        dialog.on_progress(Progress(done, 4, "batches", "train", {"epoch": 1 + (done > 2), **metrics}))
    dialog.on_progress(Progress(1, 2, "batches", "batchnorm"))
    assert dialog.plot.series["loss"] == [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6)]
    assert dialog.plot.series["val_loss"] == [(2, 0.75)]  # the first epoch's, at its last step
    assert dialog.bar.maximum() == 2 and "ETA" in dialog.eta_label.text()
    dialog.on_progress(Progress(1, 4, "batches", "calibrate"))
    assert "threshold" in dialog.stage_label.text() and dialog.bar.maximum() == 4
    from deepscem.training.calibration import LabelCalibration

    moved = LabelCalibration("mito", 0.7, 0.8, 0.85, 9000, True)
    kept = LabelCalibration("er", 0.5, 0.6, 0.6, 9000, False)
    dialog._on_result(SimpleNamespace(history={"val_loss": [0.75, 0.5]}, stopped_reason="completed",
                                      calibration=[moved, kept]))
    assert dialog.plot.series["val_loss"] == [(2, 0.75), (4, 0.5)]
    assert "completed" in dialog.stage_label.text()
    assert "threshold mito 0.70 chosen on held-out data" in dialog.stage_label.text()
    assert "er" not in dialog.stage_label.text().split("(")[1]
    dialog._on_finished()
    assert dialog.cancel_button.text() == "Close"
    dialog.grab()  # paints without error


def test_a_form_taller_than_the_screen_scrolls_and_a_short_one_shows_whole(qtbot):
    tall = TrainDialog(["unet"], [], "unet", None)
    short = CreateDatasetDialog()
    for dialog in (tall, short):
        qtbot.addWidget(dialog)
        dialog.show()
    screen = tall.screen().availableGeometry().height()
    form = tall.scroll.widget().sizeHint().height()
    if form > screen * SCREEN_SHARE:  # e.g. a 768-px laptop screen (the test screen is small too)
        assert tall.scroll.minimumHeight() < form and tall.height() <= max(screen * SCREEN_SHARE, 400)
        # and it takes the room there is, not Qt's 2/3 of the screen
        assert tall.height() >= screen * SCREEN_SHARE - 2
    assert short.scroll.minimumHeight() == short.scroll.widget().sizeHint().height()


def test_a_form_that_gains_rows_grows_with_them(qtbot, tmp_path):
    one = DatasetSummary(tmp_path / "one.hdf5", "one", 1, ["mito"], {})
    four = DatasetSummary(tmp_path / "four.hdf5", "four", 4, ["a", "b", "c", "d"], {})
    dialog = AddSampleDialog([one, four], one.path)
    qtbot.addWidget(dialog)
    dialog.show()
    before = dialog.scroll.minimumHeight()
    dialog.dataset_combo.setCurrentIndex(1)  # three more label rows
    assert len(dialog.label_edits) == 4
    qtbot.waitUntil(lambda: dialog.scroll.minimumHeight() > before)  # not squeezed into the old
    assert dialog.scroll.minimumHeight() == dialog.scroll.widget().sizeHint().height()  # height
