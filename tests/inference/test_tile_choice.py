"""Default tiling: tiles as large as the memory budget allows, seams overlapping by the
network's border effect (deepscem.inference.tile_choice)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepscem.config import PredictConfig
from deepscem.inference.tile_choice import auto_grid, auto_tile, seam_margin
from deepscem.inference.tiling import make_grid


def computed_ratio(shape, tile, overlap, multiple):
    grid = make_grid(shape, tile, overlap, multiple)
    return len(grid) * math.prod(grid.tile_shape) / math.prod(shape)


def test_worked_example_1024_slices():
    tile, overlap = auto_tile((1, 1024, 1024), (1, 16, 16), 32, 600_000)
    assert tile == (1, 544, 1024) and overlap == pytest.approx(64 / 544)
    assert computed_ratio((10, 1024, 1024), tile, overlap, (1, 16, 16)) < 1.1
    assert computed_ratio((10, 1024, 1024), (1, 512, 512), 0.25, (1, 16, 16)) > 2


def test_a_slice_that_fits_is_one_tile_without_overlap():
    assert auto_tile((1, 512, 640), (1, 16, 16), 32, 600_000) == ((1, 512, 640), 0.0)
    assert auto_tile((1, 100, 70), (1, 16, 16), 32, 600_000) == ((1, 112, 80), 0.0)


@pytest.mark.parametrize("shape, multiple, budget", [((1, 5000, 3000), (1, 16, 16), 300_000),
                                                     ((40, 700, 900), (16, 16, 16), 2_000_000),
                                                     ((1, 64, 20000), (1, 16, 16), 300_000)])
def test_tiles_respect_the_budget_and_every_seam_overlaps_two_margins(shape, multiple, budget):
    margin = 32
    tile, overlap = auto_tile(shape, multiple, margin, budget)
    assert math.prod(tile) <= budget and all(t % m == 0 for t, m in zip(tile, multiple))
    grid = make_grid(shape, tile, overlap, multiple)
    for axis in (0, 1, 2):
        starts = np.array(grid.origins[axis])
        if len(starts) > 1:  # neighbours share >= 2 margins
            assert (grid.tile_shape[axis] - np.diff(starts) >= 2 * margin).all()


def test_default_takes_whole_slices_that_fit_and_lowers_the_batch():
    from deepscem.inference.tile_choice import auto_batch

    config = PredictConfig(batch_size=4)
    tile, overlap = auto_grid((7, 1024, 1280), (1, 512, 512), (1, 16, 16), config)
    assert tile == (1, 1024, 1280) and overlap == 0.0 and auto_batch(tile, config) == 1
    tile, _ = auto_grid((7, 512, 640), (1, 512, 512), (1, 16, 16), config)
    assert auto_batch(tile, config) == 4


def test_auto_grid_keeps_a_given_tile_and_sizes_only_the_overlap():
    config = PredictConfig(patch=(1, 256, 256))
    assert auto_grid((3, 1000, 200), (1, 256, 256), (1, 16, 16), config) == \
        ((1, 256, 256), 2 * seam_margin(16) / 256)
    assert seam_margin(16) == 64


def test_default_prediction_reproduces_an_identity_model(monkeypatch):
    keras = pytest.importorskip("keras")
    from deepscem.inference import tile_choice
    from deepscem.inference.predictor import Predictor

    # a budget of ~6000 voxels per tile, so that the small volume is tiled
    monkeypatch.setattr(tile_choice, "BATCH_BYTES", 32 * 16 * 6000)
    inputs = keras.Input((None, None, 1))
    conv = keras.layers.Conv2D(1, 1, kernel_initializer="ones", bias_initializer="zeros")
    model = keras.Model(inputs, conv(inputs))
    volume = np.random.default_rng(0).random((2, 300, 90)).astype(np.float32)
    from deepscem.config import UNetConfig
    from deepscem.models.storage import ModelInfo

    info = ModelInfo(dimension=2, outputs=1, unet=UNetConfig(depth=2, activation="linear"))
    predictor = Predictor(model, info, PredictConfig(batch_size=2))
    predictor.tile = (1, 16, 16)
    grid = predictor.grid(volume.shape)
    assert len(grid.origins[1]) > 1 and math.prod(grid.tile_shape) <= 6000
    out = np.zeros(volume.shape, np.float32)
    predictor.predict_volume(lambda r: volume[r], volume.shape, [out])
    np.testing.assert_allclose(out, volume, atol=1e-5)
