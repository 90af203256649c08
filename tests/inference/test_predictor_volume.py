"""Tiled prediction of in-memory volumes with an identity model (no dataset file needed)."""


import numpy as np
import pytest

from deepscem.config import (
    PredictConfig,
    UNetConfig,
)
from deepscem.errors import Cancelled
from deepscem.inference.predictor import Predictor, predict_volume
from deepscem.models.introspection import (
    ModelInfo,
    model_dimension,
)
from deepscem.progress import CancelToken

keras = pytest.importorskip("keras")


def identity_model(dim: int, outputs: int = 1):
    """A real Keras model whose outputs all equal its input: a 1x1 conv, weight 1, bias 0."""
    shape = (None,) * dim + (1,)
    inputs = keras.Input(shape)
    conv = (keras.layers.Conv2D if dim == 2 else keras.layers.Conv3D)(
        outputs, 1, activation="linear", kernel_initializer="ones", bias_initializer="zeros")
    return keras.Model(inputs, conv(inputs))


def info(dim, depth):
    return ModelInfo(dimension=dim, outputs=1, unet=UNetConfig(dim=dim, depth=depth, outputs=1))


@pytest.fixture(scope="module")
def model2d():
    return identity_model(2, outputs=2)


@pytest.fixture(scope="module")
def model3d():
    return identity_model(3)


@pytest.mark.parametrize("shape, patch, overlap", [
    ((3, 50, 70), (1, 32, 32), 0.5),     # stack of slices, not multiples of the tile
    ((1, 13, 21), (1, 64, 64), 0.25),    # tile larger than the volume, Z = 1
    ((2, 40, 40), None, 0.25),           # default tile (whole slice here)
])
def test_identity_2d_model_reproduces_the_volume(model2d, shape, patch, overlap):
    volume = np.random.default_rng(0).random(shape, dtype=np.float32)
    outs = [np.zeros(shape, np.float32), np.zeros(shape, np.float32)]
    seen = []
    config = PredictConfig(patch=patch, overlap=overlap, batch_size=3)
    predict_volume(model2d, volume, outs, config, info=info(2, 3), progress=seen.append)
    for out in outs:
        np.testing.assert_allclose(out, volume, rtol=2e-6, atol=1e-6)
    assert seen[-1].done == seen[-1].total and seen[-1].unit == "tiles"


@pytest.mark.parametrize("shape, patch", [
    ((9, 20, 33), (4, 16, 16)),          # 3D tiles, not multiples
    ((1, 10, 10), (8, 32, 32)),          # Z = 1 and a tile larger than the volume
])
def test_identity_3d_model_reproduces_the_volume(model3d, shape, patch):
    volume = np.random.default_rng(1).random(shape, dtype=np.float32)
    out = np.zeros(shape, np.float32)
    predict_volume(model3d, volume, [out], PredictConfig(patch=patch, overlap=0.5),
                   info=info(3, 2))
    np.testing.assert_allclose(out, volume, rtol=2e-6, atol=1e-6)


def test_tta_and_threshold(model2d):
    volume = np.random.default_rng(2).random((2, 24, 40), dtype=np.float32)
    outs = [np.zeros(volume.shape, np.uint8) for _ in range(2)]
    config = PredictConfig(patch=(1, 16, 32), tta=True, threshold=0.3)  # non-square tiles
    predict_volume(model2d, volume, outs, config, info=info(2, 2))
    assert outs[0].dtype == np.uint8
    np.testing.assert_array_equal(outs[0], (volume > 0.3).astype(np.uint8))


@pytest.mark.parametrize("n, factor", [
    (0, lambda i, j, h, w: j + 100 * i),                      # plain
    (2, lambda i, j, h, w: (w - 1 + 100 * (h - 1)) / 2 + 0 * i),  # + the 180-degree rotation
    (4, lambda i, j, h, w: 101 * (w + h - 2) / 4 + 0 * i),   # the four rotations
    (8, lambda i, j, h, w: 101 * (w + h - 2) / 4 + 0 * i),   # + their flips of X
])
def test_tta_averages_exactly_its_transforms(n, factor):
    # a forward pass that is not rotation-invariant: each output voxel is its input times
    # (column + 100 x row) of the tile it was given, so each set of transforms has its own
    # closed-form average (a flip of X instead of the 180-degree rotation would leave the rows)
    def by_position(x):  # (B, ty, tx, 1) -> (B, ty, tx, 1)
        i, j = np.indices(x.shape[1:3], dtype=np.float32)
        return x * (j + 100 * i)[None, ..., None]

    p = Predictor(identity_model(2), info(2, 2), PredictConfig(tta=n), forward=by_position)
    tiles = np.random.default_rng(5).random((2, 1, 8, 12), dtype=np.float32)
    y = p.forward(tiles)[:, 0, ..., 0]
    i, j = np.indices((8, 12))
    np.testing.assert_allclose(y, tiles[:, 0] * factor(i, j, 8, 12), rtol=1e-5)


