"""Every model button end to end through the real core on a tiny dataset: create, train
(1 epoch of 2 steps), predict, evaluate, save, load; cancel mid-training."""

from __future__ import annotations

import os

import numpy as np
import pytest
from gui_helpers import wait_worker
from PyQt5.QtWidgets import QFileDialog, QMessageBox

from deepscem.config import PredictConfig, TrainConfig, UNetConfig
from deepscem.dataset import Dataset
from deepscem.errors import ModelError
from ui.dialogs import model_dialogs
from ui.dialogs.model_dialogs import EvaluateRequest, PredictRequest, TrainRequest

pytest_plugins = ["gui_fixtures"]
pytest.importorskip("deepscem.models.unet")
pytest.importorskip("deepscem.training.trainer")  # lands with the training branch
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "2")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

TINY = UNetConfig(filters=4, depth=2, blocks_per_level=1, outputs=1, name="tiny")
TRAIN = TrainConfig(batch_size=2, patch=(1, 32, 32), steps_per_epoch=2, epochs=1, validation_steps=1)


def test_buttons_create_train_predict_evaluate_save_load(window, qtbot, messages, monkeypatch,
                                                          tiny_dataset, tmp_path):
    window.dataset_actions.load(tiny_dataset)
    # 8. New: the dialog's answer is a UNetConfig; safe mode locked its outputs to the labels.
    seen = {}

    def ask_model(self):
        seen["locked"] = not self.outputs.isEnabled() and self.outputs.value() == 1
        return TINY
    monkeypatch.setattr(model_dialogs.CreateModelDialog, "ask", ask_model)
    window.buttons["create_model"].click()
    wait_worker(qtbot, window.tasks.active[-1])
    assert seen["locked"]
    entry = window.models.current_entry()
    assert entry.name == "tiny" and not entry.saved and entry.model.count_params() > 0

    # 9. Train: live curve points arrive, the entry gets the trained model.
    train_req = TrainRequest("tiny", (tiny_dataset,), (tiny_dataset,), TRAIN)
    monkeypatch.setattr(model_dialogs.TrainDialog, "ask", lambda self: train_req)
    window.buttons["train_model"].click()
    wait_worker(qtbot, window.tasks.active[-1], timeout=120000)
    assert not messages.shown, messages.texts()
    plot = window.model_actions.train_dialog.plot
    assert len(plot.series["loss"]) == 2 and np.isfinite(plot.series["loss"][-1][1])
    assert plot.series.get("val_loss")  # the epoch's validation point, from the history
    assert not window.models.entry("tiny").saved

    # 10. Predict: a new file with the same samples, loaded into the tree.
    out = tmp_path / "pred.hdf5"
    predict_req = PredictRequest("tiny", tiny_dataset, out, PredictConfig(batch_size=2))
    monkeypatch.setattr(model_dialogs.PredictDialog, "ask", lambda self: predict_req)
    window.buttons["predict_model"].click()
    wait_worker(qtbot, window.tasks.active[-1], timeout=120000)
    assert not messages.shown, messages.texts()
    assert out in window.tree.summaries
    with Dataset.open(out) as ds:
        assert ds.sample_names() == ["s0", "s1"]
        prediction = ds.sample("s0").read_layer("prediction_0000")
    assert prediction.shape == (4, 32, 32) and np.isfinite(prediction).all()
    assert window.view.showing(out, "s0") and "prediction_0000" in window.view._plane  # shown at once

    # 11. Evaluate: a table, savable as CSV.
    evaluate_req = EvaluateRequest(tiny_dataset, out, 0.5)
    monkeypatch.setattr(model_dialogs.EvaluateDialog, "ask", lambda self: evaluate_req)
    window.buttons["evaluate_model"].click()
    wait_worker(qtbot, window.tasks.active[-1])
    result = window.model_actions.result_dialogs[-1]
    assert result.table.rowCount() >= 2
    header = [result.table.horizontalHeaderItem(i).text() for i in range(result.table.columnCount())]
    assert "f1" in header and "iou" in header
    # as wide as its columns (or 1000 px), never wider than 90 % of the screen
    columns = sum(result.table.columnWidth(c) for c in range(result.table.columnCount()))
    screen = result.screen().availableGeometry().width()
    assert result.width() == min(max(1000, columns + 2 * result.table.frameWidth() + 40), int(screen * 0.9))
    csv_path = result.save_csv(str(tmp_path / "eval.csv"))
    assert "f1" in open(csv_path).readline()

    # 12. Save through the button (file dialog answered), then 7. Load it back.
    model_path = tmp_path / "tiny.keras"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(model_path), "")))
    window.buttons["save_model"].click()
    wait_worker(qtbot, window.tasks.active[-1])
    assert model_path.is_file() and window.models.entry("tiny").saved
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *a, **k: ([str(model_path)], "")))
    window.buttons["load_model"].click()
    wait_worker(qtbot, window.tasks.active[-1])
    loaded = window.models.current_entry()
    assert loaded.name != "tiny" and loaded.saved and loaded.path == model_path
    assert not messages.shown, messages.texts()
    window.model_actions.info_clicked()
    assert "parameters" in messages.shown[-1][2] and str(model_path) in messages.shown[-1][2]
    window.model_actions.forget_clicked()  # saved: no question asked
    assert loaded.name not in [e.name for e in window.models.entries()] and model_path.is_file()


