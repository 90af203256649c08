"""A writer's lock of our own, next to the dataset: ``.<name>.lock`` holding "host pid".

HDF5's own file lock is off with ``HDF5_USE_FILE_LOCKING=FALSE`` and on file systems without
locks (the network file systems of clusters, where :func:`deepscem.dataset.store._open_h5`
opens without it), and two writers then both succeed and one's sample is lost. This lock is
created with ``O_CREAT | O_EXCL`` (atomic on local file systems and on NFS v3+), so only one
writer at a time holds it. A lock whose process is gone on this machine (a killed run) is
stale: it is replaced, and reported. A lock of another machine is never broken here: the
message names it so the user can remove it once that machine's job has ended.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import threading
import time
from pathlib import Path

from deepscem.errors import DatasetError
from deepscem.outputs import process_alive

log = logging.getLogger("deepscem")
_HELD: dict[Path, int] = {}  # locks this process holds, with a count (one process may open twice)
_HELD_LOCK = threading.Lock()


#: An empty lock file older than this was left by a writer killed while creating it.
EMPTY_LOCK_GRACE_S = 5.0


def lock_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


class WriterLock:
    """Hold the writer's lock of ``path`` between :meth:`acquire` and :meth:`release`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.lock = lock_path(self.path)
        self.held = False

    def acquire(self) -> WriterLock:
        key = self.lock.absolute()
        with _HELD_LOCK:
            if _HELD.get(key):
                _HELD[key] += 1
                self.held = True
                return self
            self._create()
            _HELD[key] = 1
            self.held = True
        return self

    def _create(self) -> None:
        for _ in range(3):
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._remove_if_stale():
                    raise DatasetError(self._busy_message()) from None
                continue
            except OSError as err:
                reason = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                          errno.ENOSPC: "no space left on the device"}.get(err.errno, err.strerror)
                raise DatasetError(f"{self.path}: cannot lock it for writing ({reason}); "
                                   "check the folder's permissions and free space") from None
            try:
                os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
            finally:
                os.close(fd)
            return
        raise DatasetError(self._busy_message())

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        key = self.lock.absolute()
        with _HELD_LOCK:
            _HELD[key] = _HELD.get(key, 1) - 1
            if _HELD[key] > 0:
                return
            del _HELD[key]
            with contextlib.suppress(OSError):
                if _owner(self.lock) == (socket.gethostname(), os.getpid()):
                    self.lock.unlink()

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _remove_if_stale(self) -> bool:
        owner = _owner(self.lock)
        if owner is None:  # vanished meanwhile, or unreadable/empty (a writer mid-creation...
            try:
                age = time.time() - self.lock.stat().st_mtime
            except FileNotFoundError:
                return True
            if age < EMPTY_LOCK_GRACE_S:
                return False
            # ... or a writer killed between creating the lock and writing its owner in it)
            with contextlib.suppress(FileNotFoundError):
                self.lock.unlink()
            log.warning("%s: removed an empty lock left by an interrupted writer; check the "
                        "dataset ('dataset info')", self.path.name)
            return True
        host, pid = owner
        if host != socket.gethostname() or process_alive(pid) is not False:
            return False
        with contextlib.suppress(FileNotFoundError):
            self.lock.unlink()
        log.warning("%s: removed the lock of process %d, which was changing it and was "
                    "interrupted; check the dataset ('dataset info')", self.path.name, pid)
        return True

    def _busy_message(self) -> str:
        owner = _owner(self.lock)
        who = f"process {owner[1]} on {owner[0]}" if owner else "another program"
        return (f"{self.path} is being changed by {who}; wait until it has finished (if that "
                f"program is gone, remove {self.lock.name} in the same folder)")


def _owner(lock: Path) -> tuple[str, int] | None:
    try:
        host, pid = lock.read_text().split()
        return host, int(pid)
    except (OSError, ValueError):
        return None
