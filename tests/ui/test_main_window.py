"""The main window: controls, menus, datasets in the tree and the view, errors as message boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gui_helpers import wait_worker
from PyQt5.QtCore import Qt
from PyQt5.QtGui import QKeySequence

from deepscem.dataset import Dataset
from ui.dialogs.dataset_dialogs import AddSampleRequest, CreateDatasetRequest, CropRequest, SaveAsRequest

pytest_plugins = ["gui_fixtures"]


def test_window_has_the_seed_controls_with_tooltips(window):
    assert len(window.buttons) == 11  # controls 1-5 and 7-12; 6, 13, 14, 15 are widgets
    for key, button in window.buttons.items():
        assert button.toolTip(), key
    assert window.tree.toolTip() and window.models.toolTip() and window.view.z_slider.toolTip()
    shortcuts = {a.text().replace("&", "").rstrip("."): a.shortcut().toString()
                 for menu in window.menuBar().findChildren(type(window.menuBar().addMenu("x")))
                 for a in menu.actions()}
    for text, key in (("New dataset", "Ctrl+N"), ("Load dataset", "Ctrl+O"), ("Save dataset as", "Ctrl+S"),
                      ("Add sample", "Ctrl+B"), ("Remove sample", "Ctrl+W"), ("Rename sample", "Ctrl+R"),
                      ("About DeepSCEM", "F1")):
        assert shortcuts[text] == QKeySequence(key).toString(), text


def test_the_window_opens_within_the_screen(window):
    """1280 x 800, or the screen's free area when smaller (the offscreen test screen is 800 x
    600): the status bar and the model buttons are never below the screen's edge."""
    from PyQt5.QtWidgets import QApplication

    free = QApplication.primaryScreen().availableGeometry()
    assert window.minimumSizeHint().height() < free.height()
    # and fits a 1024-pixel-wide screen (the view's controls in one row made it 1136 here)
    assert window.minimumSizeHint().width() <= 1024
    assert window.height() == min(800, free.height())


def test_invalid_file_gives_a_message_box_not_a_crash(window, messages, tmp_path, monkeypatch):
    bad = tmp_path / "not_a_dataset.hdf5"
    bad.write_bytes(b"this is not HDF5")
    from PyQt5.QtWidgets import QFileDialog
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([str(bad)], "")))
    window.buttons["load_dataset"].click()
    assert messages.kinds() == ["warning"]
    assert "not_a_dataset.hdf5" in messages.texts() and "Traceback" not in messages.texts()
    assert window.tree.topLevelItemCount() == 0
    # The window is still usable: a button without a selection explains what to do.
    window.buttons["remove_sample"].click()
    assert "select a sample" in messages.shown[-1][2]


def test_create_dataset_add_sample_and_view_overlays(window, qtbot, tmp_path, tiffs):
    image, label = tiffs
    path = window.dataset_actions.create(CreateDatasetRequest(tmp_path / "new.hdf5", "new", 1))
    assert window.tree.summaries[path].n_labels == 1
    worker = window.dataset_actions.add_sample(AddSampleRequest(path, "s1", image, (label,)))
    wait_worker(qtbot, worker)
    assert window.tree.summaries[path].samples["s1"][0] == (4, 32, 40)
    window.tree.select(path, "s1")
    assert window.view.showing(path, "s1")
    grey = window.view.current_rgb().copy()
    assert grey.shape == (32, 40, 3) and np.all(grey[..., 0] == grey[..., 1])  # grey only
    window.tree.set_checked(path, "s1", "label_0000", True)
    overlaid = window.view.current_rgb()
    mask = window.view._plane["label_0000"] > 0
    assert mask.any() and not np.array_equal(overlaid[mask], grey[mask])
    assert np.array_equal(overlaid[~mask], grey[~mask])
    window.view.z_slider.setValue(0)
    assert window.view.z == 0 and window.view.z_label.text() == "Z 0 (0-3)"


