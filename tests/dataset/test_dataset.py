import h5py
import numpy as np
import pytest
import tifffile
from h5_content import file_hash, logical_hash
from synthetic_data import synthetic_volume

from deepscem.dataset import Dataset, imageio, label_name, prediction_name
from deepscem.errors import Cancelled, DatasetError, InputFileError
from deepscem.progress import CancelToken


@pytest.fixture
def ds_path(tmp_path):
    """A dataset with 2 labels and one 3D sample 'a' (uint16 image)."""
    path = tmp_path / "ds.hdf5"
    image, mask = synthetic_volume((6, 40, 50), np.uint16)
    with Dataset.create(path, "T", 2) as ds:
        ds.add_sample("a", image, [mask, None])
    return path


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.uint32, np.int32, np.float32,
                                   np.float64])
@pytest.mark.parametrize("shape", [(5, 33, 41), (33, 41)])
def test_add_sample_round_trip(tmp_path, dtype, shape):
    image, mask = synthetic_volume((1,) + shape if len(shape) == 2 else shape, dtype)
    image, mask = image.reshape(shape), mask.reshape(shape)
    imageio.write_image(tmp_path / "img.tif", image)
    imageio.write_image(tmp_path / "lbl.npy", mask * 255)
    path = tmp_path / "ds.hdf5"
    with Dataset.create(path, "RT", 2) as ds:
        seen = []
        s = ds.add_sample("s", tmp_path / "img.tif", [tmp_path / "lbl.npy", ""], progress=seen.append)
        assert seen[-1].done == seen[-1].total and seen[-1].stage == "writing"
    with Dataset.open(path) as ds:
        s = ds.sample("s")
        zyx = (1,) + shape if len(shape) == 2 else shape
        assert s.shape == zyx
        raw = s.read_layer("image")
        assert raw.dtype == (np.float32 if np.dtype(dtype).kind == "f" else dtype)
        np.testing.assert_array_equal(raw, image.reshape(zyx).astype(raw.dtype))
        assert s.image_range == (float(image.min().astype(raw.dtype)), float(image.max().astype(raw.dtype)))
        norm = s.read_image()
        assert norm.dtype == np.float32 and norm.min() == 0.0 and norm.max() == 1.0
        np.testing.assert_array_equal(s.read_layer("label_0000"), mask.reshape(zyx))
        assert s.read_layer("label_0001").max() == 0 and s.read_layer("label_0001").dtype == np.uint8
        assert s.layer_names() == ["image", "label_0000", "label_0001"]
        assert s.label_layers() == ["label_0000", "label_0001"] and s.prediction_layers() == []


def test_layout_matches_the_original(ds_path):
    with h5py.File(ds_path) as f:
        assert f.attrs["name"] == "T" and f.attrs["labels"] == 2
        assert f.attrs["labels"].dtype == np.int64
        g = f["a"]
        assert g.attrs["shape"].dtype == np.int64 and tuple(g.attrs["shape"]) == (6, 40, 50)
        assert g["image"].dtype == np.uint16 and g["image"].compression is None
        assert g["image"].chunks is not None
        assert g["label_0000"].dtype == np.uint8 and g["label_0000"].compression == "gzip"


def test_patch_reads_return_the_right_voxels(tmp_path, rng):
    image = rng.integers(0, 4000, (9, 300, 280), dtype=np.uint16)
    with Dataset.create(tmp_path / "p.hdf5", "P", 1) as ds:
        s = ds.add_sample("s", image, [image > 2000])
        lo, hi = float(image.min()), float(image.max())
        for _ in range(20):
            z, y, x = rng.integers(0, 9), rng.integers(0, 300 - 64), rng.integers(0, 280 - 64)
            region = (slice(z, z + 3), slice(y, y + 64), slice(x, x + 64))
            np.testing.assert_array_equal(s.read_layer("image", region), image[region])
            np.testing.assert_allclose(s.read_image(region), (image[region] - lo) / (hi - lo),
                                       rtol=1e-6)
            np.testing.assert_array_equal(s.read_layer("label_0000", region), image[region] > 2000)


