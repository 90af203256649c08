"""Voxel size: TIFF metadata (ImageJ, OME), --voxel-size, 'dataset voxel-size', info, carry-over."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from deepscem.cli import main
from deepscem.dataset import Dataset
from deepscem.dataset.voxel_size import from_tiff
from deepscem.errors import DatasetError


@pytest.fixture
def stacks(tmp_path):
    img = np.arange(4 * 16 * 16, dtype=np.uint16).reshape(4, 16, 16)
    tifffile.imwrite(tmp_path / "ij.tif", img, imagej=True, resolution=(200, 200),
                     metadata={"spacing": 0.05, "unit": "micron"})
    tifffile.imwrite(tmp_path / "ome.tif", img, ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.004, "PhysicalSizeY": 0.004,
                               "PhysicalSizeZ": 0.03})
    tifffile.imwrite(tmp_path / "plain.tif", img)
    return tmp_path


def test_tiff_metadata(stacks):
    assert from_tiff(stacks / "ij.tif") == pytest.approx((50, 5, 5))
    assert from_tiff(stacks / "ome.tif") == pytest.approx((30, 4, 4))
    assert from_tiff(stacks / "plain.tif") is None


def test_cli_add_set_show_and_carry(stacks, capsys):
    d = str(stacks / "d.hdf5")
    assert main(["dataset", "create", d, "d", "1"]) == 0
    assert main(["dataset", "add-sample", d, "ij", str(stacks / "ij.tif"), "-"]) == 0
    assert main(["dataset", "add-sample", d, "given", str(stacks / "plain.tif"), "-",
                 "--voxel-size", "40", "8", "8"]) == 0
    assert main(["dataset", "add-sample", d, "none", str(stacks / "plain.tif"), "-"]) == 0
    capsys.readouterr()
    assert main(["dataset", "info", d, "--json"]) == 0
    info = {s["name"]: s["voxel_size"] for s in json.loads(capsys.readouterr().out)["samples"]}
    assert info == {"ij": [50, 5, 5], "given": [40, 8, 8], "none": None}
    assert main(["dataset", "voxel-size", d, "none", "10", "2", "2"]) == 0
    assert "none: 10 x 2 x 2 nm" in capsys.readouterr().out
    assert main(["dataset", "voxel-size", d, "none", "0", "2", "2"]) == 1
    assert "positive" in capsys.readouterr().err
    assert main(["dataset", "voxel-size", d, "none", "--clear"]) == 0
    with Dataset.open(d, "r+") as ds:
        assert ds.sample("none").voxel_size is None
        ds.crop_sample("ij", (0, 2), (0, 8), (0, 8), new_name="crop")
        assert ds.sample("crop").voxel_size == (50, 5, 5)
        out = ds.add_empty_sample("copy", ds.sample("ij").shape, image_from=ds.sample("ij"))
        assert out.voxel_size == (50, 5, 5)  # what prediction files get
        with pytest.raises(DatasetError, match="three positive"):
            ds.sample("ij").set_voxel_size((1, 2))


def test_instance_tiff_import(stacks):
    ids = np.zeros((4, 16, 16), np.uint16)
    ids[1:3, 2:6, 2:6] = 3
    ids[0, 10:12, 10:12] = 700
    tifffile.imwrite(stacks / "ids.tif", ids)
    tifffile.imwrite(stacks / "neg.tif", -ids.astype(np.int16))
    with Dataset.create(stacks / "d.hdf5", "d", 1) as ds:
        sample = ds.add_sample("s", stacks / "plain.tif", [None], instances=[stacks / "ids.tif"])
        stored = sample.read_layer("instance_0000")
        assert stored.dtype == np.uint32 and np.array_equal(stored, ids)
        with pytest.raises(Exception, match="object ids"):
            ds.add_sample("t", stacks / "plain.tif", [None], instances=[stacks / "neg.tif"])
        assert "t" not in ds
