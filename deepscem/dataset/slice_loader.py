"""Background reads of what a viewer shows, where the newest request wins (Qt-free).

A viewer scrolled across a thousand slices must not queue a thousand reads: while one read
runs, later requests replace each other and only the newest runs next (dragging a Z slider
from 0 to 999 reads a handful of slices, the last being 999). A read asked for before
:meth:`NewestWinsLoader.invalidate` (another sample shown, other layers ticked) is not
delivered. The GUI turns ``deliver`` into a Qt signal; tests call the loader directly.

:func:`read_planes` is the read itself: the image and a list of layers of one sample, in one
region, each file opened for the read and closed again (the viewer never holds a handle an
editor or a worker would need), under :func:`deepscem.dataset.access.file_lock`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from deepscem.dataset.access import file_lock
from deepscem.dataset.store import Dataset

#: ``deliver(key, result, error)``: ``error`` is None on success (then ``result`` holds the job's value).
Deliver = Callable[[Hashable, Any, BaseException | None], None]


class NewestWinsLoader:
    """Runs one job at a time on its own thread; at most one more waits, the newest asked for.

    ``deliver`` is called on the loader's thread after each job that is still current (not
    superseded by :meth:`invalidate`), with the job's key and its result or exception.
    """

    def __init__(self, deliver: Deliver, name: str = "slice-loader") -> None:
        self._deliver = deliver
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._running = False
        self._pending: tuple[Hashable, Callable[[], Any], int] | None = None
        self._generation = 0
        self._closed = False

    @property
    def busy(self) -> bool:
        """True while a job runs or waits."""
        with self._lock:
            return self._running or self._pending is not None

    def request(self, key: Hashable, job: Callable[[], Any]) -> None:
        """Run ``job`` (no arguments) now, or after the running one, replacing any waiting job."""
        with self._lock:
            if self._closed:
                return
            entry = (key, job, self._generation)
            if self._running:
                self._pending = entry
                return
            self._running = True
        self._start(entry)

    def invalidate(self) -> None:
        """Drop the waiting job and never deliver the running one (what is shown changed)."""
        with self._lock:
            self._generation += 1
            self._pending = None

    def shutdown(self) -> None:
        """Stop: the waiting job is dropped, a running one finishes undelivered."""
        with self._lock:
            self._closed = True
            self._generation += 1
            self._pending = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _start(self, entry: tuple[Hashable, Callable[[], Any], int]) -> None:
        try:
            self._pool.submit(self._run, entry)
        except RuntimeError:  # shut down meanwhile
            with self._lock:
                self._running = False

    def _run(self, entry: tuple[Hashable, Callable[[], Any], int]) -> None:
        key, job, generation = entry
        result, error = None, None
        try:
            result = job()
        except Exception as err:  # noqa: BLE001 - delivered to the caller, who decides what it means
            error = err
        with self._lock:
            current = generation == self._generation and not self._closed
            following, self._pending = self._pending, None
            self._running = following is not None
        if current:
            self._deliver(key, result, error)
        if following is not None:
            self._start(following)


def read_planes(sample: str, wanted: Sequence[tuple[str, Path, str]],
                region: tuple[slice, slice, slice]) -> dict[str, np.ndarray]:
    """``{key: array}`` for each ``(key, file, layer)`` in ``wanted``, all of sample ``sample``,
    cut to ``region`` (slices over Z, Y, X; arrays keep 3 dims, stored dtype). Layers a file
    does not hold (any more) are left out; a missing file or sample raises ``DatasetError``."""
    by_file: dict[Path, list[tuple[str, str]]] = {}
    for key, path, layer in wanted:
        by_file.setdefault(Path(path), []).append((key, layer))
    planes = {}
    for path, layers in by_file.items():
        with file_lock(path), Dataset.open(path, check_samples=False) as ds:
            s = ds.sample(sample)
            present = set(s.layer_names())
            planes.update({key: np.asarray(s.read_layer(layer, region))
                           for key, layer in layers if layer in present})
    return planes
