"""Silent wrong input becomes a one-line error (issue 12): odd numbers, RGB / truncated / mixed-size
inputs, evaluations that compare nothing, duplicate names, comma file names, missing labels."""

from __future__ import annotations

import shlex

import numpy as np
import pytest
import tifffile

from deepscem import cli
from deepscem.commands.train import _split
from deepscem.dataset import Dataset


def run(argv, capsys):
    code = cli.main(shlex.split(argv) if isinstance(argv, str) else argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("in.keras", "ds.hdf5"):
        (tmp_path / name).write_bytes(b"x")
    with Dataset.create(tmp_path / "a.hdf5", "a", 1) as ds:
        ds.add_sample("s1", np.arange(4 * 8 * 8, dtype=np.uint8).reshape(4, 8, 8), ["-"])
        ds.add_sample("s2", np.ones((4, 8, 8), np.uint8), ["-"])
    with Dataset.create(tmp_path / "b.hdf5", "b", 1) as ds:
        ds.add_sample("other", np.ones((4, 8, 8), np.uint8), ["-"])
        ds.add_sample("s1", np.ones((4, 8, 9), np.uint8), ["-"])
    Dataset.create(tmp_path / "empty.hdf5", "e", 1).close()
    return tmp_path


@pytest.mark.parametrize("argv, says", [
    ("train in.keras o.keras ds.hdf5 ds.hdf5 --lr -1", "learning rate must be a number > 0"),
    ("train in.keras o.keras ds.hdf5 ds.hdf5 --lr 0", "learning rate must be a number > 0"),
    ("train in.keras o.keras ds.hdf5 ds.hdf5 --lr nan", "learning rate must be a number > 0"),
    ("train in.keras o.keras ds.hdf5 ds.hdf5 --weight-decay -1", "weight_decay must be >= 0"),
    ("train in.keras o.keras ds.hdf5 ds.hdf5 --seed -1", "seed must be a whole number between 0"),
    ("train in.keras o.keras ds.hdf5 ds.hdf5 --batch-size 100000000000000000000", "batch_size must be"),
    ("model create m.keras --dim 2 --filters 100000", "filters must be between 1 and 2048"),
    ("model create m.keras --dim 2 --kernel-size 100000", "kernel_size must be between 1 and 15"),
    ("model create m.keras --dim 2 --blocks-per-level 300", "blocks_per_level must be between 1 and 16"),
    ("dataset create n.hdf5 n 99999999999999999999", "number of labels must be at most 1000"),
    ("--create-dataset n.hdf5 n 99999999999999999999", "number of labels must be at most 1000"),
    ("dataset distance-transform a.hdf5 s1 0 --scale inf", "scale must be a finite number > 0"),
    ("dataset distance-transform a.hdf5 s1 0 --sampling inf 1 1", "three numbers > 0"),
    ("evaluate a.hdf5 empty.hdf5", "nothing could be compared"),
    ("evaluate empty.hdf5 empty.hdf5", "the datasets hold no samples"),
])
def test_impossible_values_are_one_line_errors(folder, capsys, argv, says):
    code, _, err = run(argv, capsys)
    assert code == 1 and says in err and err.count("\n") == 1, err
    assert not (folder / "n.hdf5").exists() and not (folder / "m.keras").exists()


def test_evaluate_with_no_sample_in_common_or_other_shapes_exits_1(folder, capsys):
    code, _, err = run("evaluate a.hdf5 b.hdf5", capsys)
    assert code == 1 and "nothing could be compared" in err and "s1" in err


@pytest.mark.parametrize("make, says", [
    (lambda p: np.save(p.with_suffix(".npy"), np.zeros((64, 64, 3), np.uint8)), "colour (RGB)"),
    (lambda p: np.save(p.with_suffix(".npy"), np.zeros((64, 64, 2), np.uint8)), "colour (RGB)"),
    ("truncated", "truncated .npy file"),
    ("sizes", "pages have different sizes"),
])
def test_bad_images_are_refused_and_the_dataset_unchanged(folder, capsys, make, says):
    path = folder / "img.npy"
    if make == "truncated":
        np.save(path, np.zeros((10, 64, 64), np.uint8))
        path.write_bytes(path.read_bytes()[:5000])
    elif make == "sizes":
        path = folder / "img.tif"
        with tifffile.TiffWriter(path) as tif:
            tif.write(np.zeros((2, 64, 64), np.uint8), photometric="minisblack")
            tif.write(np.zeros((2, 32, 32), np.uint8), photometric="minisblack")
    else:
        make(path)
    before = (folder / "a.hdf5").read_bytes()
    code, _, err = run(f"dataset add-sample a.hdf5 new {path.name} -", capsys)
    assert code == 1 and says in err and err.count("\n") == 1, err
    assert (folder / "a.hdf5").read_bytes() == before


def test_a_3_slice_stack_is_still_a_stack(folder, capsys):
    np.save(folder / "stack.npy", np.zeros((3, 64, 64), np.uint8))
    assert run("dataset add-sample a.hdf5 new stack.npy -", capsys)[0] == 0


def test_remove_sample_named_twice_removes_it_once(folder, capsys):
    code, _, err = run("dataset remove-sample a.hdf5 s1 s1", capsys)
    assert code == 0, err
    with Dataset.open(folder / "a.hdf5") as ds:
        assert ds.sample_names() == ["s2"]


def test_a_dataset_file_name_with_a_comma_is_one_file(folder):
    (folder / "a,b.hdf5").write_bytes(b"x")
    assert _split("a,b.hdf5") == ["a,b.hdf5"]
    assert _split("a.hdf5, b.hdf5") == ["a.hdf5", "b.hdf5"]


def test_info_says_which_label_a_sample_lacks(folder, capsys):
    import h5py

    with h5py.File(folder / "a.hdf5", "r+") as f:
        del f["s2/label_0000"]
    code, out, _ = run("dataset info a.hdf5", capsys)
    assert code == 0 and "warning: sample 's2' has no label_0000" in out
    assert "'s1' has no" not in out
