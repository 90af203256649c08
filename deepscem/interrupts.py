"""Ctrl+C (SIGINT) and SIGTERM for the command line: stop at the next safe point, then exit 1.

A KeyboardInterrupt raised wherever Python happens to be can land in an h5py weakref
callback, where it is printed as "Exception ignored" and lost: the command carried on and
exited 0. So the handler raises nothing the first time: it sets a process-wide
:class:`~deepscem.progress.CancelToken`, and every ``progress.check()`` of the core's loops
(one per slab, tile, batch) raises :class:`~deepscem.errors.Interrupted` there, where the
operation rolls back what it was writing. Training stops after the current batch. A second
signal raises KeyboardInterrupt at once (for a step with no safe point). Either way the
command exits 1 and its temporary files are removed by their ``finally`` blocks.

Installed by ``cli.main`` for commands only (never for the GUI).
"""

from __future__ import annotations

import signal
import sys
import threading

from deepscem import progress as prog
from deepscem.outputs import remove_live_temps

_NAMES = {signal.SIGINT: "Ctrl+C (SIGINT)", signal.SIGTERM: "SIGTERM"}


class InterruptHandler:
    """Context manager: install the handlers on enter, restore the previous ones on exit."""

    def __init__(self) -> None:
        self.token = prog.CancelToken()
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> InterruptHandler:
        if threading.current_thread() is threading.main_thread():
            for signum in _NAMES:
                self._previous[signum] = signal.signal(signum, self._handle)
            prog.set_process_cancel(self.token)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
        prog.set_process_cancel(None)

    @property
    def reason(self) -> str | None:
        return None if self.signal_name is None else f"interrupted by {self.signal_name}"

    def _handle(self, signum: int, frame) -> None:
        if self.token.cancelled:
            remove_live_temps()
            raise KeyboardInterrupt
        self.signal_name = _NAMES.get(signum, f"signal {signum}")
        prog.set_process_cancel(self.token, f"interrupted by {self.signal_name}")
        self.token.cancel()
        print(f"\n{self.signal_name}: stopping at the next safe point (again to stop at once)",
              file=sys.stderr, flush=True)