def test_unloading_the_shown_dataset_clears_the_view(window, qtbot, tiny_dataset):
    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset, "s1")
    assert window.view.showing(tiny_dataset, "s1")
    window.tree.select(tiny_dataset)
    window.buttons["unload_dataset"].click()
    assert window.view.source is None and window.view.current_rgb() is None
    assert not window.view.z_slider.isEnabled()
    window.view.set_z(3)           # the original crashed here
    window.view.refresh()
    window.view._show_position(1, 1)
    assert window.tree.topLevelItemCount() == 0


def test_remove_the_shown_sample_and_save_as(window, qtbot, messages, tiny_dataset, tmp_path):
    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset, "s0")
    window.buttons["remove_sample"].click()  # asks first (answered Yes)
    assert messages.kinds() == ["question"]
    assert window.view.source is None
    assert list(window.tree.summaries[tiny_dataset].samples) == ["s1"]
    copy = tmp_path / "copy.hdf5"
    wait_worker(qtbot, window.dataset_actions.save_as(SaveAsRequest(tiny_dataset, copy, False)))
    with Dataset.open(copy) as ds:
        assert ds.sample_names() == ["s1"]
    assert copy in window.tree.summaries


def test_crop_runs_in_a_worker(window, qtbot, tiny_dataset):
    window.dataset_actions.load(tiny_dataset)
    req = CropRequest(tiny_dataset, "s0", (1, 3), (0, 16), (8, 24), "s0_crop")
    wait_worker(qtbot, window.dataset_actions.crop(req))
    assert window.tree.summaries[tiny_dataset].samples["s0_crop"][0] == (2, 16, 16)


def test_orthogonal_views_and_cursor_readout(window, qtbot, tiny_dataset):
    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset, "s0")
    view = window.view
    view.ortho_box.setChecked(True)
    qtbot.waitUntil(lambda: not view.loading)  # the planes are read in the background
    assert view.xz_canvas.isVisible() and view.xz_canvas.image_shape == (4, 32)
    assert view.yz_canvas.image_shape == (32, 4)
    view._show_position(5, 6)
    assert view.position_label.text().startswith("z 2  y 5  x 6") and "image" in view.position_label.text()


def test_screenshot_png(window, tiny_dataset, tmp_path):
    window.dataset_actions.load(tiny_dataset)
    out = window.save_screenshot(tmp_path / "shot.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_about_shows_version_and_citation(window, messages):
    import deepscem
    window.device = "CPU (test)"
    window.about_clicked()
    kind, _, text = messages.shown[-1]
    assert kind == "about" and deepscem.__version__ in text and "Meyer" in text and "CPU (test)" in text


def test_dropping_tiffs_opens_add_sample_prefilled(window, tiffs, monkeypatch, tiny_dataset):
    window.dataset_actions.load(tiny_dataset)
    seen = {}
    from ui.dialogs import dataset_dialogs

    def fake_ask(self):
        seen["image"] = self.image_edit.text()
        seen["labels"] = [e.text() for e in self.label_edits]
        return None
    monkeypatch.setattr(dataset_dialogs.AddSampleDialog, "ask", fake_ask)
    window.dataset_actions.add_files_dropped([str(p) for p in tiffs])
    assert seen == {"image": str(tiffs[0]), "labels": [str(tiffs[1])]}


def test_quitting_with_unsaved_models_asks(window, messages):
    from ui.model_list import ModelEntry
    window.models.add_entry(ModelEntry("m", model=None, info=None))
    messages.answer = messages.answer.__class__(0x00010000)  # No
    assert not window.close()
    assert messages.kinds()[-1] == "question" and "m" in messages.shown[-1][2]
    assert window.isVisible()


def test_keyboard_z_navigation(window, qtbot, tiny_dataset):
    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset, "s0")
    z = window.view.z
    qtbot.keyClick(window.view, Qt.Key_PageUp)
    assert window.view.z == z + 1
    assert Path(window.view.source.path) == tiny_dataset


