"""Progress reporting and cooperative cancel: the seam between the core and its front ends.

Every long core function takes keyword-only ``progress=`` (a callable receiving
:class:`Progress` records) and ``cancel=`` (a :class:`CancelToken`). It reports in its
natural unit (slabs, batches, tiles) and checks the token at every unit. The CLI passes a
:class:`TqdmProgress`, the GUI a callable that emits a Qt signal, tests a list's
``append``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deepscem.errors import Cancelled, Interrupted


@dataclass(frozen=True)
class Progress:
    """One progress report: ``done`` of ``total`` units (``total`` None when unknown).

    ``metrics`` carries live values a front end may show (e.g. ``{"loss": 0.31}``);
    ``stage`` names the current step of a multi-step operation ("train", "validate"...).
    """

    done: int
    total: int | None
    unit: str = "steps"
    stage: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    # Seconds left by the producer's own reckoning, when it knows better than the rate of
    # ``done`` (a training that a time limit will end before its last step); front ends
    # show the smaller of the two.
    eta_s: float | None = None

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


ProgressCallback = Callable[[Progress], None]


class CancelToken:
    """A thread-safe flag a front end sets and a core loop polls.

    >>> token = CancelToken(); token.cancel(); token.cancelled
    True
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


def emit(progress: ProgressCallback | None, done: int, total: int | None, unit: str = "steps",
         stage: str = "", *, eta_s: float | None = None, **metrics: Any) -> None:
    """Send one report if a callback was given (the common one-liner in core loops)."""
    if progress is not None:
        progress(Progress(done, total, unit, stage, dict(metrics), eta_s))


# The command line's token, set by its SIGINT/SIGTERM handler (deepscem.interrupts): every
# check() is a safe point where an interrupted command stops, whatever token it was given.
_process_cancel: CancelToken | None = None
_process_reason = "interrupted"
# Test hook: seconds to sleep at every check(), so fault tests can signal a command mid-edit.
_UNIT_DELAY = float(os.environ.get("DEEPSCEM_TEST_UNIT_DELAY") or 0)


def set_process_cancel(token: CancelToken | None, reason: str = "interrupted") -> None:
    """Make ``token`` the process-wide interrupt (the CLI's signal handler sets it)."""
    global _process_cancel, _process_reason
    _process_cancel, _process_reason = token, reason


def process_token() -> CancelToken | None:
    """The command line's interrupt token, if it installed one (for loops that stop gracefully)."""
    return _process_cancel


def process_cancelled() -> str | None:
    """Why the process was interrupted (e.g. "interrupted by Ctrl+C (SIGINT)"), or None."""
    if _process_cancel is not None and _process_cancel.cancelled:
        return _process_reason
    return None


def check(cancel: CancelToken | None) -> None:
    """Raise :class:`Cancelled` if ``cancel`` was set (no-op for ``None``), or
    :class:`Interrupted` if the command line was interrupted (Ctrl+C, SIGTERM)."""
    if _UNIT_DELAY:
        time.sleep(_UNIT_DELAY)
    if cancel is not None:
        cancel.raise_if_cancelled()
    reason = process_cancelled()
    if reason is not None:
        raise Interrupted(f"{reason}: stopped before finishing; what it was writing was discarded")


class TqdmProgress:
    """Render :class:`Progress` records as tqdm bars on stderr (one bar per stage); without a
    terminal (a batch job's log), as plain lines (see :class:`LineProgress`).

    Use as a context manager so the last bar is closed::

        with TqdmProgress("adding sample") as bar:
            dataset.add_sample(..., progress=bar)
    """

    def __init__(self, description: str = "", disable: bool | None = None) -> None:
        self.description = description
        self.disable = disable
        self._bar = None
        self._stage: str | None = None
        self._lines = None
        if disable is None and not _is_terminal(sys.stderr):
            self._lines = LineProgress(description)

    def __call__(self, p: Progress) -> None:
        if self._lines is not None:
            self._lines(p)
            return
        from tqdm import tqdm

        if self._bar is None or p.stage != self._stage or (p.total != self._bar.total):
            self.close()
            label = " ".join(s for s in (self.description, p.stage) if s)
            self._bar = tqdm(total=p.total, desc=label, unit=p.unit, disable=self.disable,
                             dynamic_ncols=True)
            self._stage = p.stage
        self._bar.n = p.done
        postfix = {"time left": _clock(p.eta_s)} if p.eta_s is not None else {}
        postfix.update({k: _fmt(v) for k, v in p.metrics.items()})
        if postfix:
            self._bar.set_postfix(postfix, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LineProgress:
    """Plain progress lines for logs: ``label: done/total unit (pct%), rate unit/s, ETA m:ss``,
    printed at the first report, every ``step`` (5 %) of the total or ``seconds`` (60 s),
    and at the end of each stage. Example::

        predict: 40/800 tiles (5%), 3.1 tiles/s, ETA 4:05
    """

    def __init__(self, description: str = "", *, step: float = 0.05, seconds: float = 60.0,
                 stream=None) -> None:
        self.description, self.step, self.seconds = description, step, seconds
        self.stream = stream
        self._key: tuple | None = None
        self._start = self._last_time = 0.0
        self._start_done = 0
        self._last_bucket = -1.0

    def __call__(self, p: Progress) -> None:
        if p.total == 0:  # nothing to do: no line
            return
        now = time.monotonic()
        key = (p.stage, p.total)
        if key != self._key:  # a new stage: start its clock
            self._key, self._start, self._start_done = key, now, p.done
            self._last_time, self._last_bucket = 0.0, -1.0
        fraction = p.fraction
        finished = fraction is not None and fraction >= 1.0
        # Whole steps (0.05 -> buckets 0..20) so float sums never skip a line.
        bucket = -1 if fraction is None else int(fraction / self.step + 1e-9)
        due = (self._last_bucket < 0 or now - self._last_time >= self.seconds or finished
               or bucket > self._last_bucket)
        if not due or (finished and self._last_bucket >= round(1 / self.step)):
            return
        self._last_time, self._last_bucket = now, max(bucket, 0)
        print(self.format(p, now - self._start, p.done - self._start_done),
              file=self.stream or sys.stderr, flush=True)

    def format(self, p: Progress, elapsed: float, done_here: int) -> str:
        parts = [self.description] + ([p.stage] if p.stage != self.description else [])
        label = " ".join(s for s in parts if s) or "progress"
        text = f"{label}: {p.done}" + (f"/{p.total}" if p.total else "") + f" {p.unit}"
        if p.fraction is not None:
            text += f" ({100 * p.fraction:.0f}%)"
        eta = None
        if elapsed > 0 and done_here > 0:
            rate = done_here / elapsed
            text += f", {rate:.3g} {p.unit}/s"
            if p.total:
                eta = max(0, p.total - p.done) / rate
        if p.eta_s is not None and (eta is None or p.eta_s < eta):
            text += f", ETA {_clock(p.eta_s)} (time limit)"
        elif eta is not None:
            text += f", ETA {_clock(eta)}"
        if p.metrics:
            text += ", " + ", ".join(f"{k} {_fmt(v)}" for k, v in p.metrics.items())
        return text

    def close(self) -> None:
        pass


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def part(progress: ProgressCallback | None, index: int, count: int,
         stage: str) -> ProgressCallback | None:
    """A callback for part ``index`` of ``count`` equal parts of a job (e.g. one layer of
    several): its reports become per mille of the whole job."""
    if progress is None:
        return None

    def report(p: Progress) -> None:
        emit(progress, index * 1000 + int(1000 * (p.fraction or 0)), count * 1000, "‰", stage)

    return report
