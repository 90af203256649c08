"""Keras callbacks of a training run: progress/cancel, NaN guard, keep best, CSV log.

They share one :class:`RunState` so the trainer can tell why training stopped
(a :class:`~deepscem.training.stop_reasons.StopReason`) and which epoch was kept.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from deepscem.progress import CancelToken, ProgressCallback, emit
from deepscem.training.stop_reasons import StopReason


@dataclass
class RunState:
    """What happened during ``fit``: stop reason, message, kept epoch, per-epoch rows."""

    reason: StopReason = StopReason.COMPLETED
    message: str = ""
    best_epoch: int | None = None
    best_value: float | None = None
    steps_done: int = 0
    # Forward/backward passes per step (gradient accumulation over micro-batches): Keras
    # calls the batch hooks once per pass, a step (weight update) ends every this many.
    passes_per_step: int = 1
    passes_done: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    # the run restores the best epoch's weights at the end (keep_best), else keeps the last ones
    keep_best: bool = True

    @property
    def kept(self) -> str:
        """What a stopped run keeps, for its messages."""
        return "kept the best weights" if self.keep_best else "kept the last weights"

    def end_pass(self) -> bool:
        """Count one pass; True when it completed a step (the weights were just updated)."""
        self.passes_done += 1
        if self.passes_done % self.passes_per_step:
            return False
        self.steps_done += 1
        return True

    def stop(self, reason: str, message: str = "") -> None:
        if self.reason == StopReason.COMPLETED:  # the first reason wins (NaN, then a cancel...)
            self.reason, self.message = reason, message


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def current_lr(model: keras.Model) -> float:
    """The optimizer's learning rate now (schedules evaluated at the current step)."""
    lr = model.optimizer.learning_rate
    return float(keras.ops.convert_to_numpy(lr))


class Budget:
    """A run's time limit (``seconds``, None for none) and the clock it counts, started at the
    first training batch (label indexing and set-up do not count). ``clock`` "wall" measures
    elapsed time; "cpu" the process's CPU time (all its threads), so a budget buys the same
    computation on a machine shared with other jobs (on an idle 2-core machine one wall minute
    is ~2 CPU minutes). One object is shared by the callback that stops the run
    (:class:`BudgetAndSchedule`) and the one that reports what is left of it."""

    def __init__(self, seconds: float | None, clock: str = "wall") -> None:
        self.seconds = seconds
        self.clock = time.process_time if clock == "cpu" else time.monotonic
        self.start: tuple[float, float] | None = None  # (wall, budget clock) at the first batch

    @classmethod
    def minutes(cls, minutes: float | None, clock: str = "wall") -> Budget:
        """A budget of ``minutes`` (None: no limit)."""
        return cls(float(minutes) * 60 if minutes else None, clock)

    def begin(self) -> None:
        """Start the clock (the first call only)."""
        if self.start is None:
            self.start = (time.monotonic(), self.clock())

    def elapsed(self) -> float:
        """Seconds of the budget's clock since the first batch."""
        return 0.0 if self.start is None else self.clock() - self.start[1]

    def wall_left(self) -> float | None:
        """Wall-clock seconds until the time limit ends the run: what is left of the budget at
        the rate its clock has run so far (CPU seconds per wall second, or 1); None without a
        limit or before the clock has moved."""
        used = self.elapsed()
        if not self.seconds or self.start is None or used <= 0:
            return None
        return max(0.0, (time.monotonic() - self.start[0]) * (self.seconds - used) / used)