def test_chunk_cache_option_reads_the_same(tmp_path, rng):
    mask = rng.random((8, 200, 300)) > 0.7
    with Dataset.create(tmp_path / "c.hdf5", "C", 1) as ds:
        ds.add_sample("s", mask.astype(np.uint8), [mask])
    with Dataset.open(tmp_path / "c.hdf5", cache_mb=16) as ds:
        layer = ds.sample("s").layer("label_0000")
        assert layer.id.get_access_plist().get_chunk_cache()[1] == 16 * 2**20
        np.testing.assert_array_equal(ds.sample("s").read_layer("label_0000", (slice(2, 5),)), mask[2:5])


def test_a_single_label_may_be_given_bare(tmp_path):
    image, mask = synthetic_volume((2, 16, 16))
    imageio.write_image(tmp_path / "m.tif", mask)
    with Dataset.create(tmp_path / "one.hdf5", "O", 1) as ds:
        ds.add_sample("a", image, mask)
        ds.add_sample("b", image, str(tmp_path / "m.tif"))
        np.testing.assert_array_equal(ds.sample("b").read_layer("label_0000"), mask)


def test_constant_image_reads_as_zeros_not_nan(tmp_path):
    with Dataset.create(tmp_path / "c.hdf5", "C", 1) as ds:
        s = ds.add_sample("s", np.full((2, 8, 8), 7, np.uint8), [None])
        assert s.image_range == (7.0, 7.0)
        assert not np.isnan(s.read_image()).any() and s.read_image().max() == 0


def test_create_errors(tmp_path, ds_path):
    with pytest.raises(DatasetError, match="already exists"):
        Dataset.create(ds_path, "x", 1)
    for bad in (-1, 1.5, "2"):  # 0 is allowed: a dataset of images only
        with pytest.raises(DatasetError, match="number of labels"):
            Dataset.create(tmp_path / "n.hdf5", "x", bad)
    with pytest.raises(DatasetError, match="does not exist"):
        Dataset.create(tmp_path / "no" / "where.hdf5", "x", 1)
    Dataset.create(ds_path, "again", 3, overwrite=True).close()
    with Dataset.open(ds_path) as ds:
        assert ds.n_labels == 3 and len(ds) == 0


