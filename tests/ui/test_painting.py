"""Painting in the viewer on the real widgets (pytest-qt), with the HDF5 content checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gui_fixtures import layer_pixels
from gui_helpers import wait_worker
from PyQt5.QtCore import QEvent, QPoint, QPointF, Qt
from PyQt5.QtGui import QMouseEvent, QWheelEvent
from PyQt5.QtWidgets import QApplication

from deepscem.dataset import Dataset
from deepscem.dataset.layers import ANNOTATED
from ui.annotation.prediction_dialog import UsePrediction, prediction_refs, use_prediction
from ui.annotation.shortcuts import shortcut_rows

pytest_plugins = ["gui_fixtures"]


@pytest.fixture
def blank(tmp_path) -> Path:
    """A (4, 48, 64) sample added without labels (to be painted: nothing annotated yet), and a
    prediction of it."""
    path = tmp_path / "paint.hdf5"
    image = (np.arange(4 * 48 * 64) % 251).astype(np.uint8).reshape(4, 48, 64)
    with Dataset.create(path, "paint", 1) as ds:
        ds.add_sample("s", image, [])
        ds.sample("s").create_layer("prediction_0000", np.float32)[...] = \
            np.linspace(0, 1, 64, dtype=np.float32)[None, None, :]
    return path


def _show(window, qtbot, path):
    window.dataset_actions.load(path)
    window.tree.select(path, "s")
    qtbot.waitUntil(lambda: window.view.source is not None and not window.view.loading)
    return window.view


def _at(canvas, row, col) -> QPoint:
    return canvas.mapFromScene(QPointF(col + 0.5, row + 0.5))


def _drag(qtbot, canvas, points):
    port = canvas.viewport()
    qtbot.mousePress(port, Qt.LeftButton, pos=_at(canvas, *points[0]))
    for point in points[1:]:  # (QTest's mouseMove carries no button on every platform)
        QApplication.sendEvent(port, QMouseEvent(QEvent.MouseMove, QPointF(_at(canvas, *point)),
                                                 Qt.LeftButton, Qt.LeftButton, Qt.NoModifier))
    qtbot.mouseRelease(port, Qt.LeftButton, pos=_at(canvas, *points[-1]))


def _settle(qtbot, view):
    qtbot.waitUntil(lambda: not view.loading)


def test_brush_eraser_undo_redo_write_the_file(window, qtbot, blank):
    view = _show(window, qtbot, blank)
    painter = window.painter
    painter.set_tool("brush")  # ticks label_0000 so the stroke is seen
    _settle(qtbot, view)
    assert "label_0000" in view.source.layers
    painter.set_size(5)
    z = view.z
    _drag(qtbot, view.canvas, [(20, 10), (20, 30)])
    label = layer_pixels(blank, "s", "label_0000")
    assert label[z, 20, 10:31].all() and label[z, 18:23, 20].all() and label.sum() > 100
    assert label[z, 26].sum() == 0 and label[z ^ 1].sum() == 0
    annotated = layer_pixels(blank, "s", ANNOTATED)
    np.testing.assert_array_equal(annotated, label)  # a blank sample: only painted voxels annotated
    assert view.canvas.rgb[20, 20].tolist() != view.canvas.rgb[30, 20].tolist()  # drawn at once
    painter.set_tool("eraser")
    painter.set_size(3)
    _drag(qtbot, view.canvas, [(20, 20), (20, 20)])
    after = layer_pixels(blank, "s", "label_0000")
    assert after[z, 20, 20] == 0 and after[z, 20, 19:22].sum() == 0 and after.sum() < label.sum()
    assert layer_pixels(blank, "s", ANNOTATED)[z, 20, 20] == 1  # erased = background checked
    window.paint_toolbar.undo.trigger()
    np.testing.assert_array_equal(layer_pixels(blank, "s", "label_0000"), label)
    window.paint_toolbar.undo.trigger()
    assert layer_pixels(blank, "s", "label_0000").sum() == 0
    window.paint_toolbar.redo.trigger()
    np.testing.assert_array_equal(layer_pixels(blank, "s", "label_0000"), label)
    # the view re-reads in the background: wait for the redone stroke to show
    qtbot.waitUntil(lambda: not view.loading and view._plane["label_0000"][20, 20] == 1)
    assert ANNOTATED in window.tree.summaries[blank].samples["s"][1]


def test_fill_and_marks(window, qtbot, blank):
    view = _show(window, qtbot, blank)
    painter = window.painter
    painter.set_tool("brush")
    _settle(qtbot, view)
    painter.set_size(1)
    z = view.z
    ring = [(10, 10), (10, 30), (30, 30), (30, 10), (10, 10)]
    _drag(qtbot, view.canvas, ring)
    _settle(qtbot, view)
    painter.set_tool("fill")
    _drag(qtbot, view.canvas, [(20, 20)])
    label = layer_pixels(blank, "s", "label_0000")
    assert label[z, 10:31, 10:31].all() and label.sum() == 21 * 21
    assert layer_pixels(blank, "s", ANNOTATED)[z, 10:31, 10:31].all()
    painter.set_tool("rect")
    _drag(qtbot, view.canvas, [(40, 40), (44, 50)])
    annotated = layer_pixels(blank, "s", ANNOTATED)
    assert annotated[z, 40:45, 40:51].all() and annotated[z].sum() == 21 * 21 + 5 * 11
    window.paint_toolbar.mark_slice.trigger()
    assert layer_pixels(blank, "s", ANNOTATED)[z].all()
    assert layer_pixels(blank, "s", ANNOTATED).sum() == 48 * 64  # only that slice


def test_painting_in_the_xz_plane_and_navigating_there(window, qtbot, blank):
    view = _show(window, qtbot, blank)
    view.ortho_box.setChecked(True)
    view._place_cross(12, 30)
    _settle(qtbot, view)
    qtbot.mouseClick(view.xz_canvas.viewport(), Qt.LeftButton, pos=_at(view.xz_canvas, 1, 40))
    assert view.z == 1 and view.cross == (12, 40)
    _settle(qtbot, view)
    window.painter.set_tool("brush")
    window.painter.set_size(1)
    _settle(qtbot, view)
    _drag(qtbot, view.xz_canvas, [(0, 5), (3, 5)])  # rows Z, cols X at y = 12
    label = layer_pixels(blank, "s", "label_0000")
    assert label[:, 12, 5].all() and label.sum() == 4


def test_use_prediction_as_label_then_undo(window, qtbot, blank):
    view = _show(window, qtbot, blank)
    refs = prediction_refs(window.tree, blank, "s")
    assert refs == ["prediction_0000"]
    req = UsePrediction(blank, "prediction_0000", "label_0000", (slice(2, 3), slice(None), slice(None)), 0.5)
    wait_worker(qtbot, use_prediction(window, req))
    label = layer_pixels(blank, "s", "label_0000")
    expected = np.linspace(0, 1, 64, dtype=np.float32) >= 0.5
    assert (label[2] == expected[None, :]).all() and label.sum() == 48 * expected.sum()
    annotated = layer_pixels(blank, "s", ANNOTATED)
    assert annotated[2].all() and annotated.sum() == 48 * 64
    window.painter.undo()
    assert layer_pixels(blank, "s", "label_0000").sum() == 0
    _settle(qtbot, view)


def test_threshold_style_wheel_and_shortcut_help(window, qtbot, blank):
    view = _show(window, qtbot, blank)
    window.tree.set_checked(blank, "s", "prediction_0000", True)
    _settle(qtbot, view)
    row = view.layer_panel.rows["prediction_0000"]
    row["threshold"].setValue(50)
    assert view.styles["prediction_0000"].threshold == 0.5
    left, right = view.current_rgb()[5, 31], view.current_rgb()[5, 33]  # around 0.5 = x 31.5
    assert left[0] == left[1] == left[2] and not (right[0] == right[1] == right[2])
    row["visible"].setChecked(False)
    assert (view.current_rgb()[5, 40] == view.current_rgb()[5, 40, 0]).all()
    window.wheel_action.setChecked(True)
    z = view.z
    event = QWheelEvent(QPointF(10, 10), QPointF(10, 10), QPoint(0, 0), QPoint(0, 120), Qt.NoButton,
                        Qt.NoModifier, Qt.NoScrollPhase, False)
    view.canvas.wheelEvent(event)
    assert view.z == z + 1
    rows = dict((text, keys) for keys, text in shortcut_rows(window))
    assert rows["Brush"] == "B" and rows["Eraser"] == "E" and rows["Fill"] == "F"
    assert rows["Undo"] == "Ctrl+Z" and rows["Redo"] == "Ctrl+Shift+Z" and rows["Bigger brush"] == "]"
    window.painter.set_size(8)
    window.paint_toolbar.bigger.trigger()
    assert window.painter.size == 10 and window.paint_toolbar.size_box.value() == 10


def test_no_label_layer_says_so(window, qtbot, messages, blank):
    view = _show(window, qtbot, blank)
    window.painter.set_label(3)  # the dataset has one label
    window.painter.set_tool("brush")
    _drag(qtbot, view.canvas, [(5, 5)])
    assert "has no label_0003" in messages.texts()
    assert layer_pixels(blank, "s", "label_0000").sum() == 0


def test_contrast_and_ticked_layers_come_back_next_session(window, qtbot, blank):
    from ui.main_window import MainWindow

    view = _show(window, qtbot, blank)
    view.lo_box.setValue(20.0)
    window.tree.set_checked(blank, "s", "prediction_0000", True)
    _settle(qtbot, view)
    later = MainWindow()  # a new session (the same settings file)
    qtbot.addWidget(later)
    later.dataset_actions.load(blank)
    later.tree.select(blank, "s")
    qtbot.waitUntil(lambda: later.view.source is not None and not later.view.loading)
    assert later.view.lo_box.value() == 20.0
    assert "prediction_0000" in later.view.source.layers


def test_label_box_grows_to_the_loaded_label_names(window, qtbot, tmp_path):
    path = tmp_path / "named.hdf5"
    with Dataset.create(path, "named", 2) as ds:
        ds.set_label_aliases(["mitochondria", "endoplasmic reticulum"])
        ds.add_sample("s", np.zeros((2, 32, 32), np.uint8), [])
    _show(window, qtbot, path)
    box = window.paint_toolbar.label_box
    texts = [box.itemText(i) for i in range(box.count())]
    assert texts == ["0: mitochondria", "1: endoplasmic reticulum"]
    # It was sized once for "label 0" and cut the names off.
    assert box.sizeHint().width() >= box.fontMetrics().horizontalAdvance("1: endoplasmic reticulum")
