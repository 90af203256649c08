"""Predicting a volume of any form replays the model's recorded normalisation, as
predict_dataset does: a percentile model gets this volume's percentiles, not its min/max."""

from __future__ import annotations

import numpy as np

from deepscem.dataset import Dataset, normalization, volumes
from deepscem.dataset.imageio import write_tiff
from deepscem.inference.volume_job import model_range


def test_percentile_range_of_a_tiff_equals_the_dataset_samples(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (5, 40, 50)).astype(np.uint8)
    image[0, 0, 0], image[-1, -1, -1] = 0, 255   # extreme voxels the percentiles ignore
    write_tiff(tmp_path / "v.tif", image)
    with Dataset.create(tmp_path / "d.hdf5", "d", 0) as ds:
        ds.add_sample("s", image, [])
    method = "percentile 2 98"
    source = volumes.open_volume(str(tmp_path / "v.tif"))
    try:
        got = model_range(method, source)
    finally:
        source.close()
    with Dataset.open(tmp_path / "d.hdf5") as ds:
        expected = normalization.intensity_range(ds.sample("s"), method)
    assert got == expected and 0 < got[0] < got[1] < 255
    assert model_range("minmax", None) is None and model_range(None, None) is None
