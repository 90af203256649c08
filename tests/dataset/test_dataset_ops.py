import h5py
import numpy as np
import pytest
from h5_content import file_hash, logical_hash
from scipy.ndimage import distance_transform_edt
from synthetic_data import synthetic_volume

from deepscem.dataset import Dataset, imageio, save_as
from deepscem.errors import Cancelled, DatasetError
from deepscem.progress import CancelToken


@pytest.fixture
def ds_path(tmp_path):
    path = tmp_path / "ds.hdf5"
    image, mask = synthetic_volume((6, 40, 50), np.uint16)
    with Dataset.create(path, "T", 2) as ds:
        ds.add_sample("a", image, [mask, None])
        ds.add_sample("b", image[2], [mask[2], mask[2]])
    return path


@pytest.mark.parametrize("new_name", ["a_crop", None])
def test_crop_new_sample_or_in_place(ds_path, new_name):
    with Dataset.open(ds_path, "r+") as ds:
        before = ds.sample("a")
        image, mask, lo_hi = before.read_layer("image"), before.read_layer("label_0000"), before.image_range
        s = ds.crop_sample("a", (1, 5), (3, 30), (10, 50), new_name=new_name)
        assert s.shape == (4, 27, 40) and tuple(s.group.attrs["shape"]) == (4, 27, 40)
        np.testing.assert_array_equal(s.read_layer("image"), image[1:5, 3:30, 10:50])
        np.testing.assert_array_equal(s.read_layer("label_0000"), mask[1:5, 3:30, 10:50])
        assert s.image_range == lo_hi  # the crop keeps the volume-wide contrast
        assert ds.sample_names() == (["a", "a_crop", "b"] if new_name else ["a", "b"])
    Dataset.open(ds_path).close()  # still valid


@pytest.mark.parametrize("z,y,x,match", [
    ((0, 7), (0, 40), (0, 50), r"z range 0..7 is not inside the sample \(0..6\)"),
    ((3, 3), (0, 40), (0, 50), "z range 3..3"),
    ((0, 6), (-1, 40), (0, 50), "y range"),
    ((0, 6), (0, 40), ("a", 5), "two whole numbers"),
])
def test_bad_crop_ranges_leave_file_unchanged(ds_path, z, y, x, match):
    before = file_hash(ds_path)
    with Dataset.open(ds_path, "r+") as ds, pytest.raises(DatasetError, match=match):
        ds.crop_sample("a", z, y, x)
    assert file_hash(ds_path) == before


def test_cancelled_in_place_crop_leaves_content_unchanged(ds_path, monkeypatch):
    monkeypatch.setattr("deepscem.dataset.format.SLAB_BYTES", 1)
    before = logical_hash(ds_path)
    token = CancelToken()

    def cancel_after_two(p):
        if p.done >= 2:
            token.cancel()

    with Dataset.open(ds_path, "r+") as ds, pytest.raises(Cancelled):
        ds.crop_sample("a", (0, 4), (0, 20), (0, 20), progress=cancel_after_two, cancel=token)
    assert logical_hash(ds_path) == before


def test_export_round_trips_through_imageio(ds_path, tmp_path):
    with Dataset.open(ds_path) as ds:
        paths = ds.export_sample("a", tmp_path / "out")
        assert [p.name for p in paths] == ["a_image.tif", "a_label_0000.tif", "a_label_0001.tif"]
        s = ds.sample("a")
        for layer, path in zip(s.layer_names(), paths):
            np.testing.assert_array_equal(imageio.read_image(path), s.read_layer(layer))
        with pytest.raises(DatasetError, match="already exists"):
            ds.export_sample("a", tmp_path / "out", layers=["image"])
        (tmp_path / "a_file").write_text("x")
        with pytest.raises(DatasetError, match="exporting to .*a_file failed"):
            ds.export_sample("a", tmp_path / "a_file")
        with pytest.raises(DatasetError, match="no layer 'nope'"):
            ds.export_sample("a", tmp_path / "out2", layers=["nope"])
        # exported files add back as a sample with identical content
        with Dataset.create(tmp_path / "again.hdf5", "A", 2) as again:
            s2 = again.add_sample("a", paths[0], paths[1:])
            for layer in s.layer_names():
                np.testing.assert_array_equal(s2.read_layer(layer), s.read_layer(layer))