class ProgressAndCancel(keras.callbacks.Callback):
    """Batch-level progress (``stage`` "train", unit "batches", metrics loss, epoch...) and cancel.

    Cancel sets ``model.stop_training`` after the current batch (and stops a running
    validation), so fit returns within one batch. With micro-batches, reports and cancel
    come at the end of each step (all its passes done).
    """

    def __init__(self, state: RunState, total: int | None,
                 progress: ProgressCallback | None, cancel: CancelToken | None, *,
                 budget: Budget | None = None) -> None:
        """total: the run's steps; None when the time limit, not the epochs, ends it (their
        count then only stands for "many"). budget: the run's time limit, whose wall-clock
        seconds left each report carries."""
        super().__init__()
        self.state, self.total = state, total
        self.progress, self.cancel = progress, cancel
        self.budget = budget or Budget(None)
        self.epoch = 0
        self.last_val: dict[str, float] = {}

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.budget.begin()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self.state.end_pass():
            return
        metrics = {k: float(v) for k, v in (logs or {}).items() if _finite(v)}
        metrics.update(self.last_val)
        emit(self.progress, self.state.steps_done, self.total, "batches", "train",
             eta_s=self.budget.wall_left(), epoch=self.epoch + 1, **metrics)
        self._check_cancel()

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.cancel is not None and self.cancel.cancelled:
            self.model.stop_evaluating = True
            self._check_cancel()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.last_val = {k: float(v) for k, v in (logs or {}).items()
                         if k == "val_loss" and _finite(v)}

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.cancelled:
            self.model.stop_training = True
            self.state.stop(StopReason.CANCELLED, f"training cancelled; {self.state.kept} so far")


class NanGuard(keras.callbacks.Callback):
    """Stop on a NaN/inf loss and put back the last weights known to give a finite loss.

    Keras reports the epoch's running mean loss after each batch, so it turns non-finite
    at the first bad batch. The weights after batch k are only known good once batch
    k + 1 (computed with them) reports a finite loss, so a snapshot is "pending" for one
    batch before it is trusted. Snapshots are spaced so they cost < ~3% of the batch time.
    """

    def __init__(self, state: RunState) -> None:
        super().__init__()
        self.state = state
        self.good: list[np.ndarray] | None = None
        self.pending: list[np.ndarray] | None = None
        self.every = 1
        self.since = 0
        self.epoch = 0
        self._t = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.good = self.model.get_weights()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._t = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        batch_time = time.perf_counter() - self._t
        loss = (logs or {}).get("loss")
        if loss is not None and not _finite(loss):
            self.model.stop_training = True
            if self.good is not None:
                self.model.set_weights(self.good)
            step = batch // self.state.passes_per_step + 1
            self.state.stop(
                StopReason.NAN, f"loss became {float(loss)} at epoch {self.epoch + 1}, batch {step}; "
                                   "stopped and kept the last weights with a finite loss (try a lower "
                                   "learning rate, another loss or a smaller patch)")
            return
        if self.pending is not None:
            self.good, self.pending = self.pending, None
        self.since += 1
        if self.since >= self.every:
            t0 = time.perf_counter()
            self.pending = self.model.get_weights()
            cost = time.perf_counter() - t0
            self.since = 0
            self.every = max(1, min(50, math.ceil(cost / max(1e-6, 0.03 * batch_time))))


class KeepBest(keras.callbacks.Callback):
    """Remember the weights of the best epoch by ``monitor`` (in memory); restore at the end.

    Losses (names ending in "loss") are best when lowest, scores (e.g. "val_f1") when
    highest. Epochs whose monitored value is not finite, or that were cut short by a cancel,
    never count as best. When ``monitor`` is missing from an epoch's logs, ``fallback`` is
    watched instead. ``restore`` False only records the best epoch.
    """

    def __init__(self, state: RunState, monitor: str, restore: bool = True,
                 fallback: str | None = None) -> None:
        super().__init__()
        self.state, self.monitor, self.restore = state, monitor, restore
        self.fallback = fallback
        self.weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        key = self.monitor if self.monitor in logs or self.fallback is None else self.fallback
        value = logs.get(key)
        if self.state.reason in (StopReason.CANCELLED, StopReason.NAN) or not _finite(value):
            return
        # stored as "lower is better" so RunState.best_value compares the same way for both
        value = float(value) if key.endswith("loss") else -float(value)
        if self.state.best_value is None or value < self.state.best_value:
            self.state.best_value, self.state.best_epoch = value, epoch
            if self.restore:
                self.weights = self.model.get_weights()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.restore and self.weights is not None:
            self.model.set_weights(self.weights)


