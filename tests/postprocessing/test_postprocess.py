"""remove_small_objects: exact against scikit-image whatever the slab size, conservative
when the halo must be shortened, in place on HDF5, and as a prediction option."""


import h5py
import numpy as np
import pytest
from skimage.morphology import remove_small_objects as skimage_remove

from deepscem.config import (
    PredictConfig,
    UNetConfig,
)
from deepscem.dataset import Dataset
from deepscem.errors import Cancelled, ConfigError
from deepscem.models.introspection import ModelInfo
from deepscem.postprocessing.small_objects import remove_small_objects
from deepscem.progress import CancelToken


def blobs(shape=(12, 20, 24), fraction=0.35, seed=0):
    """Random binary volume with objects of every size, thin Z-spanning ones included."""
    rng = np.random.default_rng(seed)
    return (rng.random(shape) < fraction).astype(np.uint8)


def reference(volume, min_size):
    # max_size: objects of at most that many voxels go, i.e. fewer than min_size
    return skimage_remove(volume.astype(bool), max_size=min_size - 1, connectivity=1).astype(np.uint8)


def test_hand_made_volume():
    volume = np.zeros((5, 8, 8), np.uint8)
    volume[0:5, 0, 0] = 1          # a column of 5 voxels across every slice: kept at min_size 5
    volume[2, 4:6, 4:6] = 1        # a 4-voxel square: removed
    volume[4, 7, 7] = 1            # a single voxel: removed
    volume[1, 7, 0] = volume[2, 7, 1] = 1  # diagonal neighbours are two objects of 1 voxel
    removed = remove_small_objects(volume, 5)
    assert (removed.objects, removed.voxels, removed.exact) == (4, 7, True)
    assert volume.sum() == 5 and volume[:, 0, 0].all()


@pytest.mark.parametrize("max_voxels", [20 * 24, 3 * 20 * 24, 7 * 20 * 24, 10**9])
@pytest.mark.parametrize("min_size", [2, 3, 5, 40])
def test_slabs_give_exactly_what_skimage_gives_on_the_whole_volume(min_size, max_voxels):
    volume = blobs()
    expected = reference(volume, min_size)
    removed = remove_small_objects(volume, min_size, max_voxels=max_voxels)
    fit = max_voxels // (20 * 24)  # slices per window
    assert removed.exact == (fit >= volume.shape[0] or 2 * min_size + 1 <= fit)
    if removed.exact:
        np.testing.assert_array_equal(volume, expected)
        assert removed.voxels == int(blobs().sum()) - int(expected.sum())
    else:
        assert (volume >= expected).all() and (volume <= blobs()).all()


def test_a_shortened_halo_never_removes_a_large_object():
    original = blobs(shape=(30, 16, 16), fraction=0.3, seed=3)
    volume = original.copy()
    removed = remove_small_objects(volume, 12, max_voxels=3 * 16 * 16)  # halo 1 slice, not 12
    assert not removed.exact
    expected = reference(original, 12)
    assert (volume >= expected).all()          # every large object is still there, whole
    assert (volume <= original).all()          # and nothing was added
    assert volume.sum() < original.sum()       # the small ones inside the windows did go


def test_in_place_on_hdf5_and_cancel(tmp_path):
    volume = blobs(shape=(16, 32, 32), seed=1)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        f["m"] = volume
        token = CancelToken()
        token.cancel()
        with pytest.raises(Cancelled):
            remove_small_objects(f["m"], 4, cancel=token)
        np.testing.assert_array_equal(f["m"][...], volume)
        seen = []
        remove_small_objects(f["m"], 4, max_voxels=10 * 32 * 32, progress=seen.append)
        np.testing.assert_array_equal(f["m"][...], reference(volume, 4))
    assert seen[-1].done == seen[-1].total == 16


def test_bad_arguments():
    with pytest.raises(ConfigError, match="voxels"):
        remove_small_objects(np.zeros((2, 2, 2)), -1)
    with pytest.raises(ConfigError, match="Z, Y, X"):
        remove_small_objects(np.zeros((2, 2)), 3)
    with pytest.raises(ConfigError, match="threshold"):
        PredictConfig(min_size=10)


def test_prediction_option_removes_specks_and_records_it(tmp_path):
    keras = pytest.importorskip("keras")
    from deepscem.inference.predictor import predict_dataset

    inputs = keras.Input((None, None, 1))
    identity = keras.Model(inputs, keras.layers.Conv2D(1, 1, kernel_initializer="ones",
                                                       bias_initializer="zeros")(inputs))
    info = ModelInfo(dimension=2, unet=UNetConfig(depth=2), patch_size=(1, 16, 16),
                     label_names=["mito"], outputs=1)
    image = np.zeros((4, 32, 32), np.uint8)
    image[:, 4:20, 4:20] = 255     # one large object through every slice
    image[1, 28, 28] = 255         # a speck
    src = tmp_path / "src.hdf5"
    with Dataset.create(src, "src", 1) as ds:
        ds.add_sample("s", image, [None])
    out = tmp_path / "pred.hdf5"
    predict_dataset(identity, info, src, out, PredictConfig(threshold=0.5, min_size=10))
    with Dataset.open(out) as pred:
        layer = pred.sample("s").layer("prediction_0000")
        np.testing.assert_array_equal(layer[...], (image > 0) & (np.arange(32)[:, None] < 25))
        assert dict(layer.attrs)["removed_objects"] == 1 and layer.attrs["min_size"] == 10