def test_a_file_gone_under_the_gui_gives_messages_not_crashes(window, qtbot, messages, tiny_dataset):
    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset, "s0")
    tiny_dataset.unlink()
    window.view.set_z(0)                      # the view clears itself and says why
    qtbot.waitUntil(lambda: window.view.source is None)
    window.tree.select(tiny_dataset, "s1")    # selecting another sample: a message box
    assert messages.kinds() == ["warning"] and "no such file" in messages.texts()


def test_z_changes_keep_the_orthogonal_planes(window, qtbot, tiny_dataset, monkeypatch):
    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset, "s0")
    view = window.view
    view.ortho_box.setChecked(True)
    qtbot.waitUntil(lambda: not view.loading)
    reads = []
    original = view._read
    monkeypatch.setattr(view, "_read", lambda region, source=None: reads.append(region) or
                        original(region, source))
    view.set_z(1)
    qtbot.waitUntil(lambda: not view.loading)
    assert len(reads) == 1  # only the new Z slice; the XZ / YZ planes are reused
    assert view.xz_canvas.cross == (1, view.cross[1])


def test_z_changes_read_in_the_background_newest_first(window, qtbot, tiny_dataset, monkeypatch):
    import threading

    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset, "s0")
    view = window.view
    gate, reads, threads = threading.Event(), [], []
    original = view._read

    def slow_read(region, source=None):
        threads.append(threading.current_thread() is threading.main_thread())
        gate.wait(10)  # a slow disk: the GUI thread must not wait for this
        reads.append(region[0].start)
        return original(region, source)

    monkeypatch.setattr(view, "_read", slow_read)
    view.set_z(0)
    view.set_z(1)                  # while slice 0 is being read: only remembered ...
    view.set_z(3)                  # ... and replaced by the newest
    assert view.z == 3 and view.z_label.text() == "Z 3 (0-3)" and view.loading
    gate.set()
    qtbot.waitUntil(lambda: not view.loading)
    assert reads == [0, 3] and threads == [False, False]
    assert view._plane_z == 3
    np.testing.assert_array_equal(view._plane["image"], original(
        (slice(3, 4), slice(None), slice(None)))["image"][0])


def test_prediction_file_layers_overlay_the_dataset_sample(window, tiny_dataset, tmp_path):
    pred = tmp_path / "pred.hdf5"
    with Dataset.open(tiny_dataset) as src, Dataset.create(pred, "pred", 1) as ds:
        for name in src.sample_names():
            sample = ds.add_sample(name, src.sample(name).read_layer("image"), [None])
            sample.create_layer("prediction_0000", np.float32)
            sample.layer("prediction_0000")[:, :8, :8] = 1.0
    window.dataset_actions.load(tiny_dataset)
    window.dataset_actions.load(pred)
    window.tree.select(tiny_dataset, "s0")
    ref = f"prediction_0000@{pred}"
    item = window.tree.currentItem()
    assert "prediction_0000  [pred.hdf5]" in [item.child(i).text(0) for i in range(item.childCount())]
    window.tree.set_checked(tiny_dataset, "s0", "label_0000", True)
    window.tree.set_checked(tiny_dataset, "s0", ref, True)
    plane = window.view._plane
    assert plane[ref][:8, :8].min() == 1.0 and plane[ref][8:].max() == 0.0
    assert "label_0000" in plane  # the reference and the prediction drawn together
    window.dataset_actions.unload(pred)
    assert window.view.showing(tiny_dataset, "s0") and ref not in window.view._plane
    assert ref not in window.tree.checked_layers(tiny_dataset, "s0")


def test_export_slice_png_at_full_resolution(window, tiny_dataset, tmp_path, monkeypatch):
    from PyQt5.QtGui import QImage
    from PyQt5.QtWidgets import QFileDialog

    window.dataset_actions.load(tiny_dataset)
    out = tmp_path / "slice.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    window.export_slice_clicked()
    image = QImage(str(out))
    assert (image.height(), image.width()) == (32, 32)