class AverageWeights(keras.callbacks.SwapEMAWeights):
    """Validation, keep-best and the end of training see the optimizer's moving average of
    the weights (``use_ema``); the training steps move the raw weights.

    Goes first among the callbacks (the others' ``on_epoch_end`` then see the average) and
    its ``finish`` last: when training stops before its last epoch (time limit, early stop,
    cancel), ``finish`` keeps the average, which Keras would otherwise replace by the raw
    weights at the end of ``fit``. After a NaN stop the guard's last finite raw weights stay.
    """

    def __init__(self, state: RunState) -> None:
        super().__init__(swap_on_epoch=True)
        self.state = state
        self.finish = _KeepAverage(self)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.state.reason == StopReason.NAN:  # the average took in the non-finite weights
            self._finalize_ema_values()  # average := the guard's weights, which fit then keeps
            return
        super().on_epoch_end(epoch, logs)


class _KeepAverage(keras.callbacks.Callback):
    def __init__(self, average: AverageWeights) -> None:
        super().__init__()
        self.average = average

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.model.stop_training and self.average.state.reason != StopReason.NAN:
            self.average._finalize_ema_values()


class EpochLog(keras.callbacks.Callback):
    """Per-epoch rows (epoch, loss, val_loss, metrics, lr, time) into ``state.rows`` and a CSV file.

    The CSV has the original's first columns (``epoch,loss,val_loss``, epoch from 0) and
    is flushed every epoch, so a crash keeps the log so far. ``time`` is the epoch's
    duration in seconds, ``elapsed`` the time since training began.
    """

    def __init__(self, state: RunState, path: str | Path | None = None) -> None:
        super().__init__()
        self.state, self.path = state, Path(path) if path else None
        self._file = None
        self._writer: csv.DictWriter | None = None
        self._t0 = self._t_epoch = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._t_epoch = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        now = time.perf_counter()
        row: dict[str, Any] = {"epoch": epoch, "loss": logs.pop("loss", float("nan")),
                               "val_loss": logs.pop("val_loss", "")}
        metric_names = sorted(k for k in logs if not k.startswith("val_") and k != "learning_rate")
        for name in metric_names:
            row[name] = logs.get(name, "")
            row["val_" + name] = logs.get("val_" + name, "")
        row["lr"] = current_lr(self.model)
        row["time"] = round(now - self._t_epoch, 3)
        row["elapsed"] = round(now - self._t0, 3)
        row = {k: (float(v) if v != "" else v) if k != "epoch" else int(v) for k, v in row.items()}
        self.state.rows.append(row)
        if self.path is not None:
            if self._writer is None:
                self._file = open(self.path, "w", newline="")
                self._writer = csv.DictWriter(self._file, fieldnames=list(row), extrasaction="ignore")
                self._writer.writeheader()
            self._writer.writerow(row)
            self._file.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._file is not None:
            self._file.close()
            self._file, self._writer = None, None


class BudgetAndSchedule(keras.callbacks.Callback):
    """A time budget (:class:`Budget`) and a cosine learning-rate decay over the run.

    The run's progress is the larger of steps done / ``total_steps`` and the budget's elapsed
    time / its seconds, so with a time budget the LR reaches its floor when the time runs out,
    however fast the machine is. Example: lr0 1e-3, 15 min budget, 7.5 min elapsed -> 5.1e-4.
    """

    def __init__(self, state: RunState, *, total_steps: int, budget: Budget, cosine: bool,
                 lr0: float, floor: float = 0.02) -> None:
        super().__init__()
        self.state, self.total, self.budget = state, max(1, total_steps), budget
        self.cosine, self.lr0, self.floor = cosine, lr0, floor
        self.steps = 0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.budget.begin()
        if self.cosine:
            frac = self.steps / self.state.passes_per_step / self.total
            if self.budget.seconds:
                frac = max(frac, self.budget.elapsed() / self.budget.seconds)
            factor = self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
            self.model.optimizer.learning_rate = self.lr0 * factor

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.steps += 1
        if self.steps % self.state.passes_per_step:
            return  # stop only at the end of a step, not between its passes
        if self.budget.seconds and self.budget.elapsed() >= self.budget.seconds:
            self.model.stop_training = True
            minutes = self.budget.seconds / 60
            self.state.stop(StopReason.TIME_LIMIT, f"stopped at the {minutes:g}-minute time limit after "
                                                   f"{self.state.steps_done} steps; {self.state.kept}")
