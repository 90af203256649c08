"""``run.py model export`` and ``predict --engine``/bioimage.io packages on the command line."""

from __future__ import annotations

import zipfile

import h5py
import numpy as np
import pytest

from deepscem import cli

pytest.importorskip("keras")
pytest.importorskip("onnxruntime")
pytest.importorskip("bioimageio.spec")


@pytest.mark.parametrize("out, fmt, message", [
    ("m.txt", "onnx", "a onnx export is a .onnx file"),
    ("m.onnx", "bioimageio", "a bioimageio export is a .zip file"),
])
def test_export_names_are_checked_before_anything_loads(tmp_path, capsys, out, fmt, message):
    assert cli.main(["model", "export", str(tmp_path / "missing.keras"), str(tmp_path / out),
                     "--format", fmt]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("create", [[], ["--context", "1"]], ids=["2d", "2.5d"])
def test_export_package_then_predict_with_it_and_with_onnxruntime(tmp_path, capsys, create):
    from deepscem.dataset import Dataset

    model = tmp_path / "m.keras"
    assert cli.main(["model", "create", str(model), "--filters", "2", "--depth", "2",
                     "--blocks-per-level", "1", *create]) == 0
    data = tmp_path / "d.hdf5"
    image = np.random.default_rng(0).integers(0, 255, (3, 48, 40), dtype=np.uint8)
    with Dataset.create(data, "d", 1) as ds:
        ds.add_sample("s", image, [None])
    package = tmp_path / "m.zip"
    assert cli.main(["model", "export", str(model), str(package), "--format", "bioimageio",
                     "--sample", str(data), "s", "--author", "A. Author",
                     "--score", "test IoU=0.5"]) == 0
    assert "model.onnx" in zipfile.ZipFile(package).namelist()
    assert cli.main(["predict", str(model), str(data), str(tmp_path / "k.hdf5"),
                     "--engine", "keras"]) == 0
    assert "engine: keras float32" in capsys.readouterr().out
    assert cli.main(["predict", str(model), str(data), str(tmp_path / "o.hdf5"),
                     "--engine", "onnxruntime"]) == 0
    assert cli.main(["predict", str(package), str(data), str(tmp_path / "p.hdf5")]) == 0
    assert "engine: onnxruntime float32" in capsys.readouterr().out
    with h5py.File(tmp_path / "k.hdf5") as k, h5py.File(tmp_path / "o.hdf5") as o, \
            h5py.File(tmp_path / "p.hdf5") as p:
        reference = k["s/prediction_0000"][:]
        assert np.abs(o["s/prediction_0000"][:] - reference).max() <= 1e-4
        assert np.abs(p["s/prediction_0000"][:] - reference).max() <= 1e-4
    # any volume, block by block (the volume path): the package's statistics of the whole
    # volume, measured once, give the same values as the dataset path
    import tifffile

    tifffile.imwrite(tmp_path / "v.tif", image)
    assert cli.main(["predict", str(package), str(tmp_path / "v.tif"), str(tmp_path / "v.hdf5"),
                     "--block", "2", "32", "32"]) == 0
    with h5py.File(tmp_path / "v.hdf5") as v:
        (volume,) = [v[f"{s}/prediction_0000"][:] for s in v if "prediction_0000" in v[s]]
        assert np.abs(volume - reference).max() <= 1e-4
    assert cli.main(["model", "export", str(model), str(package), "--format", "onnx"]) == 1
    assert "a onnx export is a .onnx file" in capsys.readouterr().err