def test_tta_true_is_the_eight_transforms_and_bad_counts_say_what_to_give():
    from deepscem.errors import ConfigError

    assert PredictConfig(tta=True).tta == 8 and PredictConfig(tta=False).tta == 0
    assert PredictConfig(tta=1).tta == 0
    with pytest.raises(ConfigError, match="0 \\(off\\), 2, 4 or 8"):
        PredictConfig(tta=3)


def test_tiles_are_multiples_of_the_network_size(model3d):
    p = Predictor(model3d, info(3, 3), PredictConfig(patch=(5, 20, 30)))
    grid = p.grid((40, 100, 100))
    assert grid.tile_shape == (8, 24, 32)
    assert model_dimension(model3d) == 3


def test_cancel_stops_between_batches(model2d):
    volume = np.zeros((4, 32, 32), np.float32)
    token = CancelToken()
    outs = [np.zeros(volume.shape, np.float32) for _ in range(2)]

    def progress(p):
        token.cancel()

    with pytest.raises(Cancelled):
        predict_volume(model2d, volume, outs, PredictConfig(patch=(1, 16, 16), batch_size=1),
                       info=info(2, 1), progress=progress, cancel=token)


def test_default_tiles_are_large_and_take_short_axes_whole(model2d):
    # with an explicit overlap: the base tile, at least 2 x the training patch
    p = Predictor(model2d, ModelInfo(dimension=2, outputs=1, unet=UNetConfig(depth=4),
                                     patch_size=(1, 256, 384)), PredictConfig(overlap=0.25))
    assert p.grid((165, 512, 640)).tile_shape == (1, 512, 640)    # Lucchi slices: one tile
    assert p.grid((2, 2048, 2048)).tile_shape == (1, 512, 768)    # 2 x the training patch
    # the default: tiles from the memory budget, seams of 2 x 64 voxels (tile_choice)
    p = Predictor(model2d, ModelInfo(dimension=2, outputs=1, unet=UNetConfig(depth=4),
                                     patch_size=(1, 256, 384)), PredictConfig())
    assert p.grid((165, 512, 640)).tile_shape == (1, 512, 640)
    grid = p.grid((2, 2048, 2048))
    assert grid.tile_shape == (1, 1088, 1088)
    assert all(grid.tile_shape[a] - (o[1] - o[0]) >= 128 for a, o in ((1, grid.origins[1]),
                                                                       (2, grid.origins[2])))


def test_tta_3d_is_undone_exactly(model3d):
    volume = np.random.default_rng(3).random((5, 12, 20), dtype=np.float32)
    out = np.zeros(volume.shape, np.float32)
    predict_volume(model3d, volume, [out], PredictConfig(patch=(4, 8, 16), tta=True),
                   info=info(3, 2))
    np.testing.assert_allclose(out, volume, rtol=2e-6, atol=1e-6)


def test_writes_into_chunked_hdf5_layers_block_by_block(model2d, tmp_path):
    import h5py

    volume = np.random.default_rng(4).random((6, 20, 24), dtype=np.float32)
    with h5py.File(tmp_path / "out.h5", "w") as f:
        outs = [f.create_dataset(f"p{i}", volume.shape, np.uint8, chunks=(4, 8, 8),
                                 compression="gzip") for i in range(2)]
        predict_volume(model2d, volume, outs, PredictConfig(patch=(1, 16, 16), threshold=0.5),
                       info=info(2, 2))
        for out in outs:
            np.testing.assert_array_equal(out[()], volume > 0.5)


