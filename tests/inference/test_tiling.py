import numpy as np
import pytest

from deepscem.errors import ConfigError
from deepscem.inference.tiling import (
    BlendingAccumulator,
    batched,
    fit_tile_shape,
    iter_tiles,
    make_grid,
    tile_origins,
    window_1d,
)


@pytest.mark.parametrize("size, tile, overlap, expected", [
    (110, 64, 0.5, [0, 23, 46]),
    (128, 64, 0.0, [0, 64]),
    (130, 64, 0.0, [0, 33, 66]),
    (40, 64, 0.5, [0]),
    (64, 64, 0.25, [0]),
    (1, 1, 0.0, [0]),
    (5, 1, 0.5, [0, 1, 2, 3, 4]),
])
def test_tile_origins_worked_examples(size, tile, overlap, expected):
    assert tile_origins(size, tile, overlap) == expected


@pytest.mark.parametrize("size", [1, 7, 63, 64, 65, 110, 300])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.9])
def test_tiles_cover_the_axis_with_the_requested_overlap(size, overlap):
    tile = 64
    origins = tile_origins(size, tile, overlap)
    covered = np.zeros(max(size, tile), bool)
    for o in origins:
        covered[o:o + tile] = True
    assert covered[:size].all()
    if size >= tile:
        assert origins[-1] + tile == size
        steps = np.diff(origins)
        assert (steps <= tile * (1 - overlap) + 1e-9).all() and (steps >= 1).all()


def test_bad_overlap_and_sizes_are_config_errors():
    with pytest.raises(ConfigError):
        tile_origins(10, 4, 1.0)
    with pytest.raises(ConfigError):
        tile_origins(0, 4, 0.0)
    with pytest.raises(ConfigError):
        make_grid((4, 4, 4), (2, 2, 2), window="triangle")


def test_fit_tile_shape_rounds_to_the_network_multiple():
    assert fit_tile_shape((1, 96, 300), (1, 256, 256), (1, 16, 16)) == (1, 96, 256)
    assert fit_tile_shape((5, 40, 40), (32, 64, 64), (4, 4, 4)) == (8, 40, 40)
    assert fit_tile_shape((100, 100, 100), (30, 50, 70), (8, 8, 8)) == (32, 56, 72)


@pytest.mark.parametrize("kind", ["cosine", "gaussian", "flat"])
def test_window_is_positive_with_peak_one(kind):
    w = window_1d(33, kind)
    assert w.min() > 0 and np.isclose(w.max(), 1.0)
    assert np.allclose(w, w[::-1])


@pytest.mark.parametrize("shape, tile, multiple", [
    ((3, 50, 70), (1, 32, 32), (1, 8, 8)),
    ((9, 20, 33), (4, 16, 16), (4, 4, 4)),
    ((1, 10, 10), (8, 64, 64), (4, 16, 16)),
])
def test_weight_sums_equal_brute_force_accumulation(shape, tile, multiple):
    grid = make_grid(shape, tile, overlap=0.5, multiple=multiple)
    window = grid.window()
    brute = np.zeros([max(s, t) + t for s, t in zip(shape, grid.tile_shape)])
    for t in grid:
        z, y, x = t.origin
        tz, ty, tx = grid.tile_shape
        brute[z:z + tz, y:y + ty, x:x + tx] += window
    sz, sy, sx = grid.weight_sums()
    outer = sz[:, None, None] * sy[None, :, None] * sx[None, None, :]
    brute = brute[:shape[0], :shape[1], :shape[2]]
    assert np.allclose(outer, brute, rtol=1e-6)
    assert outer.min() > 0


@pytest.mark.parametrize("shape, tile, multiple, overlap", [
    ((3, 50, 70), (1, 32, 32), (1, 8, 8), 0.5),    # 2D model on a stack, not multiples
    ((9, 20, 33), (4, 16, 16), (4, 4, 4), 0.25),   # 3D tiles, not multiples
    ((1, 10, 13), (8, 64, 64), (4, 16, 16), 0.5),  # tile larger than the volume, Z = 1
    ((2, 64, 64), (1, 64, 64), (1, 16, 16), 0.0),  # exact fit, no overlap
])
@pytest.mark.parametrize("window", ["cosine", "gaussian"])
def test_identity_through_tiles_and_blending_reproduces_the_volume(shape, tile, multiple,
                                                                   overlap, window):
    rng = np.random.default_rng(1)
    volume = rng.random(shape, dtype=np.float32)
    grid = make_grid(shape, tile, overlap=overlap, multiple=multiple, window=window)
    acc = BlendingAccumulator(grid, channels=2)
    out = np.full(shape + (2,), np.nan, np.float32)
    blocks = []
    for batch in batched(iter_tiles(lambda r: volume[r], grid), 3):
        for t, data in batch:
            assert data.shape == grid.tile_shape
            blocks += acc.add(t, np.stack([data, 1 - data], axis=-1))
    blocks += acc.finish()
    for z0, block in blocks:
        out[z0:z0 + len(block)] = block
    assert [z0 for z0, _ in blocks] == sorted(z0 for z0, _ in blocks)
    np.testing.assert_allclose(out[..., 0], volume, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(out[..., 1], 1 - volume, rtol=2e-6, atol=1e-6)


def test_padding_mirrors_the_volume():
    volume = np.arange(5, dtype=np.float32).reshape(1, 1, 5)
    grid = make_grid(volume.shape, (1, 1, 8), multiple=(1, 1, 8))
    (tile, data), = list(iter_tiles(lambda r: volume[r], grid))
    assert tile.pad == (0, 0, 3)
    assert data[0, 0].tolist() == [0, 1, 2, 3, 4, 3, 2, 1]