def test_create_with_context_measured_on_the_loaded_data(window, qtbot, messages, tmp_path):
    """The New model dialog's context "auto": measured on the loaded datasets, as
    ``model create --context auto --data``, and said in the status bar."""
    from training_data import blob_dataset

    from deepscem.training.autoconfig import choose, summarize

    stack = tmp_path / "stack.hdf5"
    blob_dataset(stack, shape=(12, 32, 32))
    expected = choose(summarize([stack]), validation_given=True, dim=2)
    wait_worker(qtbot, window.model_actions.create(TINY, (stack,)))
    assert not messages.shown, messages.texts()
    entry = window.models.current_entry()
    assert entry.info.unet.context == expected.context
    assert entry.model.inputs[0].shape[-1] == 1 + 2 * expected.context
    assert f"context {expected.context} slice(s) per side" in window.statusBar().currentMessage()


def test_cancel_mid_training_keeps_the_window_usable(window, qtbot, messages, tiny_dataset, tmp_path):
    window.dataset_actions.load(tiny_dataset)
    wait_worker(qtbot, window.model_actions.create(TINY))
    long = TrainConfig(batch_size=2, patch=(1, 32, 32), steps_per_epoch=500, epochs=20, validation_steps=0)
    worker = window.model_actions.train(TrainRequest("tiny", (tiny_dataset,), (), long))
    dialog = window.model_actions.train_dialog
    with qtbot.waitSignal(worker.signals.progress, timeout=120000,
                          check_params_cb=lambda p: p.stage == "train" and p.done >= 2):
        pass
    with pytest.raises(ModelError, match="being trained"):  # its weights are changing
        window.model_actions.save("tiny", tmp_path / "busy.keras")
    with qtbot.waitSignal(worker.signals.finished, timeout=60000):
        dialog.cancel_button.click()
    qtbot.wait(20)
    assert worker.cancelled and not window.tasks.active
    assert dialog.plot.series["loss"] and dialog.plot.series["loss"][-1][0] < 500 * 20
    assert dialog.cancel_button.text() == "Close"
    assert not [k for k in messages.kinds() if k == "critical"], messages.texts()
    assert window.buttons["train_model"].isEnabled()


def test_about_names_the_device_found_in_the_background(window, qtbot, messages):
    wait_worker(qtbot, window.detect_device())
    assert " on " in window.device and "Keras" in window.device
    window.about_clicked()
    assert window.device in messages.shown[-1][2]


def test_an_invalid_model_file_gives_a_message_box(window, qtbot, messages, tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not a model at all")
    wait_worker(qtbot, window.model_actions.load(bad))
    assert messages.kinds() == ["warning"] and "broken.h5" in messages.texts()
    assert "Traceback" not in messages.texts() and window.models.count() == 0


@pytest.mark.slow  # two trainings (~90 s on the shared CPU machine)
def test_fine_tuning_a_trained_model_keeps_the_old_weights_until_accepted(window, qtbot, messages,
                                                                         tiny_dataset):
    window.dataset_actions.load(tiny_dataset)
    wait_worker(qtbot, window.model_actions.create(TINY))
    entry = window.models.current_entry()
    req = TrainRequest("tiny", (tiny_dataset,), (tiny_dataset,), TRAIN)
    wait_worker(qtbot, window.model_actions.train(req), timeout=120000)
    assert entry.info.patch_size is not None and not messages.shown  # first training: no question
    dialog = model_dialogs.TrainDialog(["tiny"], list(window.tree.summaries.values()), "tiny",
                                       tiny_dataset, trained=frozenset({"tiny"}), parent=window)
    assert dialog.time_limit.value() == model_dialogs.FINE_TUNE_MINUTES
    assert "Fine-tune" in dialog.windowTitle()
    before = [w.copy() for w in entry.model.get_weights()]
    messages.answer = QMessageBox.No  # refuse the fine-tuned weights
    wait_worker(qtbot, window.model_actions.train(req), timeout=120000)
    assert messages.kinds() == ["question"]
    for old, new in zip(before, window.models.entry("tiny").model.get_weights()):
        np.testing.assert_array_equal(old, new)
