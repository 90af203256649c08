"""dataset export --format ome-zarr: ome-zarr-py (another library) finds the image and its
masks as NGFF labels; float maps sit under predictions/; our reader reads it back."""

import numpy as np
import pytest

from deepscem import cli
from deepscem.dataset import Dataset
from deepscem.dataset.volumes import open_volume

pytest.importorskip("ome_zarr")


def test_export_sample_as_ome_zarr(tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader
    from synthetic_data import synthetic_volume

    image, mask = synthetic_volume((6, 300, 280), seed=1)  # > 256: a 2-level pyramid
    path = tmp_path / "d.hdf5"
    with Dataset.create(path, "d", 1) as ds:
        sample = ds.add_sample("cell", image, [mask])
        sample.group.attrs["voxel_size"] = [20.0, 5.0, 5.0]
        sample.create_layer("prediction_0000", np.float32)[...] = mask * 0.75
        sample.create_layer("instance_0000", np.uint32)[...] = mask * 7
    assert cli.main(["dataset", "export", str(path), "cell", str(tmp_path / "out"),
                     "--format", "ome-zarr"]) == 0
    out = tmp_path / "out" / "cell.ome.zarr"
    nodes = list(Reader(parse_url(str(out)))())
    np.testing.assert_array_equal(np.asarray(nodes[0].data[0]), image)
    assert len(nodes[0].data) == 2 and nodes[0].data[1].shape == (6, 150, 140)
    labels = {n.zarr.basename(): n for n in nodes if n.load(Label)}
    assert sorted(labels) == ["instance_0000", "label_0000"]
    np.testing.assert_array_equal(np.asarray(labels["label_0000"].data[0]), mask)
    np.testing.assert_array_equal(np.asarray(labels["instance_0000"].data[0]), mask * 7)
    with open_volume(out) as src:
        assert src.voxel_size == pytest.approx((20.0, 5.0, 5.0))
        np.testing.assert_array_equal(src.read(0, 6), image)
    with open_volume(out / "predictions" / "prediction_0000") as src:
        np.testing.assert_array_equal(src.read(0, 6), mask * np.float32(0.75))
    assert cli.main(["dataset", "export", str(path), "cell", str(tmp_path / "out"),
                     "--format", "ome-zarr"]) == 1  # exists: refused without --overwrite


def test_export_file_folder_form_writes_every_sample(tmp_path):
    """The design's form `dataset export FILE OUT --format ome-zarr` (no SAMPLE): every sample."""
    path = tmp_path / "d.hdf5"
    with Dataset.create(path, "d", 1) as ds:
        for name in ("a", "b"):
            ds.add_sample(name, np.full((2, 16, 16), 9, np.uint8), [np.zeros((2, 16, 16), np.uint8)])
    assert cli.main(["dataset", "export", str(path), str(tmp_path / "out"), "--format", "ome-zarr"]) == 0
    for name in ("a", "b"):
        with open_volume(tmp_path / "out" / f"{name}.ome.zarr") as src:
            assert src.shape == (2, 16, 16)
    assert cli.main(["dataset", "export", str(path), "a", str(tmp_path / "tif")]) == 0
    assert sorted(p.name for p in (tmp_path / "tif").iterdir()) == ["a_image.tif", "a_label_0000.tif"]
