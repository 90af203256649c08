"""Partial labels and images-only datasets on the command line: add-sample --labelled-slices /
--annotated, ``dataset annotated``, info, save-as --original, and a kill during a change."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from synthetic_data import synthetic_volume

from deepscem import cli
from deepscem.dataset import Dataset
from deepscem.dataset.annotation import PART
from deepscem.dataset.layers import ANNOTATED

ROOT = Path(__file__).resolve().parents[2]


def run(argv: str, capsys):
    code = cli.main(shlex.split(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image, mask = synthetic_volume((12, 32, 40), np.uint8, seed=3)
    tifffile.imwrite("img.tif", image)
    tifffile.imwrite("lbl.tif", mask * 255)
    annotated = np.zeros_like(mask)
    annotated[2:4] = 1
    tifffile.imwrite("mask.tif", annotated)
    return tmp_path


def test_add_sample_with_labelled_slices_or_mask(files, capsys):
    assert run("dataset create D.hdf5 D 1", capsys)[0] == 0
    assert run("dataset add-sample D.hdf5 a img.tif lbl.tif --labelled-slices 0-2,7", capsys)[0] == 0
    assert run("dataset add-sample D.hdf5 b img.tif lbl.tif --annotated mask.tif", capsys)[0] == 0
    code, _, err = run("dataset add-sample D.hdf5 c img.tif lbl.tif --labelled-slices 50", capsys)
    assert code == 1 and "outside the sample's Z range 0..11" in err
    with pytest.raises(SystemExit) as usage:  # one or the other
        run("dataset add-sample D.hdf5 c img.tif lbl.tif --labelled-slices 1 --annotated mask.tif", capsys)
    assert usage.value.code == 2
    with Dataset.open("D.hdf5") as ds:
        assert ds.sample_names() == ["a", "b"]  # the refused sample was not left behind
        assert ds.sample("a").annotated_per_slice().nonzero()[0].tolist() == [0, 1, 2, 7]
        assert ds.sample("b").annotated_per_slice().nonzero()[0].tolist() == [2, 3]
    code, out, _ = run("dataset info D.hdf5", capsys)
    assert "33.3 % annotated, slices 0, 1, 2, 7 (4 of 12)" in out and "slices 2, 3 (2 of 12)" in out
    info = json.loads(run("dataset info D.hdf5 --json", capsys)[1])
    assert [s["annotated_fraction"] for s in info["samples"]] == pytest.approx([4 / 12, 2 / 12])


def test_annotated_command_changes_and_prints(files, capsys):
    run("dataset create D.hdf5 D 1", capsys)
    run("dataset add-sample D.hdf5 a img.tif lbl.tif", capsys)
    assert run("dataset annotated D.hdf5 a", capsys)[1] == "a: all annotated\n"
    assert "slices 2, 6, 10 (3 of 12)" in run("dataset annotated D.hdf5 a --evenly 3", capsys)[1]
    assert "slices 4, 5, 6 (3 of 12)" in run("dataset annotated D.hdf5 a --slices 4-6", capsys)[1]
    assert "slices 2, 3" in run("dataset annotated D.hdf5 a --mask mask.tif", capsys)[1]
    assert "nothing annotated" in run("dataset annotated D.hdf5 a --none", capsys)[1]
    assert run("dataset annotated D.hdf5 a --all", capsys)[1] == "a: all annotated\n"
    code, _, err = run("dataset annotated D.hdf5 nope --all", capsys)
    assert code == 1 and "no sample 'nope'" in err


def test_images_only_dataset_and_sample_without_labels(files, capsys):
    """Issue 12: `--create-dataset U.hdf5 U 0` and add-sample without labels are accepted."""
    assert run("--create-dataset U.hdf5 U 0 --add-sample U.hdf5 a img.tif", capsys)[0] == 0
    assert run("dataset create L.hdf5 L 2", capsys)[0] == 0
    assert run("dataset add-sample L.hdf5 a img.tif", capsys)[0] == 0
    with Dataset.open("U.hdf5") as ds:
        assert ds.n_labels == 0 and ds.sample("a").layer_names() == ["image"]
    with Dataset.open("L.hdf5") as ds:
        assert ds.sample("a").layer_names() == ["image", "label_0000", "label_0001", ANNOTATED]
        assert ds.sample("a").annotated_fraction() == 0.0
    out = run("dataset info U.hdf5", capsys)[1]
    assert "0 label(s) (images only" in out
    assert "nothing annotated" in run("dataset info L.hdf5", capsys)[1]


def test_save_as_original_leaves_the_layer_out(files, capsys):
    run("dataset create D.hdf5 D 1", capsys)
    run("dataset add-sample D.hdf5 a img.tif lbl.tif --labelled-slices 3", capsys)
    assert run("dataset save-as D.hdf5 O.hdf5 --original", capsys)[0] == 0
    assert run("dataset save-as D.hdf5 C.hdf5", capsys)[0] == 0
    with Dataset.open("O.hdf5") as ds:
        assert ds.sample("a").layer_names() == ["image", "label_0000"]
    with Dataset.open("C.hdf5") as ds:
        assert ds.sample("a").annotated_per_slice().nonzero()[0].tolist() == [3]


KILLED = """
import os, signal, sys
sys.path.insert(0, {root!r})
from deepscem.dataset import Dataset
with Dataset.open("D.hdf5", "r+") as ds:
    def die(p):
        if p.done == {at}:
            os.kill(os.getpid(), signal.SIGKILL)
    ds.sample("a").set_annotated_slices(range(12), progress=die)
"""


@pytest.mark.parametrize("at", [1, 6, 12])
def test_kill_during_a_change_keeps_the_old_mask(files, capsys, at):
    run("dataset create D.hdf5 D 1", capsys)
    run("dataset add-sample D.hdf5 a img.tif lbl.tif --labelled-slices 3,7", capsys)
    proc = subprocess.run([sys.executable, "-c", KILLED.format(root=str(ROOT), at=at)],
                          cwd=files, capture_output=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == -signal.SIGKILL
    with Dataset.open("D.hdf5") as ds:  # a valid dataset, the old mask, the stray part hidden
        sample = ds.sample("a")
        assert sample.annotated_per_slice().nonzero()[0].tolist() == [3, 7]
        assert PART not in sample.layer_names()
    assert run("dataset annotated D.hdf5 a --slices 5", capsys)[0] == 0  # the next change works
    with Dataset.open("D.hdf5") as ds:
        assert ds.sample("a").annotated_per_slice().nonzero()[0].tolist() == [5]
        assert PART not in ds.sample("a").group
