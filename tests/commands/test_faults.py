"""Fault injection on the command line, with real processes (issue 12): kills (SIGINT, SIGTERM,
SIGKILL) in the middle of an edit, a full disk, a read-only target, two writers at once.

Each check: the existing dataset keeps its content (or the edit is complete), nothing
half-written is presented as complete, and the next run says what happened.
``DEEPSCEM_TEST_UNIT_DELAY`` makes every safe point sleep, so the signal lands mid-edit.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from mounts import fill, remount_read_only, tmpfs

from deepscem.dataset import Dataset

RUN = str(Path(__file__).resolve().parents[2] / "run.py")
DELAY = "0.4"


def _env(**extra) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}
    env.pop("DEEPSCEM_TEST_UNIT_DELAY", None)
    env.update(extra)
    return env


def cli(folder: Path, *args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, RUN, *args], cwd=folder, env=_env(**env),
                          capture_output=True, text=True, timeout=120)


def signal_midway(folder: Path, args: list[str], sig: int, marker: str) -> tuple[int, str]:
    """Start ``run.py args`` with slow safe points, send ``sig`` once stderr shows ``marker``."""
    proc = subprocess.Popen([sys.executable, RUN, *args], cwd=folder, text=True,
                            env=_env(DEEPSCEM_TEST_UNIT_DELAY=DELAY),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            proc.send_signal(sig)
            break
    rest = proc.communicate(timeout=120)[1]
    return proc.returncode, "".join(seen) + rest


def visible(path: Path) -> str:
    """Hash of what readers see: samples and layers, hidden names (edits in progress) skipped."""
    digest = hashlib.sha256()
    with h5py.File(path, "r") as f:
        for key in sorted(f.attrs):
            digest.update(f"{key}={np.asarray(f.attrs[key]).tolist()}".encode())
        for name in sorted(n for n in f if not n.startswith(".")):
            for layer in sorted(n for n in f[name] if not n.startswith(".")):
                data = f[name][layer]
                digest.update(f"{name}/{layer}{data.shape}{data.dtype}".encode())
                digest.update(np.ascontiguousarray(data[()]).tobytes())
    return digest.hexdigest()


@pytest.fixture
def work(tmp_path):
    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path / "img.tif", rng.integers(0, 255, (12, 64, 64), dtype=np.uint8))
    tifffile.imwrite(tmp_path / "lab.tif", (rng.random((12, 64, 64)) > 0.7).astype(np.uint8))
    with Dataset.create(tmp_path / "d.hdf5", "d", 1) as ds:  # in-process: saves 2 start-ups
        ds.add_sample("s", tmp_path / "img.tif", [tmp_path / "lab.tif"])
    return tmp_path


EDITS = {
    "add-sample": (["dataset", "add-sample", "d.hdf5", "new", "img.tif", "lab.tif"], "writing"),
    "crop": (["dataset", "crop", "d.hdf5", "s", "--z", "2", "10"], "cropping"),
    "crop-new-name": (["dataset", "crop", "d.hdf5", "s", "--z", "2", "10", "--new-name", "c"],
                      "cropping"),
    "distance-transform": (["dataset", "distance-transform", "d.hdf5", "s", "0"], "distance"),
}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("edit", list(EDITS))
def test_interrupted_edit_exits_1_and_leaves_the_dataset_as_it_was(work, edit, sig):
    args, marker = EDITS[edit]
    before = visible(work / "d.hdf5")
    code, err = signal_midway(work, args, sig, marker)
    assert code == 1 and "error: interrupted by" in err and "Traceback" not in err, err
    assert visible(work / "d.hdf5") == before
    assert not (work / ".d.hdf5.lock").exists()
    again = cli(work, *args)  # the edit can simply be run again
    assert again.returncode == 0, again.stderr
    assert "interrupted run" not in again.stderr  # nothing was left behind


@pytest.mark.parametrize("edit", list(EDITS))
def test_killed_edit_leaves_no_partial_result_and_the_next_run_says_so(work, edit):
    args, marker = EDITS[edit]
    before = visible(work / "d.hdf5")
    code, _ = signal_midway(work, args, signal.SIGKILL, marker)
    assert code == -signal.SIGKILL
    assert visible(work / "d.hdf5") == before  # no half sample, crop or _dt layer is visible
    info = cli(work, "dataset", "info", "d.hdf5")
    assert info.returncode == 0 and "_dt" not in info.stdout and "new" not in info.stdout
    again = cli(work, *args)
    assert again.returncode == 0, again.stderr
    assert "left by an interrupted run" in again.stderr or "was interrupted" in again.stderr
    with h5py.File(work / "d.hdf5") as f:
        assert not [n for n in f if n.startswith(".")]  # cleaned up


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_save_as_keeps_the_existing_output(work, sig):
    (work / "out.hdf5").write_bytes(b"previous copy")
    code, err = signal_midway(work, ["dataset", "save-as", "d.hdf5", "out.hdf5", "--overwrite"],
                              sig, "saving")
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 1), err
    assert (work / "out.hdf5").read_bytes() == b"previous copy"
    leftovers = [p.name for p in work.iterdir() if ".part-" in p.name]
    assert leftovers == ([] if sig != signal.SIGKILL else leftovers) and len(leftovers) <= 1
    again = cli(work, "dataset", "save-as", "d.hdf5", "out.hdf5", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert [p.name for p in work.iterdir() if ".part-" in p.name] == []
    if sig == signal.SIGKILL:
        assert "left by an interrupted run" in again.stderr


def test_two_writers_are_exclusive_without_hdf5_locking(work):
    before = visible(work / "d.hdf5")
    first = subprocess.Popen([sys.executable, RUN, "dataset", "add-sample", "d.hdf5", "a",
                              "img.tif", "lab.tif"], cwd=work, text=True, stderr=subprocess.PIPE,
                             env=_env(DEEPSCEM_TEST_UNIT_DELAY="3", HDF5_USE_FILE_LOCKING="FALSE"))
    for line in first.stderr:
        if "checking" in line:
            break
    second = cli(work, "dataset", "distance-transform", "d.hdf5", "s", "0",
                 HDF5_USE_FILE_LOCKING="FALSE")
    assert second.returncode == 1 and "is being changed by process" in second.stderr
    first.communicate(timeout=60)
    assert first.returncode == 0
    with h5py.File(work / "d.hdf5") as f:
        assert sorted(f) == ["a", "s"] and "label_0000_dt" not in f["s"]
    assert visible(work / "d.hdf5") != before


def test_stale_lock_of_a_killed_writer_is_replaced_and_reported(work):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    import socket

    (work / ".d.hdf5.lock").write_text(f"{socket.gethostname()} {dead}\n")
    done = cli(work, "dataset", "rename-sample", "d.hdf5", "s", "t")
    assert done.returncode == 0 and f"removed the lock of process {dead}" in done.stderr
    (work / ".d.hdf5.lock").write_text("another-host 1\n")
    done = cli(work, "dataset", "rename-sample", "d.hdf5", "t", "s")
    assert done.returncode == 1 and "process 1 on another-host" in done.stderr


COMMANDS = [
    ["dataset", "add-sample", "m/d.hdf5", "s2", "img.tif", "lab.tif"],
    ["dataset", "crop", "m/d.hdf5", "s", "--z", "0", "6"],
    ["dataset", "crop", "m/d.hdf5", "s", "--z", "0", "6", "--new-name", "c"],
    ["dataset", "distance-transform", "m/d.hdf5", "s", "0"],
    ["dataset", "aliases", "m/d.hdf5", "mito"],
    ["dataset", "rename-sample", "m/d.hdf5", "s", "t"],
    ["dataset", "remove-sample", "m/d.hdf5", "s"],
    ["dataset", "save-as", "m/d.hdf5", "m/e.hdf5"],
    ["dataset", "create", "m/x.hdf5", "x", "1"],
]


@pytest.fixture
def full_disk(work):
    with tmpfs(work / "m", "3m") as mount:
        (mount / "d.hdf5").write_bytes((work / "d.hdf5").read_bytes())
        yield mount


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: "-".join(a[1:3]))
def test_full_disk_refuses_every_edit_and_keeps_the_file(work, full_disk, args):
    before = (full_disk / "d.hdf5").read_bytes()
    fill(full_disk)
    done = cli(work, *args)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, (args, done.stderr)
    assert "free space" in done.stderr or "no space" in done.stderr, done.stderr
    assert (full_disk / "d.hdf5").read_bytes() == before, args
    assert sorted(p.name for p in full_disk.iterdir()) == ["d.hdf5", "filler"]


PATCHED = ("import sys; sys.path.insert(0, {root!r}); import deepscem.outputs as o, "
           "deepscem.dataset.format as f; f.FREE_MARGIN = 0; "
           "f.check_free_space = lambda *a, **k: None; "
           "import deepscem.dataset.store, deepscem.dataset.add, deepscem.dataset.ops, "
           "deepscem.dataset.copying; from deepscem import cli; sys.exit(cli.main(sys.argv[1:]))")


@pytest.mark.parametrize("args", COMMANDS[:4] + COMMANDS[7:8], ids=lambda a: "-".join(a[1:3]))
def test_disk_filling_up_mid_edit_is_one_line_and_never_a_segfault(work, full_disk, args):
    """The free-space checks are switched off, so HDF5's own writes hit ENOSPC."""
    before = visible(full_disk / "d.hdf5")
    fill(full_disk, leave=8_000)
    code = PATCHED.format(root=str(Path(RUN).parent))
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=work, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # not -11 (segmentation fault)
    assert "no space left" in done.stderr.splitlines()[-1], done.stderr
    (full_disk / "filler").unlink()
    assert visible(full_disk / "d.hdf5") == before
    assert not (full_disk / ".d.hdf5.lock").exists() and not (full_disk / "e.hdf5").exists()
    info = cli(work, "dataset", "rename-sample", "m/d.hdf5", "s", "s")  # any writer: cleans up
    assert "Traceback" not in info.stderr


