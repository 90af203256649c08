"""Progress reporting and cooperative cancel: the seam between the core and its front ends.

Every long core function takes keyword-only ``progress=`` (a callable receiving
:class:`Progress` records) and ``cancel=`` (a :class:`CancelToken`). It reports in its
natural unit (slabs, batches, tiles) and checks the token at every unit. The CLI passes a
:class:`TqdmProgress`, the GUI a callable that emits a Qt signal, tests a list's
``append``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deepscem.errors import Cancelled


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
         stage: str = "", **metrics: Any) -> None:
    """Send one report if a callback was given (the common one-liner in core loops)."""
    if progress is not None:
        progress(Progress(done, total, unit, stage, dict(metrics)))


def check(cancel: CancelToken | None) -> None:
    """Raise :class:`Cancelled` if ``cancel`` was set (no-op for ``None``)."""
    if cancel is not None:
        cancel.raise_if_cancelled()


class TqdmProgress:
    """Render :class:`Progress` records as tqdm bars on stderr (one bar per stage).

    Use as a context manager so the last bar is closed::

        with TqdmProgress("adding sample") as bar:
            dataset.add_sample(..., progress=bar)
    """

    def __init__(self, description: str = "", disable: bool | None = None) -> None:
        self.description = description
        self.disable = disable
        self._bar = None
        self._stage: str | None = None

    def __call__(self, p: Progress) -> None:
        from tqdm import tqdm

        if self._bar is None or p.stage != self._stage or (p.total != self._bar.total):
            self.close()
            label = " ".join(s for s in (self.description, p.stage) if s)
            self._bar = tqdm(total=p.total, desc=label, unit=p.unit, disable=self.disable,
                             dynamic_ncols=True)
            self._stage = p.stage
        self._bar.n = p.done
        if p.metrics:
            self._bar.set_postfix({k: _fmt(v) for k, v in p.metrics.items()}, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
