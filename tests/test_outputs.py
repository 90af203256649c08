"""The one output rule (deepscem.outputs): inputs are never outputs, --overwrite, folders, names,
atomic writes with unique temporary names, and clean-up after killed runs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from mounts import tmpfs

from deepscem.errors import DatasetError, DeepScemError
from deepscem.outputs import (
    atomic_path,
    atomic_write,
    check_output,
    is_temp_name,
    remove_stale_temps,
    same_file,
    same_files,
    temp_name,
)


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)


def test_an_input_is_never_an_output_however_it_is_spelled(tmp_path, monkeypatch):
    ds = tmp_path / "train.hdf5"
    ds.write_bytes(b"data")
    monkeypatch.chdir(tmp_path)
    link = tmp_path / "link.hdf5"
    link.symlink_to(ds)
    hard = tmp_path / "hard.hdf5"
    os.link(ds, hard)
    for out in ("train.hdf5", "./train.hdf5", str(ds), "sub/../train.hdf5", link, hard):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(DatasetError, match="is also the training dataset; writing it would"):
            check_output(out, inputs={"the training dataset": ds}, overwrite=True, error=DatasetError)
    # Neither exists yet: same resolved path.
    with pytest.raises(DeepScemError, match="is also MODEL_OUT"):
        check_output("new.csv", inputs=[("MODEL_OUT", tmp_path / "new.csv")])
    assert ds.read_bytes() == b"data"
    assert check_output(tmp_path / "other.hdf5", inputs=[ds, None]) == tmp_path / "other.hdf5"


def test_existing_output_needs_overwrite_and_folders_are_checked(tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("old")
    with pytest.raises(DeepScemError, match=r"already exists.*--overwrite"):
        check_output(out)
    assert check_output(out, overwrite=True) == out
    with pytest.raises(DeepScemError, match="is a folder"):
        check_output(tmp_path, overwrite=True)
    with pytest.raises(DeepScemError, match="folder .*missing does not exist"):
        check_output(tmp_path / "missing" / "x.csv")


def test_name_longer_than_name_max_is_refused_and_temp_names_fit(tmp_path):
    with pytest.raises(DeepScemError, match="bytes long; this file system allows at most 255"):
        check_output(tmp_path / ("m" * 250 + ".keras.x"))
    long = tmp_path / ("m" * 249 + ".keras")  # 255 bytes: the longest allowed name
    check_output(long)
    tmp = temp_name(long)
    assert len(tmp.name.encode()) <= 255 and tmp.name.endswith(".keras") and is_temp_name(tmp.name)
    with atomic_write(long) as fh:
        fh.write("ok")
    assert long.read_text() == "ok"


def test_read_only_file_system_is_named(tmp_path):
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        with pytest.raises(DeepScemError, match="read-only file system"):
            check_output(ro / "model.keras")


def test_atomic_path_replaces_only_on_success(tmp_path):
    dst = tmp_path / "out.bin"
    dst.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(dst) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert dst.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]
    with atomic_path(dst) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.bin.part-")
        tmp.write_bytes(b"new")
    assert dst.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.bin"]


def test_two_writers_never_share_a_temporary_name(tmp_path):
    with atomic_path(tmp_path / "a.hdf5") as one, atomic_path(tmp_path / "a.hdf5") as two:
        assert one != two
        one.write_bytes(b"1")
        two.write_bytes(b"2")
    assert (tmp_path / "a.hdf5").read_bytes() == b"1"  # the last to finish wins, whole


def test_stale_temps_of_dead_processes_are_removed_and_reported(tmp_path, caplog):
    dst = tmp_path / "ds.hdf5"
    stale = tmp_path / f".ds.hdf5.part-{_dead_pid()}-abc123.hdf5"
    live = tmp_path / f".ds.hdf5.part-{os.getppid()}-abc123.hdf5"  # a running process
    other = tmp_path / f".ds.hdf5.bak.part-{_dead_pid()}-abc123.bak"  # another target's
    for path in (stale, live, other):
        path.write_bytes(b"x")
    with caplog.at_level(logging.WARNING, logger="deepscem"):
        assert remove_stale_temps(dst) == [stale]
    assert "interrupted run" in caplog.text and live.exists() and other.exists()


def test_same_file():
    assert same_file("a/../b.txt", "b.txt") and not same_file("a.txt", "b.txt")
    # lists: the same files in the same order (train() and train --auto decide held-back slices so)
    assert same_files(["a/../b.txt", "c.txt"], ["b.txt", "c.txt"])
    assert not same_files(["b.txt", "c.txt"], ["c.txt", "b.txt"])
    assert not same_files(["b.txt"], ["b.txt", "b.txt"])
