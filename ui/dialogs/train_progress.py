"""The training window: live loss / validation-loss curves, progress, ETA and Cancel.

The trainer reports once per batch (stage "train", ``done`` = batches since the start,
metrics ``loss`` = the epoch's running mean, ``val_loss`` = the last finished epoch's
validation loss, ``epoch`` 1-based). The validation point of the last epoch arrives with
the result's history. Before the first batch it reports "read into memory" (on a GPU) and
"index labels" (datasets) and then stays silent while Keras builds the model graph: the bar
is then busy, not "1/1".
"""

from __future__ import annotations

import math
import time

from PyQt5.QtWidgets import QWidget

from deepscem.progress import Progress

from ..task_dialog import TaskDialog, format_eta
from ..workers import Worker
from .loss_plot import LossPlot, format_value

STAGE_TEXT = {"index labels": "indexing the labelled voxels, once per run",
              "read into memory": "reading the training data into memory (GPU)",
              "batchnorm": "recomputing the batch-normalisation statistics",
              "calibrate": "choosing the threshold on held-out data"}
#: Stages after the last training step: their bar counts batches (not a busy bar).
AFTER_TRAINING = ("batchnorm", "calibrate")


class TrainProgressDialog(TaskDialog):
    """A :class:`TaskDialog` with a :class:`LossPlot`; stays open after training so the
    curves can be read (its button then closes it).

    ``time_limit_s``: the run's time limit; the ETA never exceeds what is left of it.
    """

    def __init__(self, worker: Worker, parent: QWidget | None = None,
                 steps_per_epoch: int | None = None, time_limit_s: float | None = None) -> None:
        super().__init__(worker, parent)
        self.setMinimumSize(560, 420)
        self.steps_per_epoch = steps_per_epoch
        self.time_limit_s = time_limit_s
        self.plot = LossPlot()
        self.plot.x_label = "training step"
        self.layout().insertWidget(2, self.plot, 1)
        self._last_val: float | None = None
        self._epoch_end: dict[int, int] = {}   # epoch (1-based) -> last step reported in it
        self._train_started: float | None = None
        self.running = True
        worker.signals.finished.disconnect(self.accept)
        worker.signals.finished.connect(self._on_finished)
        worker.signals.result.connect(self._on_result)

    def on_progress(self, record: Progress, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        super().on_progress(record, now)
        if record.stage != "train":
            self._show_preparing(record)
            return
        if self._train_started is None:
            self._train_started = now
        self.eta_label.setText(f"ETA {format_eta(self._limited(self._eta_seconds, now))}")
        self._show_budget(record, now)
        metrics = record.metrics
        epoch = int(metrics.get("epoch", 1))
        val = metrics.get("val_loss")
        if val is not None and val != self._last_val and epoch - 1 in self._epoch_end:
            # First batch of a new epoch: the value belongs to the end of the previous one.
            self._last_val = val
            self.plot.add("val_loss", self._epoch_end[epoch - 1], val)
        self._epoch_end[epoch] = record.done
        if "loss" in metrics:
            self.plot.add("loss", record.done, metrics["loss"])
        self._show_metrics(epoch)

    def _show_preparing(self, record: Progress) -> None:
        """Before the first batch: say what runs, with counts, and keep the bar moving."""
        what = STAGE_TEXT.get(record.stage, record.stage)
        if record.total and record.done < record.total:
            count = f" ({record.unit} {record.done + 1} of {record.total})"
        else:
            count = ""
        if record.stage not in AFTER_TRAINING and (not record.total or record.done >= record.total):
            what, count = "building the model graph for the first training step", ""
        self.stage_label.setText(f"{self.worker.title}: {what}{count}...")
        if record.stage not in AFTER_TRAINING:
            self.bar.setRange(0, 0)  # busy: no honest fraction or ETA before the first step
            self.eta_label.setText("ETA --")

    def _show_budget(self, record: Progress, now: float) -> None:
        """With a time limit the run ends at whichever comes first, the limit or the last step
        (``train --auto`` and "Choose from the data" ask for 10,000 epochs: the limit ends
        them), so the bar shows the larger of the two fractions and both counts."""
        if not self.time_limit_s or self._train_started is None:
            return
        elapsed = now - self._train_started
        fraction = max(elapsed / self.time_limit_s, record.done / record.total if record.total else 0.0)
        self.bar.setRange(0, 1000)
        self.bar.setValue(int(1000 * min(fraction, 1.0)))
        self.bar.setFormat(f"train: {record.done} {record.unit}, {format_eta(elapsed)} of "
                           f"{format_eta(self.time_limit_s)}")

    def _limited(self, eta: float | None, now: float) -> float | None:
        """The rate's ETA, capped by what is left of the time limit."""
        if not self.time_limit_s or self._train_started is None:
            return eta
        left = max(self.time_limit_s - (now - self._train_started), 0.0)
        return left if eta is None else min(eta, left)

    def _show_metrics(self, epoch: int | None = None) -> None:
        """The text under the plot: the same values, rounded the same way, as its legend."""
        parts = [f"epoch {epoch}"] if epoch else []
        parts += [f"{name} {format_value(points[-1][1])}" for name, points in self.plot.series.items()
                  if points]
        self.metrics_label.setText("  ".join(parts))

    def _on_result(self, result) -> None:
        history = getattr(result, "history", None) or {}
        values = [_number(v) for v in history.get("val_loss") or []]
        points = [(self._epoch_step(i + 1), v) for i, v in enumerate(values) if v is not None]
        points = [p for p in points if p[0] is not None]
        if points:  # (no validation: the history holds blanks)
            self.plot.series["val_loss"] = points
            self.plot.update()
        self._show_metrics(len(values) or None)
        reason = getattr(result, "stopped_reason", "")
        message = getattr(result, "message", "")
        moved = [c for c in getattr(result, "calibration", None) or [] if c.applied]
        if moved:  # thresholds folded into the model (deepscem.training.calibration)
            message = "; ".join([message] * bool(message) + [
                "threshold " + ", ".join(f"{c.label} {c.threshold:.2f}" for c in moved)
                + " chosen on held-out data"])
        if reason:
            self.stage_label.setText(f"{self.worker.title}: {reason}" + (f" ({message})" if message else ""))

    def _epoch_step(self, epoch: int) -> int | None:
        """The training step an epoch ended at: as reported (an epoch cut short by the time
        limit or a cancel ends early), else epochs x steps per epoch."""
        if epoch in self._epoch_end:
            return self._epoch_end[epoch]
        return epoch * self.steps_per_epoch if self.steps_per_epoch else None

    def _on_finished(self) -> None:
        self.running = False
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Close")
        self.cancel_button.clicked.disconnect()
        self.cancel_button.clicked.connect(self.accept)
        ended = "cancelled" if self.worker.cancelled else "finished"
        self.eta_label.setText(ended)
        self.bar.setRange(0, max(self.bar.maximum(), 1))
        if not self.worker.cancelled:
            self.bar.setValue(self.bar.maximum())
        self.bar.setFormat(ended if self.worker.cancelled else "done")

    def reject(self) -> None:
        if self.running:
            self.request_cancel()
        else:
            self.accept()


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
