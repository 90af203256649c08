"""The training window tells the truth: ETA within the time limit, a busy bar while it
prepares, "cancelled" after Cancel, validation points at the step their epoch ended."""

from __future__ import annotations

from types import SimpleNamespace

from deepscem.progress import Progress
from ui.dialogs.loss_plot import format_value, nice_ticks, tick_labels
from ui.dialogs.train_progress import TrainProgressDialog
from ui.workers import Worker


def make_dialog(qtbot, **kwargs) -> TrainProgressDialog:
    dialog = TrainProgressDialog(Worker(lambda **kw: None, title="Training t"), **kwargs)
    qtbot.addWidget(dialog)
    return dialog


def train(done: int, total: int, epoch: int = 1, **metrics) -> Progress:
    return Progress(done, total, "batches", "train", {"epoch": epoch, **metrics})


def test_eta_never_exceeds_what_is_left_of_the_time_limit(qtbot):
    dialog = make_dialog(qtbot, steps_per_epoch=1000, time_limit_s=60)
    dialog.on_progress(train(1, 30000, loss=0.9), now=100.0)
    dialog.on_progress(train(11, 30000, loss=0.8), now=110.0)  # 1 step/s: 29989 s by the rate
    assert dialog.eta_label.text() == "ETA 0:50"  # was "ETA 8:19:49" with a 1-minute limit
    dialog.on_progress(train(21, 30000, loss=0.7), now=170.0)
    assert dialog.eta_label.text() == "ETA 0:00"
    # the bar: the time budget's fraction (not 21 of 30000 batches), and both counts
    assert dialog.bar.value() == 1000 and dialog.bar.format() == "train: 21 batches, 1:10 of 1:00"
    dialog.on_progress(train(22, 30000, loss=0.7), now=130.0)  # 30 s of 60 in
    assert dialog.bar.value() == 500
    few = make_dialog(qtbot, steps_per_epoch=10, time_limit_s=600)
    few.on_progress(train(1, 20, loss=0.9), now=0.0)
    few.on_progress(train(15, 20, loss=0.9), now=10.0)  # the steps end it first
    assert few.bar.value() == 750
    budget = make_dialog(qtbot, steps_per_epoch=10, time_limit_s=60)  # until the budget: no total
    budget.on_progress(Progress(1, None, "batches", "train", {"epoch": 1, "loss": 0.9}), now=0.0)
    budget.on_progress(Progress(5, None, "batches", "train", {"epoch": 1, "loss": 0.8}), now=15.0)
    assert budget.bar.value() == 250 and budget.bar.format() == "train: 5 batches, 0:15 of 1:00"
    assert budget.eta_label.text() == "ETA 0:45"
    unlimited = make_dialog(qtbot, steps_per_epoch=10)
    unlimited.on_progress(train(1, 21, loss=0.9), now=0.0)
    unlimited.on_progress(train(11, 21, loss=0.8), now=10.0)
    assert unlimited.eta_label.text() == "ETA 0:10"


def test_preparing_stages_show_a_busy_bar_and_what_runs(qtbot):
    dialog = make_dialog(qtbot, steps_per_epoch=10)
    dialog.on_progress(Progress(0, 2, "datasets", "index labels"))
    assert dialog.bar.maximum() == 0  # busy, not a bar stuck at 0 %
    assert "indexing the labelled voxels, once per run (datasets 1 of 2)" in dialog.stage_label.text()
    dialog.on_progress(Progress(2, 2, "datasets", "index labels"))
    # Done indexing, Keras compiling: was "index labels 2/2 datasets, ETA 0:00" for 20-30 s.
    assert dialog.bar.maximum() == 0 and "building the model graph" in dialog.stage_label.text()
    assert dialog.eta_label.text() == "ETA --"
    dialog.on_progress(train(1, 20, loss=0.9))
    assert dialog.bar.maximum() == 20 and dialog.bar.value() == 1


def test_after_cancel_the_bar_says_cancelled(qtbot):
    dialog = make_dialog(qtbot, steps_per_epoch=10)
    dialog.on_progress(train(3, 20, loss=0.9))
    dialog.request_cancel()
    dialog._on_finished()
    assert dialog.bar.format() == "cancelled" and dialog.eta_label.text() == "cancelled"
    finished = make_dialog(qtbot, steps_per_epoch=10)
    finished._on_finished()
    assert finished.bar.format() == "done"


def test_validation_point_at_the_step_its_epoch_ended_and_text_matches_legend(qtbot):
    dialog = make_dialog(qtbot, steps_per_epoch=10, time_limit_s=60)
    for done in (1, 2, 3):  # the time limit stopped the first epoch after 3 of 10 steps
        dialog.on_progress(train(done, 20, loss=0.5 - done / 100))
    dialog._on_result(SimpleNamespace(history={"val_loss": [0.44463]}, stopped_reason="time limit"))
    assert dialog.plot.series["val_loss"] == [(3, 0.44463)]  # was drawn at step 10
    loss = dialog.plot.series["loss"][-1][1]
    text = dialog.metrics_label.text()
    assert f"loss {format_value(loss)}" in text and f"val_loss {format_value(0.44463)}" in text
    dialog.grab()  # the legend paints the same formatted values


def test_axis_ticks_are_round_and_never_repeat():
    assert tick_labels(nice_ticks(1, 3, integer=True)) == ["1", "2", "3"]  # was "1 2 2 2 3"
    for lo, hi, integer in ((0, 7, True), (1, 1000, True), (0.4, 0.45, False), (0.44455, 0.44475, False)):
        labels = tick_labels(nice_ticks(lo, hi, integer=integer))
        assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
