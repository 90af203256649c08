"""Edits in progress inside a dataset file, under hidden names, and their recovery.

An edit that writes a lot (add a sample, crop, a distance transform) writes its new group or
layer under a hidden name ``.<kind>-<pid>-<name>`` (names starting with "." are never samples
or layers: readers skip them), flushes, and only then swaps it in with HDF5 moves, which touch
a few bytes of metadata. A killed run therefore leaves either the dataset as it was plus a
hidden leftover, or the finished edit — never a half-written sample or layer under its real
name. The next writer (:func:`recover`, called when a dataset is opened for writing) removes
leftovers of processes that are gone, puts back an original that a killed swap had set
aside, and reports what it did.
"""

from __future__ import annotations

import logging
import os
import re

import h5py

from deepscem.outputs import process_alive

log = logging.getLogger("deepscem")
_PENDING = re.compile(r"\.(add|crop|old|dt|olddt)-(\d+)-(.+)")
WHAT = {"add": "an unfinished new sample", "crop": "an unfinished crop", "dt": "an unfinished "
        "distance transform"}


def pending_name(kind: str, name: str) -> str:
    """The hidden name of ``name`` while this process writes it (``kind``: add, crop, old, dt,
    olddt)."""
    return f".{kind}-{os.getpid()}-{name}"


_failed: set[str] = set()  # files (or "" for a new file being written) whose HDF5 write failed


def write_failed(path: str | os.PathLike | None = None) -> bool:
    """Whether an HDF5 write of this process failed (disk full, I/O error), for ``path`` or
    for any file. HDF5 then holds metadata it cannot write, and touching that file again
    (deleting, flushing, closing, even freeing its objects) can crash the interpreter (a
    segmentation fault in HDF5's close): the file is left as last flushed, and the command
    line exits at once (``os._exit``)."""
    if path is None:
        return bool(_failed)
    return os.fspath(path) in _failed


def hdf5_failure(err: BaseException) -> bool:
    """An error raised by HDF5 itself (its messages carry 'errno =' or 'Unable to'/'Can't'),
    as opposed to an input file that could not be read."""
    text = str(err)
    return isinstance(err, RuntimeError) or (isinstance(err, OSError) and any(
        key in text for key in ("errno =", "Unable to", "Can't", "file write failed")))


def mark_write_failed(path: str | os.PathLike | None = None) -> None:
    _failed.add(os.fspath(path) if path is not None else "")


def discard(group: h5py.Group, name: str, err: BaseException | None = None) -> None:
    """Remove ``name`` (the hidden object of an edit that failed or was cancelled). After a
    failed write (``err`` an OSError/RuntimeError from HDF5) it is left alone: it is hidden,
    and the next writer's :func:`recover` removes it."""
    filename = group.file.filename
    if err is not None and hdf5_failure(err):
        mark_write_failed(filename)
        return
    try:
        if name in group:
            del group[name]
        group.file.flush()
    except (OSError, RuntimeError, KeyError):
        mark_write_failed(filename)


def failure_reason(err: BaseException) -> str:
    """A short reason for a failed write (HDF5 errors carry errno only in their text)."""
    text = str(err)
    if "errno = 28" in text or getattr(err, "errno", None) == 28:
        return "no space left on the device"
    if "errno = 30" in text or getattr(err, "errno", None) == 30:
        return "read-only file system"
    if "errno = 13" in text or getattr(err, "errno", None) == 13:
        return "permission denied"
    return getattr(err, "strerror", None) or (text.splitlines() or [type(err).__name__])[0]


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def recover(file: h5py.File, path) -> list[str]:
    """Clean up after killed writers (their pid is gone); returns the messages logged."""
    messages = []
    for name in [n for n in file.keys() if is_hidden(n)]:
        messages += _recover_item(file, name, path, "")
    for name in [n for n in file.keys() if not is_hidden(n)]:  # restored samples included
        if isinstance(file.get(name), h5py.Group):
            for layer in [n for n in file[name].keys() if is_hidden(n)]:
                messages += _recover_item(file[name], layer, path, f"sample {name!r}: ")
    for message in messages:
        log.warning("%s", message)
    if messages:
        file.flush()
    return messages


def _recover_item(group: h5py.Group, name: str, path, where: str) -> list[str]:
    match = _PENDING.fullmatch(name)
    if match is None:
        return []
    kind, pid, target = match.group(1), int(match.group(2)), match.group(3)
    if process_alive(pid) is not False:
        return []
    run = f"left by an interrupted run (process {pid})"
    if kind in ("old", "olddt"):
        if target in group:  # the swap finished; only the set-aside original remained
            del group[name]
            return []
        group.move(name, target)
        return [f"{path}: {where}{target!r} was being replaced by a run that was interrupted "
                f"(process {pid}); restored the original"]
    del group[name]
    return [f"{path}: {where}removed {WHAT[kind]} {target!r} {run}; the dataset is as it was "
            "before that run"]