def test_open_errors_name_the_file_and_the_rule(tmp_path, ds_path):
    with pytest.raises(DatasetError, match="no such file"):
        Dataset.open(tmp_path / "missing.hdf5")
    (tmp_path / "text.hdf5").write_text("hello")
    with pytest.raises(DatasetError, match="text.hdf5: not an HDF5 file"):
        Dataset.open(tmp_path / "text.hdf5")
    raw = ds_path.read_bytes()
    (tmp_path / "cut.hdf5").write_bytes(raw[:2048])
    with pytest.raises(DatasetError, match="cut.hdf5: cannot open.*damaged"):
        Dataset.open(tmp_path / "cut.hdf5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DatasetError, match="other.h5: an HDF5 file but not a DeepSCEM dataset"):
        Dataset.open(tmp_path / "other.h5")
    with pytest.raises(DatasetError, match="mode"):
        Dataset.open(ds_path, "w")
    with Dataset.open(ds_path), pytest.raises(DatasetError, match="already open read-only"):
        Dataset.open(ds_path, "r+")


@pytest.mark.parametrize("breakage,match", [
    (lambda f: f["a"].create_dataset("label_0002", data=np.zeros((6, 40, 50), np.uint8)),
     "label layers"),
    (lambda f: f["a"].create_dataset("prediction_0000", data=np.zeros((6, 40, 5), np.float32)),
     "prediction_0000.*shape"),
    (lambda f: f["a"].attrs.__setitem__("shape", np.array([1, 2, 3])), "shape"),
    (lambda f: f.create_dataset("loose", data=np.zeros(3)), "'loose' is not a sample group"),
    (lambda f: f.create_group("empty"), "'empty' has neither an image"),
])
def test_bad_sample_is_reported_by_name(ds_path, breakage, match):
    with h5py.File(ds_path, "a") as f:
        breakage(f)
    with pytest.raises(DatasetError, match=match):
        Dataset.open(ds_path)
    Dataset.open(ds_path, check_samples=False).close()  # still repairable


def _bad_inputs(tmp_path):
    image, mask = synthetic_volume((6, 40, 50), np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((40, 50, 3), np.uint8), photometric="rgb")
    imageio.write_image(tmp_path / "three.tif", mask * np.arange(6).reshape(6, 1, 1))
    imageio.write_image(tmp_path / "small.tif", mask[:, :20])
    imageio.write_image(tmp_path / "ok.tif", image)
    imageio.write_image(tmp_path / "nan.npy", np.full((6, 40, 50), np.nan, np.float32))
    return [
        ("rgb.tif", ["", ""], InputFileError, "RGB"),
        ("ok.tif", ["three.tif", ""], InputFileError, r"three\.tif.*found 0, 1, 2, 3, 4, 5"),
        ("ok.tif", ["small.tif", ""], InputFileError, r"small\.tif: label shape"),
        ("ok.tif", ["missing.tif", ""], InputFileError, "no such file"),
        ("ok.tif", [""], DatasetError, "needs 2 label"),
        ("nan.npy", ["", ""], InputFileError, "NaN"),
    ]


def test_bad_input_leaves_the_file_byte_identical(tmp_path, ds_path):
    before = file_hash(ds_path)
    for image, labels, err, match in _bad_inputs(tmp_path):
        with Dataset.open(ds_path, "r+") as ds, pytest.raises(err, match=match):
            ds.add_sample("new", tmp_path / image, [str(tmp_path / lbl) if lbl else "" for lbl in labels])
        assert file_hash(ds_path) == before, image
    for name in ("a", "", "x/y", ".hidden"):
        with Dataset.open(ds_path, "r+") as ds, pytest.raises(DatasetError):
            ds.add_sample(name, np.zeros((2, 4, 4)), ["", ""])
    assert file_hash(ds_path) == before


class _CancelAfter:
    def __init__(self, token, stage, count):
        self.token, self.stage, self.count = token, stage, count

    def __call__(self, p):
        if p.stage == self.stage:
            self.count -= 1
            if self.count <= 0:
                self.token.cancel()


@pytest.mark.parametrize("stage", ["checking", "writing"])
def test_cancel_or_failure_mid_write_leaves_content_unchanged(tmp_path, ds_path, monkeypatch, stage):
    monkeypatch.setattr("deepscem.dataset.format.SLAB_BYTES", 1)  # one slice per slab
    image, mask = synthetic_volume((6, 40, 50), np.uint16)
    before = logical_hash(ds_path)
    token = CancelToken()
    with Dataset.open(ds_path, "r+") as ds, pytest.raises(Cancelled):
        ds.add_sample("new", image, [mask, mask], cancel=token, progress=_CancelAfter(token, stage, 2))
    assert logical_hash(ds_path) == before

    seen = set()

    def broken(self, z0, z1):  # fails in the second (writing) pass only, at slice 3
        if z0 >= 3 and (id(self), z0) in seen:
            raise OSError("disk went away")
        seen.add((id(self), z0))
        return np.array(self.array[z0:z1])

    monkeypatch.setattr(imageio.ArraySource, "read", broken)
    with Dataset.open(ds_path, "r+") as ds, pytest.raises(DatasetError, match="disk went away.*as it was"):
        ds.add_sample("new", image, [mask, mask])
    assert logical_hash(ds_path) == before


def test_remove_rename_aliases(ds_path):
    with Dataset.open(ds_path, "r+") as ds:
        ds.add_sample("b", np.ones((2, 5, 5), np.uint8), ["", ""])
        assert ds.label_aliases == ["label 0", "label 1"]
        ds.set_label_aliases(["mito", "er"])
        with pytest.raises(DatasetError, match="exactly 2"):
            ds.set_label_aliases(["mito"])
        ds.rename_sample("b", "c")
        with pytest.raises(DatasetError, match="already exists"):
            ds.rename_sample("c", "a")
        with pytest.raises(DatasetError, match="no sample 'zz'"):
            ds.remove_sample("zz")
        ds.remove_sample("a")
    with Dataset.open(ds_path) as ds:
        assert ds.sample_names() == ["c"] and ds.label_aliases == ["mito", "er"]
        assert "c" in ds and len(ds) == 1
        with pytest.raises(DatasetError, match="read-only"):
            ds.remove_sample("c")


def test_empty_sample_and_layers_for_prediction_writers(ds_path, tmp_path):
    with Dataset.open(ds_path) as src, Dataset.create(tmp_path / "pred.hdf5", "P", 2) as out:
        s = out.add_empty_sample("a", (6, 40, 50), image_from=src.sample("a"))
        np.testing.assert_array_equal(s.read_image(), src.sample("a").read_image())
        layer = s.create_layer(prediction_name(0), np.float32)
        layer[1:3, :10] = 0.5
        with pytest.raises(DatasetError, match="already has a layer"):
            s.create_layer(prediction_name(0), np.float32)
        s.create_layer(label_name(0) + "_dt", np.float32)
        assert s.layer_names() == ["image", "prediction_0000", "label_0000_dt"]
        assert s.prediction_layers() == ["prediction_0000"]
        with pytest.raises(DatasetError, match="has no layer 'label_0005'"):
            s.layer("label_0005")
    with Dataset.open(tmp_path / "pred.hdf5") as out:
        assert out.sample("a").read_layer("prediction_0000")[2, 5, 5] == np.float32(0.5)


def test_original_files_open_list_and_read(shared_data):
    folder = shared_data / "original-format"
    with Dataset.open(folder / "orig_dataset.hdf5") as ds:
        assert ds.name == "SYNTH" and ds.n_labels == 2 and ds.sample_names() == ["s2d", "s3d"]
        s = ds.sample("s2d")
        assert s.shape == (1, 96, 96) and s.image_range == (0.0, 1.0)
        np.testing.assert_array_equal(s.read_image(), s.read_layer("image"))
        expected = imageio.read_label(folder / "inputs" / "s2d_label_0.tif")
        np.testing.assert_array_equal(s.read_layer("label_0000"), expected)
    for pred in sorted(folder.glob("orig_pred_*.hdf5")):
        with Dataset.open(pred) as ds:
            s = ds.sample("s3d")
            assert s.label_layers() == [] and s.prediction_layers()[0] == "prediction_0000"


_MAKE_STACK_SCRIPT = """
import sys, numpy as np
from pathlib import Path
src, n = Path(sys.argv[1]), int(sys.argv[2])
stack = np.lib.format.open_memmap(src / "img.npy", "w+", np.uint16, (n, 512, 512))
label = np.lib.format.open_memmap(src / "lbl.npy", "w+", np.uint8, (n, 512, 512))
for z in range(n):
    stack[z] = z
    label[z, 100:200] = 1
"""
# A fresh process: VmHWM (peak RSS) starts afresh after exec, unlike ru_maxrss.
_PEAK_RSS_SCRIPT = """
import sys
from pathlib import Path
from deepscem.dataset import Dataset
src = Path(sys.argv[1])
with Dataset.create(src / "ds.hdf5", "M", 1) as ds:
    ds.add_sample("s", src / "img.npy", [src / "lbl.npy"])
print([int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0])
"""


@pytest.mark.slow
def test_add_sample_peak_memory_does_not_grow_with_stack_size(tmp_path):
    import subprocess
    import sys

    peaks = []
    for n in (256, 1024):  # 128 MB and 512 MB of image (+ a label of half that): 4 and 16 slabs
        folder = tmp_path / str(n)
        folder.mkdir()
        subprocess.run([sys.executable, "-c", _MAKE_STACK_SCRIPT, str(folder), str(n)], check=True)
        out = subprocess.run([sys.executable, "-c", _PEAK_RSS_SCRIPT, str(folder)],
                             capture_output=True, text=True, check=True)
        peaks.append(int(out.stdout) / 1024)
        for path in folder.iterdir():
            path.unlink()
    assert peaks[1] < 500
    assert peaks[1] - peaks[0] < 80, peaks  # one slab's worth at most, not the stack
