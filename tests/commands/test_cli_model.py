"""``run.py model create|info``."""

from __future__ import annotations

import json

import pytest

from deepscem import cli

pytest.importorskip("keras")


def test_create_then_info_json(tmp_path, capsys):
    out = tmp_path / "m.keras"
    argv = ["model", "create", str(out), "--dim", "3", "--block", "vgg", "--kernel-size", "3",
            "--filters", "2", "--blocks-per-level", "1", "--normalization", "none", "--depth", "1",
            "--outputs", "2", "--activation", "softmax", "--name", "tiny3d",
            "--label-names", "mito", "er"]
    assert cli.main(argv) == 0
    assert "created" in capsys.readouterr().out
    assert cli.main(["model", "info", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dimension"] == 3 and data["outputs"] == 2 and data["input_shape"] == [None] * 4 + [1]
    assert data["parameters"] > 0 and data["tile_multiple"] == 2 and data["name"] == "tiny3d"
    assert data["label_names"] == ["mito", "er"] and data["unet"]["block"] == "vgg"
    assert cli.main(["model", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3D" in text and "mito, er" in text


def test_create_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "m.h5"
    small = ["--filters", "2", "--depth", "1"]
    assert cli.main(["model", "create", str(out), *small]) == 0
    before = out.read_bytes()
    assert cli.main(["model", "create", str(out), *small]) == 1
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert cli.main(["model", "create", str(out), *small, "--overwrite", "--outputs", "3"]) == 0


@pytest.mark.parametrize("argv,message", [
    (["--activation", "softmax"], "softmax"),
    (["--filters", "0"], "filters"),
    (["--outputs", "2", "--label-names", "a"], "one name per output"),
])
def test_create_user_errors_are_one_line(tmp_path, capsys, argv, message):
    assert cli.main(["model", "create", str(tmp_path / "m.keras"), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.keras").exists()


def test_info_on_a_non_model_file(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    assert cli.main(["model", "info", str(bad)]) == 1
    assert "not a model file" in capsys.readouterr().err


def test_info_on_an_original_model(shared_data, capsys):
    path = shared_data / "original-format" / "orig_unet2d_res_f8_d3_o2.h5"
    assert cli.main(["model", "info", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["legacy"] and data["dimension"] == 2 and data["outputs"] == 2
    assert data["input_shape"] == [None, None, None, 1]
    assert any("original" in note for note in data["notes"])
    assert cli.main(["model", "info", str(path.with_name("orig_unet3d_vgg_f4_d2_o1.h5"))]) == 0
    assert "cannot segment" in capsys.readouterr().out


def test_cli_defaults_match_the_config_defaults():
    import dataclasses

    from deepscem.commands.model import DEFAULTS
    from deepscem.config import UNetConfig

    assert DEFAULTS == {f.name: f.default for f in dataclasses.fields(UNetConfig)}


def test_info_says_which_thresholds_were_folded_into_the_model(tmp_path, capsys):
    import dataclasses

    from deepscem.models.storage import load_model, save_model
    from deepscem.training.calibration import LabelCalibration

    out = tmp_path / "m.keras"
    argv = ["model", "create", str(out), "--filters", "2", "--depth", "1", "--outputs", "2",
            "--label-names", "mito", "er"]
    assert cli.main(argv) == 0
    model, info = load_model(out)
    rows = [LabelCalibration("mito", 0.7, 0.8, 0.85, 9000, True).as_dict(),
            LabelCalibration("er", 0.5, 0.6, 0.6, 9000, False).as_dict()]
    save_model(model, out, dataclasses.replace(info, history={"steps": 3, "calibration": rows}),
               overwrite=True)
    capsys.readouterr()
    assert cli.main(["model", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "thresholds:   mito 0.70 (validation IoU 0.800 at 0.5 -> 0.850)" in text
    assert "er 0.50" not in text
