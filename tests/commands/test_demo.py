"""The demo end to end on a tiny generated volume (the README's first command, scaled down)."""

import os

import pytest

from deepscem import cli
from deepscem.demo import prepare_inputs, run_demo
from deepscem.errors import InputFileError

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "2")


def test_demo_runs_every_step_and_writes_its_files(tmp_path):
    result = run_demo(tmp_path / "out", minutes=0.02, shape=(2, 64, 64), patch=32)
    for key in ("train_dataset", "test_dataset", "model", "prediction", "evaluation", "overlay"):
        assert result.files[key].is_file(), key
    assert result.files["overlay"].stat().st_size > 10_000
    assert 0.0 <= result.scores["iou"] <= 1.0 and 0.0 <= result.scores["f1"] <= 1.0
    assert "time limit" in result.train_message


def test_demo_data_folder_must_hold_the_four_files(tmp_path, capsys):
    (tmp_path / "train_image.tif").write_bytes(b"")
    with pytest.raises(InputFileError, match="test_label.tif"):
        prepare_inputs(tmp_path, tmp_path, (2, 32, 32))
    assert cli.main(["demo", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "error:" in capsys.readouterr().err
