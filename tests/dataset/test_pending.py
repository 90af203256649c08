"""Hidden edits in progress and the writer's lock (deepscem.dataset.pending / locking)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys

import h5py
import numpy as np
import pytest

from deepscem import cli
from deepscem.dataset import Dataset
from deepscem.dataset.locking import WriterLock, lock_path
from deepscem.errors import DatasetError


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)


@pytest.fixture
def ds_path(tmp_path):
    path = tmp_path / "d.hdf5"
    with Dataset.create(path, "d", 1) as ds:
        ds.add_sample("s", np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4), ["-"])
    return path


def test_hidden_edits_are_invisible_and_recovered_by_the_next_writer(ds_path, caplog):
    dead = _dead_pid()
    with h5py.File(ds_path, "r+") as f:
        f.move("s", f".old-{dead}-s")                      # a swap killed half-way
        f.create_group(f".crop-{dead}-s")                  # ... with its unfinished crop
        f.create_group(f".add-{dead}-new")                 # an unfinished add-sample
        f[f".old-{dead}-s"].create_dataset(f".dt-{dead}-label_0000_dt", data=np.zeros((2, 4, 4)))
    with Dataset.open(ds_path) as ds:  # readers skip hidden names
        assert ds.sample_names() == [] and len(ds) == 0 and ".add-1-new" not in ds
    with caplog.at_level(logging.WARNING, logger="deepscem"), Dataset.open(ds_path, "r+") as ds:
        assert ds.sample_names() == ["s"]
        assert ds.sample("s").layer_names() == ["image", "label_0000"]
    assert "restored the original" in caplog.text and "unfinished new sample 'new'" in caplog.text
    with h5py.File(ds_path) as f:
        assert sorted(f) == ["s"] and sorted(f["s"]) == ["image", "label_0000"]


def test_the_writer_lock_is_exclusive_reentrant_and_released(ds_path):
    with Dataset.open(ds_path, "r+"), Dataset.open(ds_path, "r+"):  # one process: re-entrant
        assert lock_path(ds_path).read_text().split() == [socket.gethostname(), str(os.getpid())]
    assert not lock_path(ds_path).exists()
    lock_path(ds_path).write_text(f"{socket.gethostname()} 1\n")  # pid 1 is alive
    with pytest.raises(DatasetError, match="being changed by process 1"):
        Dataset.open(ds_path, "r+")
    with Dataset.open(ds_path) as ds:  # readers do not need it
        assert ds.sample_names() == ["s"]
    lock_path(ds_path).unlink()
    with WriterLock(ds_path):
        assert lock_path(ds_path).exists()


def test_os_errors_the_user_can_fix_are_one_line(tmp_path, capsys):
    assert cli.main(["dataset", "info", str(tmp_path / ("a" * 300 + ".hdf5"))]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "file name too long" in err and err.count("\n") == 1


def test_an_empty_lock_is_fresh_for_a_moment_then_stale(ds_path, caplog):
    """A writer killed between creating its lock and writing its pid leaves an empty file:
    young, it may be a writer mid-creation (refused); old, it is removed and reported."""
    lock = lock_path(ds_path)
    lock.write_text("")
    with pytest.raises(DatasetError, match="being changed by another program"):
        Dataset.open(ds_path, "r+")
    old = lock.stat().st_mtime - 60
    os.utime(lock, (old, old))
    with caplog.at_level(logging.WARNING, logger="deepscem"), Dataset.open(ds_path, "r+"):
        pass
    assert "empty lock" in caplog.text and not lock.exists()
