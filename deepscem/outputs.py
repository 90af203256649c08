"""Output files: the one rule for checking where a command writes, and the one way to write.

Every command that writes a file calls :func:`check_output` *before* any work starts (a
training of hours must not be thrown away because the log folder is read-only), and writes
through :func:`atomic_path` so a killed or failed run never leaves a half-written file under
the final name:

* an output is never one of the command's inputs (same path, same file through a link, or a
  not-yet-existing path spelled differently: ``./a.hdf5`` and ``a.hdf5``);
* an existing output is replaced only with ``overwrite`` (one wording everywhere);
* the folder exists and is writable (a read-only mount is named as such), and the name fits
  the file system's NAME_MAX and PATH_MAX;
* the data goes to a hidden temporary file next to the target, ``.<name>.part-<pid>-<rand><ext>``
  (unique per process and call, so two writers never share it), moved into place with
  ``os.replace`` (atomic on one file system) only when complete, and removed on any error,
  cancel or signal that reaches Python. Temporary files of killed runs (their process is gone)
  are removed, and reported, by the next write to the same target.

A leaf module: it imports nothing of ours but :mod:`deepscem.errors`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from deepscem.errors import DeepScemError

PathLike = str | os.PathLike
log = logging.getLogger("deepscem")

TEMP_MARK = ".part-"
# Room for TEMP_MARK, a pid (up to 10 digits), "-", 6 hex digits and an extension.
_TEMP_EXTRA = 1 + len(TEMP_MARK) + 10 + 1 + 6 + 12
_TEMP_RE = re.compile(r"\.(.+)" + re.escape(TEMP_MARK) + r"(\d+)-[0-9a-f]{6}(\.[^.]*)?")
_LIVE: set[Path] = set()  # temporary files being written by this process
_LIVE_LOCK = threading.Lock()


def exists_message(path: PathLike) -> str:
    """The one wording for an existing output (also used by the GUI's file checks)."""
    return (f"{path} already exists: choose another name, or replace it on purpose "
            "(--overwrite on the command line)")


def check_output(path: PathLike, *, inputs: Iterable | Mapping[str, PathLike | None] = (),
                 overwrite: bool = False, what: str = "output",
                 error: type[DeepScemError] = DeepScemError) -> Path:
    """Check that ``path`` can be written as ``what`` before any work starts; returns it.

    ``inputs``: the command's input files (None entries are skipped), as paths, as
    ``(role, path)`` pairs or a mapping ``{"the training dataset": path}`` whose roles name
    them in the message. Raises
    ``error`` (a :class:`DeepScemError` subclass) with a one-line message when ``path`` is an
    input, exists without ``overwrite``, is a folder, lies in a missing or read-only folder,
    or has a name longer than the file system allows.
    """
    path = Path(path)
    check_name_length(path, error=error)  # first: a stat of a too long name raises OSError
    for role, source in _named(inputs):
        if source is not None and same_file(path, source):
            raise error(f"the {what} {path} is also {role}; writing it would destroy it: "
                        "choose another file name")
    if path.is_dir():
        raise error(f"the {what} {path} is a folder: give a file name")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise error(exists_message(path))
    check_folder(path.absolute().parent, what=what, error=error)
    return path


def _named(inputs) -> Iterator[tuple[str, PathLike | None]]:
    """(role, path) pairs from a mapping, (role, path) tuples or bare paths."""
    items = inputs.items() if isinstance(inputs, Mapping) else inputs
    for item in items:
        if isinstance(item, tuple):
            yield item
        else:
            yield "one of this command's inputs", item


def check_folder(folder: PathLike, *, what: str = "output",
                 error: type[DeepScemError] = DeepScemError) -> Path:
    """``folder`` exists and this process may create files in it (else ``error``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise error(f"cannot write the {what}: the folder {folder} does not exist; create it first")
    if _read_only_mount(folder):
        raise error(f"cannot write the {what}: {folder} is on a read-only file system")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise error(f"cannot write the {what}: permission denied in the folder {folder}")
    return folder


def check_name_length(path: PathLike, *, error: type[DeepScemError] = DeepScemError) -> None:
    """The name fits NAME_MAX and the whole path PATH_MAX of the target's file system."""
    path = Path(path).absolute()
    name_max, path_max = _limits(path.parent)
    name = os.fsencode(path.name)
    if len(name) > name_max:
        raise error(f"the file name {path.name[:40]}... is {len(name)} bytes long; this file "
                    f"system allows at most {name_max}: choose a shorter name")
    if len(os.fsencode(str(path))) + _TEMP_EXTRA > path_max:
        raise error(f"the path {str(path)[:40]}... is too long for this file system (at most "
                    f"{path_max} bytes): choose a shorter folder or name")


def check_free_space(folder: PathLike, needed: int, *, what: str = "output",
                     error: type[DeepScemError] = DeepScemError) -> None:
    """``needed`` bytes are free on ``folder``'s file system (else ``error``)."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise error(f"not enough free space for the {what} in {folder}: {_size(needed)} needed, "
                    f"{_size(free)} free; free some space or write elsewhere")


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file: by inode when both exist (links, bind
    mounts), else by resolved path (for a not-yet-existing output spelled differently)."""
    return file_identity(a) == file_identity(b)


def file_identity(path: PathLike) -> tuple[int, int] | str:
    """What :func:`same_file` compares, usable as a key: (device, inode) of an existing file
    (as ``os.path.samefile``), else its resolved, case-normalised path."""
    path = Path(path)
    with contextlib.suppress(OSError):
        stat = path.stat()
        return stat.st_dev, stat.st_ino
    return os.path.normcase(path.resolve())


def same_files(a: Iterable[PathLike], b: Iterable[PathLike]) -> bool:
    """Whether ``a`` and ``b`` name the same files in the same order (each pair as :func:`same_file`)."""
    a, b = list(a), list(b)
    return len(a) == len(b) and all(same_file(x, y) for x, y in zip(a, b))


def temp_name(dst: PathLike) -> Path:
    """A fresh hidden temporary path next to ``dst``, unique to this process and call, that
    keeps ``dst``'s (lower-cased) extension (Keras checks it) and fits NAME_MAX."""
    dst = Path(dst)
    name_max, _ = _limits(dst.absolute().parent)
    suffix = dst.suffix.lower() if len(dst.suffix) <= 12 else ""
    tail = f"{TEMP_MARK}{os.getpid()}-{secrets.token_hex(3)}{suffix}"
    base = _truncate(dst.name, name_max - 1 - len(os.fsencode(tail)))
    return dst.with_name(f".{base}{tail}")


@contextlib.contextmanager
def atomic_path(dst: PathLike) -> Iterator[Path]:
    """Yield a temporary path to write ``dst``'s content to; on success it replaces ``dst``.

    On any exception (including KeyboardInterrupt, :class:`~deepscem.errors.Cancelled` and the
    CLI's SIGTERM exception) the temporary file is removed and ``dst`` is left as it was.
    The writer may create the temporary file itself (h5py, Keras, tifffile)::

        with atomic_path(out) as tmp:
            h5py.File(tmp, "w") ...
    """
    dst = Path(dst)
    remove_stale_temps(dst)
    tmp = temp_name(dst)
    with _LIVE_LOCK:
        _LIVE.add(tmp)
    try:
        yield tmp
        os.replace(tmp, dst)
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(tmp)
        with contextlib.suppress(OSError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_write(dst: PathLike, mode: str = "w", **open_args) -> Iterator:
    """Open a temporary file for ``dst`` (text ``"w"`` or binary ``"wb"``) and move it into
    place when the block ends without an error (see :func:`atomic_path`)."""
    with atomic_path(dst) as tmp, open(tmp, mode, **open_args) as handle:
        yield handle


def remove_stale_temps(dst: PathLike) -> list[Path]:
    """Remove temporary files of ``dst`` whose writing process is gone (killed runs); each is
    reported once on the ``deepscem`` logger. Files of live processes are left alone."""
    dst = Path(dst)
    folder = dst.absolute().parent
    name_max, _ = _limits(folder)
    removed = []
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            match = _TEMP_RE.fullmatch(entry.name)
            if match is None or not _names_target(match.group(1), entry.name, dst.name, name_max):
                continue
            pid = int(match.group(2))
            if process_alive(pid):
                continue
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
                log.warning("removed %s, left by an interrupted run (process %d) that was "
                            "writing %s", entry.name, pid, dst.name)
    return removed


def _names_target(base: str, temp: str, target: str, name_max: int) -> bool:
    """``base`` is ``target``, or ``target`` cut to fit NAME_MAX (then the temp name is full)."""
    if base == target:
        return True
    return target.startswith(base) and len(os.fsencode(temp)) >= name_max - 3


def remove_live_temps() -> None:
    """Remove this process's temporary files now (last resort in a signal handler)."""
    with _LIVE_LOCK:
        paths = list(_LIVE)
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of :func:`temp_name`'s (file lists hide them)."""
    return _TEMP_RE.fullmatch(name) is not None


def process_alive(pid: int) -> bool | None:
    """Whether process ``pid`` of this machine is running: True, False, or None when ``pid``
    cannot be a process id (too large: a damaged marker). Callers choose what None means:
    a temporary file of such a "process" is removed; a lock or an edit of it is left alone."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OverflowError:
        return None
    return True


def _limits(folder: Path) -> tuple[int, int]:
    try:
        return os.pathconf(folder, "PC_NAME_MAX"), os.pathconf(folder, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):  # not POSIX, or a folder that does not exist
        return 255, 4096


def _read_only_mount(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _truncate(name: str, max_bytes: int) -> str:
    raw = os.fsencode(name)
    if len(raw) <= max_bytes:
        return name
    return raw[:max(1, max_bytes)].decode("utf-8", "ignore")  # never half a UTF-8 character


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