def test_wide_volumes_are_predicted_in_y_bands_with_bounded_buffers(model3d, monkeypatch):
    from deepscem.inference import predictor as predictor_module

    monkeypatch.setattr(predictor_module, "BUFFER_BYTES", 4 * 100 * 4 * 20)  # ~20 rows of buffer
    volume = np.random.default_rng(5).random((6, 101, 100), dtype=np.float32)
    p = Predictor(model3d, info(3, 2), PredictConfig(patch=(4, 16, 16), overlap=0.25))
    bands = p.bands(volume.shape)
    assert len(bands) > 2
    assert [c0 for c0, *_ in bands[1:]] == [c1 for _, c1, *_ in bands[:-1]]   # cores tile Y
    assert bands[0][0] == 0 and bands[-1][1] == 101
    out = np.zeros(volume.shape, np.float32)
    seen = []
    p.predict_volume(lambda r: volume[r], volume.shape, [out], progress=seen.append)
    np.testing.assert_allclose(out, volume, rtol=2e-6, atol=1e-6)
    assert seen[-1].done == seen[-1].total == p.count_tiles(volume.shape)


@pytest.mark.parametrize("dim, shape, patch, sigma", [
    (2, (23, 20, 24), (1, 16, 16), 1.5),   # 2D model: one slice per block, radius 6
    (3, (19, 20, 24), (4, 16, 16), 0.8),   # 3D tiles: blocks of several slices
    (2, (3, 16, 16), (1, 16, 16), 2.0),    # radius 8 deeper than the volume
])
def test_z_smoothing_equals_a_whole_volume_gaussian(model2d, model3d, dim, shape, patch, sigma):
    from scipy.ndimage import gaussian_filter1d

    volume = np.random.default_rng(6).random(shape, dtype=np.float32)
    model, outputs = (model2d, 2) if dim == 2 else (model3d, 1)
    outs = [np.zeros(shape, np.float32) for _ in range(outputs)]
    predict_volume(model, volume, outs, PredictConfig(patch=patch, z_smooth=sigma), info=info(dim, 2))
    expected = gaussian_filter1d(volume, sigma, axis=0)
    for out in outs:
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    # and thresholded after smoothing, in Y bands with the smoothing's slices counted in
    masks = [np.zeros(shape, np.uint8) for _ in range(outputs)]
    predict_volume(model, volume, masks, PredictConfig(patch=patch, z_smooth=sigma, threshold=0.5),
                   info=info(dim, 2))
    for mask in masks:
        assert (mask != (expected > 0.5)).mean() < 1e-3  # only float ties at 0.5 may differ


def test_z_smoothing_counts_in_the_band_size(model3d, monkeypatch):
    from deepscem.inference import predictor as predictor_module

    monkeypatch.setattr(predictor_module, "BUFFER_BYTES", 4 * 100 * 4 * 40)
    plain = Predictor(model3d, info(3, 2), PredictConfig(patch=(4, 16, 16)))
    smooth = Predictor(model3d, info(3, 2), PredictConfig(patch=(4, 16, 16), z_smooth=2.0))
    assert len(smooth.bands((40, 200, 100))) > len(plain.bands((40, 200, 100)))
    from scipy.ndimage import gaussian_filter1d

    volume = np.random.default_rng(7).random((12, 101, 100), dtype=np.float32)
    assert len(smooth.bands(volume.shape)) > 2
    out = np.zeros(volume.shape, np.float32)
    smooth.predict_volume(lambda r: volume[r], volume.shape, [out])
    np.testing.assert_allclose(out, gaussian_filter1d(volume, 2.0, axis=0), rtol=1e-5, atol=1e-6)


def test_z_smoothing_is_checked():
    from deepscem.errors import ConfigError

    with pytest.raises(ConfigError, match="z_smooth"):
        PredictConfig(z_smooth=-1)


def test_a_model_output_in_a_list_is_taken_and_a_wrong_shape_is_refused(model2d):
    from deepscem.errors import ModelError

    volume = np.random.default_rng(0).random((2, 24, 24)).astype(np.float32)
    ref = [np.zeros(volume.shape, np.float32) for _ in range(2)]
    predict_volume(model2d, volume, ref, PredictConfig(), info=info(2, 2))
    listed = Predictor(model2d, info(2, 2), PredictConfig(),
                       forward=lambda x: [model2d.predict_on_batch(x)])
    outs = [np.zeros(volume.shape, np.float32) for _ in range(2)]
    listed.predict_volume(lambda r: volume[r], volume.shape, outs)
    np.testing.assert_allclose(outs[0], ref[0], atol=1e-6)
    # an engine that adds an axis (a batch of one batch) is named, not a broadcasting error
    wrong = Predictor(model2d, info(2, 2), PredictConfig(),
                      forward=lambda x: np.asarray([model2d.predict_on_batch(x)] * 2))
    with pytest.raises(ModelError, match=r"returned shape \(2, .* for tiles of shape"):
        wrong.predict_volume(lambda r: volume[r], volume.shape, outs)
