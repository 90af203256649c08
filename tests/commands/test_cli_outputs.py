"""A mistyped output path never destroys an input, and every output is checked before work starts
(issue 12: files destroyed by a mistyped path; train checks its outputs before training)."""

from __future__ import annotations

import shlex

import pytest
from mounts import tmpfs

from deepscem import cli


def run(argv, capsys):
    code = cli.main(shlex.split(argv) if isinstance(argv, str) else argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def files(tmp_path, monkeypatch):
    """Placeholder inputs: the checks run before any of them is opened, so bytes suffice and a
    test fails (not hangs) if a command starts working before checking."""
    monkeypatch.chdir(tmp_path)
    for name in ("in.keras", "ds.hdf5", "ref.hdf5", "seg.hdf5"):
        (tmp_path / name).write_bytes(name.encode())
    return tmp_path


def _unchanged(files):
    return all((files / n).read_bytes() == n.encode() for n in ("in.keras", "ds.hdf5", "ref.hdf5",
                                                                "seg.hdf5"))


@pytest.mark.parametrize("argv, says", [
    ("train in.keras ds.hdf5 ds.hdf5 ds.hdf5 --overwrite", "MODEL_OUT ds.hdf5 is also a training"),
    ("train in.keras in.keras ds.hdf5 ds.hdf5 --overwrite", "MODEL_OUT in.keras is also MODEL_IN"),
    ("train in.keras out.keras ds.hdf5 ds.hdf5 --log ds.hdf5 --overwrite", "log ds.hdf5 is also a"),
    ("train in.keras out.keras ds.hdf5 ds.hdf5 --log ./in.keras", "is also MODEL_IN"),
    ("train in.keras out.keras ds.hdf5 ds.hdf5 --log out.keras", "is also MODEL_OUT"),
    ("--train-model in.keras ds.hdf5 ds.hdf5 ds.hdf5 Dice 1 1 16 16 1 1 1", "is also a training"),
    ("evaluate ref.hdf5 seg.hdf5 --csv ref.hdf5 --overwrite", "is also REFERENCE_DS"),
    ("evaluate ref.hdf5 seg.hdf5 --json seg.hdf5 --overwrite", "is also SEGMENTATION_DS"),
    ("predict in.keras ds.hdf5 in.keras --overwrite", "is also MODEL"),
    ("predict in.keras ds.hdf5 ./ds.hdf5 --overwrite", "is also INPUT"),
    ("dataset save-as ds.hdf5 ./ds.hdf5 --overwrite", "is also the dataset being saved"),
])
def test_an_input_given_as_output_is_refused_untouched(files, capsys, argv, says):
    code, _, err = run(argv, capsys)
    assert code == 1 and says in err and err.count("\n") == 1, err
    assert _unchanged(files)


@pytest.mark.parametrize("argv, existing", [
    ("train in.keras out.keras ds.hdf5 ds.hdf5", "out.csv"),          # a previous run's log
    ("train in.keras out.keras ds.hdf5 ds.hdf5 --log run.csv", "run.csv"),
    ("evaluate ref.hdf5 seg.hdf5 --csv scores.csv", "scores.csv"),
    ("evaluate ref.hdf5 seg.hdf5 --json scores.json", "scores.json"),
    ("model create old.keras --dim 2", "old.keras"),
])
def test_existing_outputs_need_overwrite(files, capsys, argv, existing):
    (files / existing).write_text("keep")
    code, _, err = run(argv, capsys)
    assert code == 1 and "already exists" in err and "--overwrite" in err, err
    assert (files / existing).read_text() == "keep"


def test_evaluate_csv_to_a_folder_is_a_one_line_error(files, capsys):
    (files / "out").mkdir()
    code, _, err = run("evaluate ref.hdf5 seg.hdf5 --csv out", capsys)
    assert code == 1 and "is a folder" in err and err.count("\n") == 1


def test_train_refuses_unwritable_outputs_before_training(files, capsys):
    code, _, err = run(f"train in.keras {'m' * 250}.keras ds.hdf5 ds.hdf5", capsys)
    assert code == 1 and "bytes long" in err, err
    code, _, err = run("train in.keras out.keras ds.hdf5 ds.hdf5 --log nowhere/run.csv", capsys)
    assert code == 1 and "nowhere does not exist" in err
    with tmpfs(files / "ro", "1m", read_only=True):
        code, _, err = run("train in.keras ro/out.keras ds.hdf5 ds.hdf5", capsys)
        assert code == 1 and "read-only file system" in err, err
        code, _, err = run("train in.keras out.keras ds.hdf5 ds.hdf5 --log ro/run.csv", capsys)
        assert code == 1 and "read-only file system" in err, err
