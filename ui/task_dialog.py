"""A small non-blocking dialog following one :class:`~ui.workers.Worker`: bar, ETA, Cancel."""

from __future__ import annotations

import time

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from deepscem.progress import Progress

from .workers import Worker


def format_eta(seconds: float | None) -> str:
    """``75.2`` -> ``"1:15"``; ``3725`` -> ``"1:02:05"``; None -> ``"--"``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class EtaEstimator:
    """Remaining time from the rate since the current stage started (stages restart it)."""

    def __init__(self) -> None:
        self._stage: str | None = None
        self._t0 = 0.0
        self._done0 = 0

    def update(self, record: Progress, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        if record.stage != self._stage or record.done < self._done0:
            self._stage, self._t0, self._done0 = record.stage, now, record.done
            return None
        if not record.total or record.done <= self._done0:
            return None
        rate = (record.done - self._done0) / max(now - self._t0, 1e-9)
        return (record.total - record.done) / rate


class TaskDialog(QDialog):
    """Shows a worker's progress; Cancel asks it to stop; closes itself when it finishes."""

    def __init__(self, worker: Worker, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        self.setWindowTitle(worker.title)
        self.setWindowModality(Qt.NonModal)
        self.setAttribute(Qt.WA_DeleteOnClose)  # one per task: freed when it closes
        self.setMinimumWidth(380)
        self._eta = EtaEstimator()
        self._eta_seconds: float | None = None  # the last rate-based estimate

        self.stage_label = QLabel(worker.title)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # busy until the first report says how much there is
        self.eta_label = QLabel("ETA --")
        self.metrics_label = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current step; nothing half-written is kept")
        self.cancel_button.clicked.connect(self.request_cancel)

        row = QHBoxLayout()
        row.addWidget(self.eta_label, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stage_label)
        layout.addWidget(self.bar)
        layout.addWidget(self.metrics_label)
        layout.addLayout(row)

        worker.signals.progress.connect(self.on_progress)
        worker.signals.finished.connect(self.accept)

    def request_cancel(self) -> None:
        self.worker.cancel()
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling...")

    def reject(self) -> None:  # Escape / window close = cancel, the dialog closes on finished
        self.request_cancel()

    def on_progress(self, record: Progress, now: float | None = None) -> None:
        stage = f"{self.worker.title}: {record.stage}" if record.stage else self.worker.title
        self.stage_label.setText(stage)
        if record.total:
            self.bar.setRange(0, int(record.total))
            self.bar.setValue(min(int(record.done), int(record.total)))
            self.bar.setFormat(f"{record.stage + ': ' if record.stage else ''}%v / %m {record.unit}")
        else:
            self.bar.setRange(0, 0)
        self._eta_seconds = self._eta.update(record, now)
        self.eta_label.setText(f"ETA {format_eta(self._eta_seconds)}")
        if record.metrics:
            self.metrics_label.setText("  ".join(f"{k} {_fmt(v)}" for k, v in record.metrics.items()))


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
