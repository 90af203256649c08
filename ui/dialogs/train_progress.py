"""The training window: live loss / validation-loss curves, progress, ETA and Cancel."""

from __future__ import annotations

from PyQt5.QtWidgets import QWidget

from deepscem.progress import Progress
from ui.dialogs.loss_plot import LossPlot
from ui.task_dialog import TaskDialog
from ui.workers import Worker


class TrainProgressDialog(TaskDialog):
    """A :class:`TaskDialog` with a :class:`LossPlot`; stays open after training so the
    curves can be read (closing it then just closes it)."""

    def __init__(self, worker: Worker, parent: QWidget | None = None) -> None:
        super().__init__(worker, parent)
        self.setMinimumSize(560, 420)
        self.plot = LossPlot()
        self.layout().insertWidget(2, self.plot, 1)
        self._step = 0          # training steps seen, over all epochs
        self._last_done = -1
        self.running = True
        worker.signals.finished.disconnect(self.accept)
        worker.signals.finished.connect(self._on_finished)

    def on_progress(self, record: Progress) -> None:
        super().on_progress(record)
        metrics = record.metrics
        stage = (record.stage or "").lower()
        if "loss" in metrics and not stage.startswith("valid"):
            # ``done`` counts steps inside an epoch, or over the run: follow it either way.
            self._step += max(record.done - self._last_done, 1) if record.done > self._last_done else 1
            self._last_done = record.done
            self.plot.add("loss", self._step, metrics["loss"])
        if "val_loss" in metrics:
            self.plot.add("val_loss", self._step, metrics["val_loss"])

    def _on_finished(self) -> None:
        self.running = False
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Close")
        self.cancel_button.clicked.disconnect()
        self.cancel_button.clicked.connect(self.accept)
        self.eta_label.setText("finished")

    def reject(self) -> None:
        if self.running:
            self.request_cancel()
        else:
            self.accept()
