"""The training window: live loss / validation-loss curves, progress, ETA and Cancel.

The trainer reports once per batch (stage "train", ``done`` = batches since the start,
metrics ``loss`` = the epoch's running mean, ``val_loss`` = the last finished epoch's
validation loss). The validation point of the last epoch arrives with the result's history.
"""

from __future__ import annotations

import math

from PyQt5.QtWidgets import QWidget

from deepscem.progress import Progress

from ..task_dialog import TaskDialog
from ..workers import Worker
from .loss_plot import LossPlot


class TrainProgressDialog(TaskDialog):
    """A :class:`TaskDialog` with a :class:`LossPlot`; stays open after training so the
    curves can be read (its button then closes it)."""

    def __init__(self, worker: Worker, parent: QWidget | None = None,
                 steps_per_epoch: int | None = None) -> None:
        super().__init__(worker, parent)
        self.setMinimumSize(560, 420)
        self.steps_per_epoch = steps_per_epoch
        self.plot = LossPlot()
        self.plot.x_label = "training step"
        self.layout().insertWidget(2, self.plot, 1)
        self._last_val: float | None = None
        self.running = True
        worker.signals.finished.disconnect(self.accept)
        worker.signals.finished.connect(self._on_finished)
        worker.signals.result.connect(self._on_result)

    def on_progress(self, record: Progress) -> None:
        super().on_progress(record)
        metrics = record.metrics
        if record.stage != "train":
            return
        if "loss" in metrics:
            self.plot.add("loss", record.done, metrics["loss"])
        val = metrics.get("val_loss")
        if val is not None and val != self._last_val:
            # First batch of a new epoch: the value belongs to the end of the previous one.
            self._last_val = val
            self.plot.add("val_loss", max(record.done - 1, 0), val)

    def _on_result(self, result) -> None:
        history = getattr(result, "history", None) or {}
        points = [((i + 1) * self.steps_per_epoch, _number(v))
                  for i, v in enumerate(history.get("val_loss") or [])] if self.steps_per_epoch else []
        points = [p for p in points if p[1] is not None]
        if points:  # (no validation: the history holds blanks)
            self.plot.series["val_loss"] = points
            self.plot.update()
        reason = getattr(result, "stopped_reason", "")
        message = getattr(result, "message", "")
        if reason:
            self.stage_label.setText(f"{self.worker.title}: {reason}" + (f" ({message})" if message else ""))

    def _on_finished(self) -> None:
        self.running = False
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Close")
        self.cancel_button.clicked.disconnect()
        self.cancel_button.clicked.connect(self.accept)
        self.eta_label.setText("finished")
        self.bar.setRange(0, max(self.bar.maximum(), 1))
        self.bar.setValue(self.bar.maximum())
        self.bar.setFormat("done")

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