def test_save_as_compacts_and_keeps_content(ds_path, tmp_path):
    with Dataset.open(ds_path, "r+") as ds:
        ds.add_sample("big", np.zeros((20, 200, 200), np.uint16) + np.arange(200, dtype=np.uint16),
                      ["", ""])
        ds.set_label_aliases(["mito", "er"])
    expected = logical_hash(ds_path)
    with Dataset.open(ds_path, "r+") as ds:
        ds.remove_sample("big")
    grown = ds_path.stat().st_size
    out = save_as(ds_path, tmp_path / "compact.hdf5")
    assert out.stat().st_size < grown / 3
    with Dataset.open(out) as ds:
        assert ds.sample_names() == ["a", "b"] and ds.label_aliases == ["mito", "er"]
    with pytest.raises(DatasetError, match="already exists"):
        save_as(ds_path, out)
    with pytest.raises(DatasetError, match="does not exist"):
        save_as(ds_path, tmp_path / "no" / "where.hdf5")
    with pytest.raises(DatasetError, match="being saved"):
        save_as(ds_path, ds_path, overwrite=True)
    save_as(out, tmp_path / "back.hdf5")
    assert logical_hash(tmp_path / "back.hdf5") == logical_hash(out)
    assert expected != logical_hash(out)  # 'big' is gone


def test_save_as_original_writes_the_original_layout(ds_path, tmp_path, shared_data):
    out = save_as(ds_path, tmp_path / "orig.hdf5", original=True)
    with h5py.File(out) as f, Dataset.open(ds_path) as ds:
        assert f.attrs["name"] == "T" and f.attrs["labels"] == 2
        for name in ("a", "b"):
            image = f[name]["image"]
            assert image.dtype == np.float32 and image.chunks is None and image.compression is None
            assert "norm_min" not in image.attrs
            raw = ds.sample(name).read_layer("image").astype(np.float64)
            lo, hi = ds.sample(name).image_range
            np.testing.assert_array_equal(image[()], ((raw - lo) / (hi - lo)).astype(np.float32))
            assert f[name]["label_0000"].dtype == np.uint8 and f[name]["label_0000"].chunks is None
    # our own add + original save gives the original's bytes for the original's inputs
    folder = shared_data / "original-format"
    inputs = folder / "inputs"
    with Dataset.create(tmp_path / "mine.hdf5", "SYNTH", 2) as ds:
        ds.add_sample("s3d", inputs / "s3d_image.tif",
                      [inputs / "s3d_label_0.tif", inputs / "s3d_label_1.tif"])
        ds.add_sample("s2d", inputs / "s2d_image.tif", [inputs / "s2d_label_0.tif", ""])
    save_as(tmp_path / "mine.hdf5", tmp_path / "mine_orig.hdf5", original=True)
    assert logical_hash(tmp_path / "mine_orig.hdf5") == logical_hash(folder / "orig_dataset.hdf5")


def test_original_files_crop_and_save(shared_data, tmp_path):
    path = tmp_path / "orig.hdf5"
    path.write_bytes((shared_data / "original-format" / "orig_dataset.hdf5").read_bytes())
    with Dataset.open(path, "r+") as ds:
        full = ds.sample("s3d").read_image()
        s = ds.crop_sample("s3d", (2, 6), (10, 74), (0, 64), new_name="s3d_crop")
        np.testing.assert_array_equal(s.read_image(), full[2:6, 10:74, 0:64])
    save_as(path, tmp_path / "ours.hdf5")
    with Dataset.open(tmp_path / "ours.hdf5") as ds:
        np.testing.assert_array_equal(ds.sample("s3d").read_image(), full)


def test_distance_transform_matches_scipy_with_anisotropy(ds_path):
    with Dataset.open(ds_path, "r+") as ds:
        mask = ds.sample("a").read_layer("label_0000").astype(bool)
        layer = ds.distance_transform("a", 0, scale=3.0, sampling=(2.0, 1.0, 1.0))
        assert layer == "label_0000_dt"
        dt = ds.sample("a").read_layer(layer)
        inside = distance_transform_edt(mask, sampling=(2, 1, 1))
        outside = distance_transform_edt(~mask, sampling=(2, 1, 1))
        expected = np.where(mask, np.tanh(inside / 3), -np.tanh(outside / 3))
        np.testing.assert_allclose(dt, expected, atol=1e-6)
        assert dt.dtype == np.float32 and (dt[mask] > 0).all() and (dt[~mask] < 0).all()
        assert ds.sample("a").label_layers() == ["label_0000", "label_0001"]
        with pytest.raises(DatasetError, match="already has a layer"):
            ds.distance_transform("a", 0)
        per = ds.sample("a").read_layer(ds.distance_transform("a", 0, per_slice=True, overwrite=True))
        z = 3
        exp_z = np.where(mask[z], np.tanh(distance_transform_edt(mask[z]) / 5),
                         -np.tanh(distance_transform_edt(~mask[z]) / 5))
        np.testing.assert_allclose(per[z], exp_z, atol=1e-6)
        blank = ds.sample("a").read_layer(ds.distance_transform("a", 1))
        assert (blank == -1).all()
        for bad, match in [({"label": 2}, "label index"), ({"label": 0, "scale": 0}, "scale"),
                           ({"label": 0, "sampling": (1, 1)}, "sampling")]:
            with pytest.raises(DatasetError, match=match):
                ds.distance_transform("a", overwrite=True, **bad)
    Dataset.open(ds_path).close()
