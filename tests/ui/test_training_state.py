"""A model being trained shows it in the list and is refused by Predict before its dialog;
the Train dialog warns when validation reuses the training data or a test volume."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from gui_helpers import wait_worker
from PyQt5.QtWidgets import QMessageBox

from deepscem.config import TrainConfig
from deepscem.models.introspection import ModelInfo
from ui import model_actions
from ui.dataset_tree import DatasetSummary
from ui.dialogs import model_dialogs
from ui.dialogs.model_dialogs import TrainDialog, TrainRequest
from ui.model_list import ModelEntry

pytest_plugins = ["gui_fixtures"]


def summary(path, samples=("s0",)) -> DatasetSummary:
    return DatasetSummary(path, path.stem, 1, ["mito"], {s: ((4, 32, 32), ["image", "label_0000"])
                                                          for s in samples})


def test_train_dialog_warns_when_validation_is_the_training_dataset(qtbot, tmp_path):
    a, b = summary(tmp_path / "a.hdf5"), summary(tmp_path / "b.hdf5")
    dialog = TrainDialog(["unet"], [a, b], "unet", a.path)
    qtbot.addWidget(dialog)
    dialog.show()
    assert "a.hdf5 is both a training and the validation dataset" in dialog.warning_label.text()
    assert "15% of every sample's slices are held back" in dialog.warning_label.text()  # holdout
    assert dialog.warning_label.isVisible()
    dialog.train_list.set_ticked([a.path, b.path])  # a is validated on and also trained on whole
    assert "a.hdf5 is both" in dialog.warning_label.text() and "optimistic" in dialog.warning_label.text()
    dialog.train_list.set_ticked([a.path])
    dialog.valid_list.set_ticked([b.path])
    assert dialog.warning_label.text() == "" and not dialog.warning_label.isVisible()
    dialog.valid_list.set_ticked([a.path])
    dialog.valid_steps.setValue(0)  # no validation: nothing to warn about
    assert dialog.warning_label.text() == ""


def test_train_dialog_asks_before_training_on_a_test_volume(qtbot, tmp_path, messages):
    both = summary(tmp_path / "lucchi.hdf5", samples=("train", "test"))
    dialog = TrainDialog(["unet"], [both], "unet", both.path)
    qtbot.addWidget(dialog)
    dialog.valid_steps.setValue(0)
    assert "'test', which looks like a test volume" in dialog.warning_label.text()
    messages.answer = QMessageBox.No
    dialog.accept()
    assert dialog.value is None and messages.shown[-1][1] == "Train on a test volume?"
    messages.answer = QMessageBox.Yes
    dialog.accept()
    assert dialog.value.train == (both.path,)


def test_a_model_in_training_is_marked_and_refused_by_predict_before_its_dialog(
        window, qtbot, messages, monkeypatch, tiny_dataset):
    window.dataset_actions.load(tiny_dataset)
    entry = window.models.add_entry(ModelEntry("m", model=None, info=ModelInfo(dimension=2, outputs=1)))
    release = threading.Event()

    def fake_train(entry, req, log_path, *, progress=None, cancel=None):
        release.wait(30)
        return SimpleNamespace(model=entry.model, info=entry.info, stopped_reason="finished", history={})
    monkeypatch.setattr(model_actions, "_train", fake_train)
    opened = []
    monkeypatch.setattr(model_dialogs.PredictDialog, "ask", lambda self: opened.append(1))
    worker = window.model_actions.train(TrainRequest("m", (tiny_dataset,), (), TrainConfig()))
    try:
        item = window.models.item(0)
        assert item.text() == "m *  (training...)" and item.font().italic()
        window.buttons["predict_model"].click()
        assert opened == []  # refused before the dialog (it was refused only after its OK)
        assert messages.shown[-1] == ("warning", "Predict",
                                      "m is being trained; wait for the end of training or cancel it")
    finally:
        release.set()
        wait_worker(qtbot, worker)
    assert window.models.item(0).text() == "m *" and not window.models.item(0).font().italic()
    window.buttons["predict_model"].click()
    assert opened == [1]
    entry.saved = True
