"""Model > Export writes a bioimage.io package; the package loads back as a model that
predicts (not trains); the Predict dialog offers the engines and an "auto" overlap."""

from __future__ import annotations

import zipfile

import pytest
from gui_helpers import wait_worker
from PyQt5.QtWidgets import QFileDialog

from deepscem.config import PredictConfig, UNetConfig
from deepscem.errors import ModelError
from ui.dialogs.model_dialogs import PredictDialog, PredictRequest

pytest_plugins = ["gui_fixtures"]
pytest.importorskip("bioimageio.spec")
pytest.importorskip("onnxruntime")

TINY = UNetConfig(filters=2, depth=2, blocks_per_level=1, outputs=1, name="tiny")


def test_export_then_load_the_package_and_predict(window, qtbot, messages, monkeypatch,
                                                 tiny_dataset, tmp_path):
    window.dataset_actions.load(tiny_dataset)
    window.model_actions.create(TINY)
    wait_worker(qtbot, window.tasks.active[-1])
    package = tmp_path / "tiny.zip"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(package), ""))
    window.model_actions.export_clicked()
    wait_worker(qtbot, window.tasks.active[-1], timeout=120000)
    assert not messages.shown, messages.texts()
    assert "rdf.yaml" in zipfile.ZipFile(package).namelist()

    window.model_actions.load(package)
    wait_worker(qtbot, window.tasks.active[-1])
    entry = window.models.current_entry()  # the package, just added
    assert entry.path == package and not hasattr(entry.model, "count_params")
    out = tmp_path / "pred.hdf5"
    req = PredictRequest(entry.name, tiny_dataset, out, PredictConfig(batch_size=2))
    window.model_actions.predict(req)
    wait_worker(qtbot, window.tasks.active[-1], timeout=120000)
    assert not messages.shown, messages.texts()
    assert out.is_file()
    with pytest.raises(ModelError, match="imported bioimage.io package"):
        window.model_actions.export(entry.name, tmp_path / "again.zip")


def test_predict_dialog_offers_engines_and_auto_overlap(qtbot, tiny_dataset, tmp_path):
    dialog = PredictDialog(["m"], [], "m", None)
    qtbot.addWidget(dialog)
    engines = [dialog.engine.itemText(i) for i in range(dialog.engine.count())]
    assert engines == ["auto", "keras", "onnxruntime", "openvino"]
    assert dialog.overlap.text() == "auto"
