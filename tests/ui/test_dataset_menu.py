"""The Data menu's dataset operations through the real core: rename, label names, distance
transform, export; each reached from its menu entry (dialogs answered by patching ``ask``)."""

from __future__ import annotations

import numpy as np
from gui_helpers import wait_worker
from PyQt5.QtWidgets import QFileDialog, QInputDialog

from deepscem.dataset import Dataset
from ui.dialogs import dataset_dialogs

pytest_plugins = ["gui_fixtures"]


def _action(window, text):
    for action in window.findChildren(type(window.menuBar().actions()[0])):
        if action.text().replace("&", "").rstrip(".") == text:
            return action
    raise KeyError(text)


def test_rename_sample_keeps_the_tree_and_view_consistent(window, monkeypatch, tiny_dataset):
    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset, "s0")
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("renamed", True)))
    _action(window, "Rename sample").trigger()
    assert list(window.tree.summaries[tiny_dataset].samples) == ["renamed", "s1"]
    with Dataset.open(tiny_dataset) as ds:
        assert ds.sample_names() == ["renamed", "s1"]


def test_label_names_show_in_the_tree(window, monkeypatch, tiny_dataset):
    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset)
    monkeypatch.setattr(dataset_dialogs.AliasesDialog, "ask", lambda self: ["mito"])
    _action(window, "Label names").trigger()
    assert window.tree.summaries[tiny_dataset].aliases == ["mito"]
    window.tree.select(tiny_dataset, "s0")
    item = window.tree.currentItem()
    texts = [item.child(i).text(0) for i in range(item.childCount())]
    assert "label_0000 (mito)" in texts


def test_distance_transform_adds_a_checked_layer(window, qtbot, monkeypatch, tiny_dataset):
    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset, "s0")
    req = dataset_dialogs.DistanceRequest(tiny_dataset, "s0", 0, 5.0, (1.0, 1.0, 1.0), False)
    monkeypatch.setattr(dataset_dialogs.DistanceDialog, "ask", lambda self: req)
    _action(window, "Distance transform").trigger()
    wait_worker(qtbot, window.tasks.active[-1])
    assert "label_0000_dt" in window.tree.checked_layers(tiny_dataset, "s0")
    dt = window.view._plane["label_0000_dt"]
    with Dataset.open(tiny_dataset) as ds:
        label = ds.sample("s0").read_layer("label_0000")[window.view.z]
    assert dt.dtype == np.float32 and (dt[label > 0] > 0).all() and (dt[label == 0] <= 0).all()


def test_export_sample_to_tiff(window, qtbot, monkeypatch, tiny_dataset, tmp_path):
    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset, "s1")
    out = tmp_path / "export"
    out.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(out)))
    _action(window, "Export sample as TIFF").trigger()
    wait_worker(qtbot, window.tasks.active[-1])
    assert sorted(p.suffix for p in out.iterdir()) == [".tif", ".tif"]


def test_safe_mode_off_unlocks_the_model_outputs(qtbot, tiny_dataset):
    from ui.main_window import MainWindow

    safe, unsafe = MainWindow(safe=True), MainWindow(safe=False)
    for win in (safe, unsafe):
        qtbot.addWidget(win)
        win.dataset_actions.load(tiny_dataset)
    assert safe.locked_outputs() == 1 and unsafe.locked_outputs() is None
    assert "safe mode off" in unsafe.windowTitle()
