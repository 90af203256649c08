"""Shared fixtures: synthetic volumes, the --runslow switch, the ../shared data location."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = Path(os.environ.get("DEEPSCEM_SHARED_DATA")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "data")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` next to the checkout; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def synthetic_volume(shape=(4, 32, 40), dtype=np.uint8, seed=0):
    """A grey volume with bright blobs, and the blobs' binary mask (uint8 {0,1})."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    mask = np.zeros(shape, bool)
    for _ in range(3):
        c = [rng.uniform(0, s) for s in shape]
        r = rng.uniform(3, max(4, min(shape[1:]) / 4))
        mask |= ((z - c[0]) ** 2 * 4 + (y - c[1]) ** 2 + (x - c[2]) ** 2) < r**2
    image = 60 + 120 * mask + rng.normal(0, 10, shape)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        image = np.clip(image, info.min, info.max)
    return image.astype(dtype), mask.astype(np.uint8)