def test_add_sample_button_runs_the_dialogs_request(window, qtbot, monkeypatch, tiny_dataset, tiffs):
    from ui.dialogs import dataset_dialogs

    window.dataset_actions.load(tiny_dataset)
    req = AddSampleRequest(tiny_dataset, "added", tiffs[0], (None,))
    monkeypatch.setattr(dataset_dialogs.AddSampleDialog, "ask", lambda self: req)
    window.buttons["add_sample"].click()
    wait_worker(qtbot, window.tasks.active[-1])
    assert window.tree.summaries[tiny_dataset].samples["added"][0] == (4, 32, 40)
    with Dataset.open(tiny_dataset) as ds:
        assert ds.sample("added").read_layer("label_0000").max() == 0  # blank label


def test_dropping_a_dataset_file_on_the_window_loads_it(window, tiny_dataset):
    from PyQt5.QtCore import QMimeData, QPoint, QUrl
    from PyQt5.QtGui import QDragEnterEvent, QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tiny_dataset))])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    window.dropEvent(QDropEvent(QPoint(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier))
    assert tiny_dataset in window.tree.summaries and window.view.showing(tiny_dataset, "s0")


def test_orthogonal_planes_read_in_the_background_newest_cross_first(window, qtbot, tiny_dataset,
                                                                     monkeypatch):
    import threading

    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset, "s0")
    view = window.view
    view.ortho_box.setChecked(True)
    qtbot.waitUntil(lambda: not view.loading)
    gate, rows = threading.Event(), []
    original = view._read

    def slow_read(region, source=None):
        if region[0] == slice(None):  # a plane across Z
            gate.wait(10)
            if region[1] != slice(None):
                rows.append(region[1].start)
        return original(region, source)

    monkeypatch.setattr(view, "_read", slow_read)
    view._place_cross(3, 4)          # read starts (and waits on the slow disk) ...
    view._place_cross(7, 8)          # ... these two only leave the newest to read next
    view._place_cross(9, 10)
    assert view.loading and view.cross == (9, 10)
    gate.set()
    qtbot.waitUntil(lambda: not view.loading)
    assert rows == [3, 9]
    xz, _ = view._ortho
    expected = original((slice(None), slice(9, 10), slice(None)))["image"][:, 0]
    np.testing.assert_array_equal(xz["image"], expected)
    # planes of another sample are never drawn beside this one
    view.xz_canvas.cross = None
    view._ortho_for = (view.source.path, "another sample")
    view._render_all()
    assert view.xz_canvas.cross is None  # not drawn
    view._ortho_for = (view.source.path, "s0")
    view._render_all()
    assert view.xz_canvas.cross == (view._plane_z, 10)


def test_large_slices_of_a_new_sample_are_read_in_the_background(window, qtbot, tiny_dataset,
                                                                  monkeypatch):
    import threading

    from ui import volume_view

    monkeypatch.setattr(volume_view, "SYNC_SLICE_VOXELS", 0)  # every slice counts as large here
    view = window.view
    gate, samples = threading.Event(), []
    original = view._read

    def slow_read(region, source=None):
        samples.append((source or view.source).sample)
        if samples[-1] == "s0":
            gate.wait(10)  # a slow disk under the first sample
        return original(region, source)

    monkeypatch.setattr(view, "_read", slow_read)
    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset, "s0")
    assert view.loading and view.canvas.image_shape is None  # the window went on
    window.tree.select(tiny_dataset, "s1")     # chosen before s0's slice arrived
    gate.set()
    qtbot.waitUntil(lambda: not view.loading)
    assert view.source.sample == "s1" and samples[-1] == "s1"
    expected = original((slice(view.z, view.z + 1), slice(None), slice(None)))["image"][0]
    np.testing.assert_array_equal(view._plane["image"], expected)  # s1's slice, not s0's
    window.tree.set_checked(tiny_dataset, "s1", "label_0000", True)  # new layers: also background
    qtbot.waitUntil(lambda: not view.loading)
    assert "label_0000" in view._plane