def test_read_only_target_is_named_and_untouched(work):
    with tmpfs(work / "ro", "3m") as mount:
        (mount / "d.hdf5").write_bytes((work / "d.hdf5").read_bytes())
        before = (mount / "d.hdf5").read_bytes()
        remount_read_only(mount)
        for args in (["dataset", "rename-sample", "ro/d.hdf5", "s", "t"],
                     ["dataset", "add-sample", "ro/d.hdf5", "n", "img.tif", "lab.tif"],
                     ["dataset", "save-as", "d.hdf5", "ro/e.hdf5"],
                     ["dataset", "create", "ro/x.hdf5", "x", "1"]):
            done = cli(work, *args)
            assert done.returncode == 1 and "read-only file system" in done.stderr, done.stderr
        assert (mount / "d.hdf5").read_bytes() == before


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_training_and_prediction(work, sig):
    assert cli(work, "model", "create", "m.keras", "--dim", "2", "--filters", "2", "--depth",
               "1").returncode == 0
    model = (work / "m.keras").read_bytes()
    (work / "out.keras").write_bytes(b"older model")
    code, err = signal_midway(work, ["train", "m.keras", "out.keras", "d.hdf5", "d.hdf5",
                                     "--patch", "1", "32", "32", "--batch-size", "1",
                                     "--steps-per-epoch", "50", "--epochs", "1",
                                     "--validation-steps", "0", "--overwrite"], sig, "train")
    assert (work / "m.keras").read_bytes() == model
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL and (work / "out.keras").read_bytes() == b"older model"
    else:  # stopped after the batch, the best weights saved, exit 1 (docs/cli.md)
        assert code == 1 and "interrupted by" in err and "saved the best weights" in err, err
        assert (work / "out.keras").read_bytes() != b"older model"
    (work / "pred.hdf5").write_bytes(b"older prediction")
    code, err = signal_midway(work, ["predict", "m.keras", "d.hdf5", "pred.hdf5", "--overwrite",
                                     "--patch", "1", "16", "16", "--batch-size", "1"], sig, "tiles")
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 1), err
    assert (work / "pred.hdf5").read_bytes() == b"older prediction"
    time.sleep(0.1)
    again = cli(work, "predict", "m.keras", "d.hdf5", "pred.hdf5", "--overwrite")
    assert again.returncode == 0 and not [p for p in work.iterdir() if ".part-" in p.name]
