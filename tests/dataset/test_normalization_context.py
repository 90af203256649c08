"""Robust intensity normalisation and 2.5D slice context (deepscem.dataset.normalization/context)."""

import numpy as np
import pytest
from training_data import write_dataset

from deepscem.dataset import Dataset
from deepscem.dataset.context import context_indices, context_reader, read_with_context, reflect_index
from deepscem.dataset.normalization import (
    canonical,
    image_reader,
    intensity_range,
    parse,
    percentile_range,
    scale,
    streamed_range,
)
from deepscem.errors import ConfigError


def test_parse_and_canonical_spellings():
    assert parse(None) == ("minmax", 0.0, 100.0) and parse("MinMax") == ("minmax", 0.0, 100.0)
    assert parse("percentile 1 99") == ("percentile", 1.0, 99.0)
    assert parse("percentile") == ("percentile", 0.5, 99.5)
    assert canonical("percentile 0.50, 99.5") == "percentile 0.5 99.5"
    for bad in ("percentile 99 1", "zscore", "percentile a b", "percentile 0 101"):
        with pytest.raises(ConfigError, match="percentile LOW HIGH"):
            parse(bad)


def _volume_with_outliers(rng, shape=(40, 64, 64)):
    image = rng.integers(90, 151, shape).astype(np.uint8)  # tissue: 90..150
    image[:, :2] = 0          # a black border (3 % of the voxels)
    image[5, 10, 10] = 255    # one bright speck
    return image


def test_percentiles_ignore_the_extreme_voxels(tmp_path, rng):
    image = _volume_with_outliers(rng)
    path = write_dataset(tmp_path / "o.hdf5", {"s": (image, [np.zeros(image.shape, np.uint8)])})
    with Dataset.open(path) as ds:
        sample = ds.sample("s")
        assert sample.image_range == (0.0, 255.0)  # min/max: decided by border and speck
        lo, hi = percentile_range(sample, 5.0, 99.5)
        assert 90 <= lo <= 93 and 148 <= hi <= 150
        # the exact histogram agrees with NumPy on the slices it reads (all 32 of them here)
        zs = np.unique(np.linspace(0, 39, 32).round().astype(int))
        ref = np.percentile(image[zs], [5.0, 99.5], method="inverted_cdf")
        assert abs(lo - ref[0]) <= 1 and abs(hi - ref[1]) <= 1
        read = image_reader(sample, "percentile 5 99.5")
        out = read((slice(0, 2), slice(0, 64), slice(0, 64)))
        assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
        tissue = out[:, 2:]
        assert tissue.std() > 2 * sample.read_image((slice(0, 2),))[:, 2:].std()  # more contrast
        assert intensity_range(sample, "minmax") == (0.0, 255.0)
        assert image_reader(sample, "minmax") == sample.read_image


def test_percentiles_of_float_and_constant_images(tmp_path, rng):
    image = rng.normal(0.0, 1.0, (6, 128, 128)).astype(np.float32)
    image[0, 0, 0] = 1e6
    constant = np.full((2, 8, 8), 7, np.uint8)
    path = write_dataset(tmp_path / "f.hdf5", {"f": (image, [np.zeros(image.shape, np.uint8)]),
                                              "c": (constant, [np.zeros(constant.shape, np.uint8)])})
    with Dataset.open(path) as ds:
        lo, hi = intensity_range(ds.sample("f"), "percentile 1 99")
        assert -2.6 < lo < -2.0 and 2.0 < hi < 2.6  # normal 1 / 99 % points: -+2.33
        constant = image_reader(ds.sample("c"), "percentile 0.5 99.5")(None)
        assert constant.shape == (2, 8, 8) and not constant.any() and np.isfinite(constant).all()
    assert not scale(np.full(3, 5.0), 5.0, 5.0).any()
    assert np.array_equal(scale(np.array([np.nan, 0.0, 10.0, 20.0]), 0.0, 10.0), [0.0, 0.0, 1.0, 1.0])


def test_reflect_index_and_context_indices():
    assert [reflect_index(z, 5) for z in (-2, -1, 0, 4, 5, 6)] == [2, 1, 0, 4, 3, 2]
    assert context_indices(0, 2, 5) == [2, 1, 0, 1, 2]
    assert context_indices(4, 2, 5) == [2, 3, 4, 3, 2]
    assert context_indices(2, 1, 5) == [1, 2, 3]
    assert context_indices(0, 2, 1) == [0] * 5
    assert context_indices(0, 2, 2) == [0, 1, 0, 1, 0]  # thinner than the context: keeps mirroring


def test_read_with_context_reads_once_and_mirrors_the_edges():
    volume = np.arange(5)[:, None, None] * np.ones((1, 3, 4))
    calls = []

    def read(region):
        calls.append(region)
        return volume[region]

    out = read_with_context(read, (slice(0, 1), slice(0, 3), slice(1, 3)), 2, 5)
    assert out.shape == (5, 3, 2) and list(out[:, 0, 0]) == [2, 1, 0, 1, 2] and len(calls) == 1
    out = context_reader(read, 1, 5)((slice(4, 5), slice(None), slice(None)))
    assert list(out[:, 0, 0]) == [3, 4, 3]
    assert context_reader(read, 0, 5) is read
    with pytest.raises(ValueError, match="one slice"):
        read_with_context(read, (slice(0, 2), slice(None), slice(None)), 1, 5)


def test_streamed_range_skips_nan_and_inf_and_reports_every_slab():
    volume = np.arange(5 * 4 * 4, dtype=np.float32).reshape(5, 4, 4)
    volume[0, 0, 0], volume[4, 3, 3] = np.nan, np.inf
    seen = []
    lo, hi = streamed_range(lambda z0, z1: volume[z0:z1], 5, 2,
                            progress=lambda p: seen.append((p.done, p.total)))
    assert (lo, hi) == (1.0, float(volume[4, 3, 2]))
    assert seen == [(2, 5), (4, 5), (5, 5)]
    assert streamed_range(lambda z0, z1: np.full((z1 - z0, 2, 2), np.nan, np.float32), 3, 2) == (0.0, 0.0)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("lo, hi", [(20.0, 230.0), (-50.0, 60.0), (3.5, 7.25), (-128.0, 255.0)])
def test_scale_of_8_bit_images_by_table_equals_the_arithmetic(dtype, lo, hi, rng):
    info = np.iinfo(dtype)
    raw = rng.integers(info.min, info.max + 1, size=(2, 30, 40)).astype(dtype)
    raw.flat[:256] = np.arange(256, dtype=np.uint8).view(dtype)  # every grey value
    expected = np.clip((raw.astype(np.float32) - np.float32(lo)) / np.float32(hi - lo), 0, 1)
    out = scale(raw, lo, hi)  # > 256 voxels: the table
    assert out.dtype == np.float32 and out.shape == raw.shape
    assert np.array_equal(out, expected)
    assert np.array_equal(scale(raw[0, :4, :4], lo, hi), expected[0, :4, :4])  # small: arithmetic
    assert np.array_equal(scale(raw[:, ::3, ::-2], lo, hi), expected[:, ::3, ::-2])  # strided view
