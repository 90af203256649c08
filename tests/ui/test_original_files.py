"""Files written by the original DeepSCEM (../shared/data/original-format) open in the GUI:
its dataset and predictions show as overlays, evaluate, and its Keras 2 models load."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import wait_worker

from ui.dialogs.model_dialogs import EvaluateRequest

pytest_plugins = ["gui_fixtures"]


def test_original_dataset_and_prediction_in_the_view_and_evaluated(window, qtbot, messages, shared_data):
    folder = shared_data / "original-format"
    dataset, prediction = folder / "orig_dataset.hdf5", folder / "orig_pred_2d_overlap_256_float.hdf5"
    window.dataset_actions.load(dataset)
    window.dataset_actions.load(prediction)
    assert set(window.tree.summaries[dataset].samples) == {"s2d", "s3d"}
    window.tree.select(prediction, "s3d")
    window.tree.set_checked(prediction, "s3d", "prediction_0000", True)
    plane = window.view._plane
    assert plane["image"].dtype == np.float32 and plane["prediction_0000"].dtype == np.float32
    assert window.view.current_rgb().shape[:2] == plane["image"].shape
    window.tree.select(dataset, "s2d")  # a 2D sample (Z = 1): no Z slider
    assert not window.view.z_slider.isEnabled() and window.view.source.shape[0] == 1

    wait_worker(qtbot, window.model_actions.evaluate(EvaluateRequest(dataset, prediction, 0.5)))
    assert not messages.shown, messages.texts()
    table = window.model_actions.result_dialogs[-1].table
    samples = {table.item(r, 0).text() for r in range(table.rowCount())} | \
              {table.item(r, 1).text() for r in range(table.rowCount())}
    assert {"s2d", "s3d"} <= samples


def test_original_keras2_model_loads_into_the_list(window, qtbot, messages, shared_data):
    pytest.importorskip("deepscem.models.storage")
    path = shared_data / "original-format" / "orig_unet2d_res_f8_d3_o2_trained.h5"
    wait_worker(qtbot, window.model_actions.load(path), timeout=120000)
    assert not messages.shown, messages.texts()
    entry = window.models.current_entry()
    assert entry.saved and entry.info.dimension == 2 and entry.info.outputs == 2
