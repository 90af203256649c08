"""predict_dataset: the prediction file's layout, safety of the output path, cancel."""


import h5py
import numpy as np
import pytest

from deepscem.config import (
    PredictConfig,
    UNetConfig,
)
from deepscem.dataset import Dataset
from deepscem.errors import Cancelled, DatasetError
from deepscem.inference.predictor import predict_dataset
from deepscem.models.introspection import ModelInfo
from deepscem.progress import CancelToken

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def identity2():
    """Two outputs that both equal the input (1x1 conv, weights 1, bias 0)."""
    inputs = keras.Input((None, None, 1))
    out = keras.layers.Conv2D(2, 1, kernel_initializer="ones", bias_initializer="zeros")(inputs)
    return keras.Model(inputs, out)


INFO = ModelInfo(dimension=2, unet=UNetConfig(depth=2, outputs=2), patch_size=(1, 16, 16),
                 label_names=["mito", "er"], outputs=2)


@pytest.fixture
def unlabelled(tmp_path):
    """A new volume to segment: images only (blank labels), 2D and 3D samples."""
    rng = np.random.default_rng(0)
    path = tmp_path / "new.hdf5"
    with Dataset.create(path, "new", 1) as ds:
        ds.add_sample("stack", rng.integers(0, 255, (3, 20, 37), dtype=np.uint8), [None])
        ds.add_sample("slice", rng.integers(0, 4000, (1, 30, 18), dtype=np.uint16), [None])
    return path


def test_images_without_labels_predict_into_the_original_layout(identity2, unlabelled, tmp_path):
    out = tmp_path / "pred.hdf5"
    seen = []
    config = PredictConfig(patch=(1, 16, 16), overlap=0.5, batch_size=5)
    assert predict_dataset(identity2, INFO, unlabelled, out, config, progress=seen.append) == out
    assert seen[-1].done == seen[-1].total > 0
    with h5py.File(out, "r") as f:
        assert f.attrs["labels"] == 2 and "prediction" in f.attrs["name"]
        assert sorted(f) == ["slice", "stack"]
        assert list(f["stack"].attrs["shape"]) == [3, 20, 37]
        assert sorted(f["stack"]) == ["image", "prediction_0000", "prediction_0001"]
    with Dataset.open(out) as pred, Dataset.open(unlabelled) as src:
        assert pred.label_aliases == ["mito", "er"]
        for name in ("stack", "slice"):
            image = src.sample(name).read_image()
            np.testing.assert_array_equal(pred.sample(name).read_image(), image)
            for layer in ("prediction_0000", "prediction_0001"):
                values = pred.sample(name).read_layer(layer)
                assert values.dtype == np.float32
                np.testing.assert_allclose(values, image, rtol=2e-6, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir() if ".part-" in p.name] == []


def test_threshold_writes_uint8_masks(identity2, unlabelled, tmp_path):
    out = predict_dataset(identity2, INFO, unlabelled, tmp_path / "bin.hdf5",
                          PredictConfig(threshold=0.5, tta=True))
    with Dataset.open(out) as pred, Dataset.open(unlabelled) as src:
        values = pred.sample("stack").read_layer("prediction_0001")
        assert values.dtype == np.uint8
        np.testing.assert_array_equal(values, src.sample("stack").read_image() > 0.5)


def test_existing_output_is_refused_and_left_unchanged(identity2, unlabelled, tmp_path):
    out = tmp_path / "keep.hdf5"
    out.write_bytes(b"precious")
    with pytest.raises(DatasetError, match="already exists.*--overwrite"):
        predict_dataset(identity2, INFO, unlabelled, out)
    assert out.read_bytes() == b"precious"
    with pytest.raises(DatasetError, match="is also the dataset to predict"):
        predict_dataset(identity2, INFO, unlabelled, unlabelled, overwrite=True)
    predict_dataset(identity2, INFO, unlabelled, out, overwrite=True)
    assert h5py.is_hdf5(out)


def test_cancel_leaves_no_output_and_keeps_an_existing_one(identity2, unlabelled, tmp_path):
    out = tmp_path / "pred.hdf5"
    token = CancelToken()

    def cancel_midway(p):
        if p.done >= 2:
            token.cancel()

    config = PredictConfig(patch=(1, 16, 16), batch_size=1)
    with pytest.raises(Cancelled):
        predict_dataset(identity2, INFO, unlabelled, out, config, progress=cancel_midway,
                        cancel=token)
    assert list(tmp_path.iterdir()) == [unlabelled]
    out.write_bytes(b"old result")
    token = CancelToken()
    with pytest.raises(Cancelled):
        predict_dataset(identity2, INFO, unlabelled, out, config, overwrite=True,
                        progress=cancel_midway, cancel=token)
    assert out.read_bytes() == b"old result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.hdf5", "pred.hdf5"]


def test_not_a_dataset_is_a_clear_error(identity2, tmp_path):
    bad = tmp_path / "x.hdf5"
    bad.write_text("nope")
    with pytest.raises(DatasetError, match="not an HDF5 file"):
        predict_dataset(identity2, INFO, bad, tmp_path / "out.hdf5")
    assert not (tmp_path / "out.hdf5").exists()


def test_partial_file_of_a_killed_run_is_cleaned_up(identity2, unlabelled, tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".pred.hdf5.part-{dead}-00aa11.hdf5"
    stale.write_bytes(b"left by a killed run")
    predict_dataset(identity2, INFO, unlabelled, tmp_path / "pred.hdf5")
    assert not stale.exists() and (tmp_path / "pred.hdf5").exists()
