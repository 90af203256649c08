"""Shared fixtures: synthetic volumes, the --runslow switch, the ../shared data location."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from synthetic_data import synthetic_volume  # noqa: F401  (re-exported for fixtures' users)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# converted models (ONNX) of the test run go to a private folder, not the user's cache; the
# folder is removed when the run ends (one was left in /tmp per run before)
if "DEEPSCEM_CACHE" not in os.environ:
    os.environ["DEEPSCEM_CACHE"] = tempfile.mkdtemp(prefix="deepscem-test-cache-")
    atexit.register(shutil.rmtree, os.environ["DEEPSCEM_CACHE"], ignore_errors=True)
# bioimage.io validation checks URLs (DOIs, git repo) over the network unless told not to
os.environ.setdefault("BIOIMAGEIO_PERFORM_IO_CHECKS", "false")

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
