"""A newcomer's two commands: predict a folder of TIFF slices into an OME-Zarr, then open it
in the GUI (read-only: the image with the prediction as a layer)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from deepscem import cli
from deepscem.dataset import Dataset
from deepscem.errors import DatasetError

pytest_plugins = ["gui_fixtures"]
keras = pytest.importorskip("keras")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def predicted(tmp_path) -> Path:
    """Command 1: run.py predict MODEL slices/ cells.ome.zarr --threshold 0.5."""
    from synthetic_data import synthetic_volume
    from training_data import tiny_unet

    from deepscem.models.storage import save_model

    model, info = tiny_unet(dim=2, outputs=1, depth=1, filters=2)
    model_path = save_model(model, tmp_path / "tiny.keras", info)
    image, _ = synthetic_volume((5, 32, 40), seed=3)
    slices = tmp_path / "slices"
    slices.mkdir()
    for z in range(len(image)):
        tifffile.imwrite(slices / f"slice_{z}.tif", image[z])
    out = tmp_path / "cells.ome.zarr"
    assert cli.main(["predict", str(model_path), str(slices), str(out), "--threshold", "0.5"]) == 0
    return out


def test_the_gui_shows_an_ome_zarr_prediction_read_only(window, predicted):
    window.dataset_actions.load_or_report(predicted)
    summary = window.tree.summaries[predicted]
    assert summary.samples == {"slices": ((5, 32, 40), ["image", "prediction_0000"])}
    window.tree.select(predicted, "slices")
    assert window.view.showing(predicted, "slices")
    window.view.set_layers(["image", "prediction_0000"])
    planes = window.view._read((slice(2, 3), slice(None), slice(None)))
    assert planes["prediction_0000"].dtype == np.uint8 and planes["image"].shape == (1, 32, 40)
    with pytest.raises(DatasetError, match="read-only"):
        Dataset.open(predicted, "r+")


def test_gui_command_opens_the_window_with_the_file(predicted):
    """Command 2: run.py gui cells.ome.zarr (the window shows, loads it and quits here)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", DEEPSCEM_GUI_QUIT_AFTER_SHOW="1")
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "gui", str(predicted)],
                            env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "time-to-window" in result.stdout
