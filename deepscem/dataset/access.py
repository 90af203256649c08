"""One lock per dataset file, shared by the background readers and the editor of one process.

HDF5 refuses to open a file for writing while the same process holds it open read-only
("file is already open for read-only"), so a viewer reading a slice on a thread and a brush
stroke written on the GUI thread must take turns. Both go through :func:`file_lock`; each
holds it only for one read or one stroke (milliseconds), never while idle.

>>> from pathlib import Path
>>> file_lock(Path("a.hdf5")) is file_lock(Path("./a.hdf5"))
True
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_LOCKS: dict[str, threading.RLock] = {}
_GUARD = threading.Lock()


def file_lock(path: str | os.PathLike) -> threading.RLock:
    """The lock of the file at ``path`` (the same object for every spelling of the path)."""
    key = os.path.normcase(os.path.abspath(Path(path)))
    with _GUARD:
        return _LOCKS.setdefault(key, threading.RLock())
