"""The Objects panel: label, measure, jump to an object, proofread (split, merge, delete,
relabel, undo) written into the dataset, instance colours in the view."""

from __future__ import annotations

import numpy as np
from gui_fixtures import layer_pixels
from instance_shapes import two_touching_spheres
from PyQt5.QtWidgets import QInputDialog

from deepscem.dataset import Dataset
from ui.render import colour_instances, instance_colours

pytest_plugins = ["gui_fixtures"]


def spheres_dataset(tmp_path):
    ids = two_touching_spheres(shape=(20, 32, 48), radius=7, gap=12)
    path = tmp_path / "cells.hdf5"
    with Dataset.create(path, "cells", 1) as ds:
        ds.add_sample("s", np.where(ids > 0, 200, 50).astype(np.uint8),
                      [(ids > 0).astype(np.uint8)], voxel_size=(10, 5, 5))
    return path, ids


def measured(qtbot, panel, action):
    with qtbot.waitSignal(panel.measured, timeout=30000) as blocker:
        action()
    return blocker.args[0]


def test_instance_colours_are_distinct_and_stable():
    colours = instance_colours(np.arange(1, 200))
    assert len({tuple(c) for c in colours}) == 199
    assert np.array_equal(instance_colours(np.array([7])), instance_colours(np.array([7])))
    rgb = np.zeros((3, 3, 3), np.uint8)
    ids = np.array([[0, 1, 1], [0, 1, 1], [2, 2, 2]], np.uint32)
    colour_instances(rgb, ids, 0.5, highlight=1)
    assert (rgb[0, 0] == 0).all() and not (rgb[2, 0] == rgb[0, 1]).all()


def test_label_measure_jump_and_proofread(window, qtbot, tmp_path, messages, monkeypatch):
    path, truth = spheres_dataset(tmp_path)
    panel = window.objects
    window.objects_dock.show()
    window.tree.add_dataset(path)
    window.tree.select(path, "s")
    assert panel.layer is None and "Label objects" in panel.status.text()
    # Label objects: connected components keep the touching spheres together
    assert measured(qtbot, panel, panel.buttons["label"].click) == 1
    assert panel.layer == "instance_0000" and panel.table.unit == "nm"
    row = panel.table.rows[1]
    assert row["volume"] == np.count_nonzero(truth) * 250
    # click the row: the view jumps to the object's middle slice and highlights it
    window.view.set_z(0)
    panel.table.itemClicked.emit(panel.table.item(0, 0))
    assert window.view.z == 10 and window.view.highlight == 1
    assert "instance_0000" in window.tree.checked_layers(path, "s")
    # split by two clicks inside the object, at the sphere centres
    xs = [int(np.flatnonzero(truth[10, 16] == k).mean()) for k in (1, 2)]
    panel.buttons["split"].click()
    window.view.canvas.clicked.emit(16, xs[0])
    assert measured(qtbot, panel, lambda: window.view.canvas.clicked.emit(16, xs[1])) == 2
    stored = layer_pixels(path, "s", "instance_0000")
    first, second = (np.bincount(stored[truth == k]).argmax() for k in (1, 2))
    assert first != second and np.mean(stored[truth == 1] == first) > 0.95
    assert np.mean(stored[truth == 2] == second) > 0.95
    qtbot.waitUntil(lambda: not window.view.loading, timeout=10000)
    rgb = window.view.current_rgb()
    assert not (rgb[16, xs[0]] == rgb[16, xs[1]]).all()  # two objects, two colours
    # merge the two (select both rows), undo it, delete one, relabel the other
    panel.table.selectAll()
    assert measured(qtbot, panel, panel.buttons["merge"].click) == 1
    assert measured(qtbot, panel, panel.buttons["undo"].click) == 2
    panel.table.clearSelection()
    panel.table.select_id(2)
    assert measured(qtbot, panel, panel.buttons["delete"].click) == 1
    assert not (layer_pixels(path, "s", "instance_0000") == 2).any()
    panel.table.select_id(1)
    monkeypatch.setattr(QInputDialog, "getInt", staticmethod(lambda *a, **k: (9, True)))
    assert measured(qtbot, panel, panel.buttons["relabel"].click) == 1
    assert set(np.unique(layer_pixels(path, "s", "instance_0000"))) == {0, 9}
    for _ in range(2):  # undo relabel and delete: the split result is back
        measured(qtbot, panel, panel.buttons["undo"].click)
    assert np.array_equal(layer_pixels(path, "s", "instance_0000"), stored)
    out = panel.export_csv(tmp_path / "objects.csv")
    assert out.read_text().count("\n") == 3  # header + 2 objects
    # nothing selected: a message box, not a crash
    panel.table.clearSelection()
    panel.buttons["delete"].click()
    assert "select one object" in messages.texts()
