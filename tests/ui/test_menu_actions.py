"""Every menu action can be triggered (with its ``triggered(bool)``) without an error box.

File > Quit and View > Orthogonal views raised TypeError boxes: ``guard()`` passed the
menu's ``checked`` flag to Qt's ``close()`` / ``toggle()``. Walking every QAction of the
menu bar keeps that class of bug from coming back for any action added later.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gui_helpers import wait_worker
from PyQt5.QtWidgets import QAction, QCheckBox, QDialog, QFileDialog, QInputDialog, QMenu, QWidget

from ui.dialogs.base import ConfigDialog
from ui.errors import guard, plain_title, positional_arity

pytest_plugins = ["gui_fixtures"]


def menu_actions(menu: QMenu, path: str = "") -> list[tuple[str, QAction]]:
    """(menu path, action) for every action of ``menu`` and its submenus, separators left out."""
    found = []
    for action in menu.actions():
        name = f"{path} > {plain_title(action.text())}" if path else plain_title(action.text())
        if action.menu() is not None:
            found += menu_actions(action.menu(), name)
        elif not action.isSeparator():
            found.append((name, action))
    return found


@pytest.fixture
def no_dialogs(monkeypatch):
    """Every question a menu action may ask is answered "cancel" at once."""
    monkeypatch.setattr(ConfigDialog, "exec_", lambda self: QDialog.Rejected)
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([], "")))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: ("", "")))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: ("", "")))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: ""))
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("", False)))


@pytest.mark.parametrize("with_data", [False, True], ids=["empty", "dataset-shown"])
def test_every_menu_action_triggers_without_an_error_box(window, qtbot, messages, no_dialogs,
                                                         tiny_dataset, with_data):
    if with_data:
        window.dataset_actions.load(tiny_dataset)
        window.tree.select(tiny_dataset, "s0")
    actions = menu_actions(window.menuBar())
    names = [name for name, _ in actions]
    assert len(actions) >= 25 and "File > Quit" in names and "View > Orthogonal views (XZ / YZ)" in names
    quit_action = dict(actions)["File > Quit"]
    for name, action in actions:
        if action is quit_action:
            continue  # last: it closes the window
        before = len(messages.shown)
        action.trigger()
        for worker in list(window.tasks.active):
            wait_worker(qtbot, worker)
        bugs = [m for m in messages.shown[before:] if m[0] == "critical"]
        assert not bugs, f"{name}: {bugs}"
        # A refusal names what to do, under a title without the menu's "&".
        for _kind, title, text in messages.shown[before:]:
            assert "&" not in title.replace("&&", ""), (name, title)
            assert "TypeError" not in text, (name, text)
    quit_action.trigger()
    assert not window.isVisible()
    assert not [m for m in messages.shown if m[0] == "critical"]


def test_orthogonal_views_menu_toggles_the_view(window, tiny_dataset, messages):
    window.dataset_actions.load(tiny_dataset)
    window.tree.select(tiny_dataset, "s0")
    action = next(a for _, a in menu_actions(window.menuBar()) if a.text().startswith("&Orthogonal"))
    action.trigger()
    assert window.view.ortho_box.isChecked() and action.isChecked()
    action.trigger()
    assert not window.view.ortho_box.isChecked() and not action.isChecked()
    assert messages.shown == []


def test_positional_arity_of_python_and_qt_slots(qtbot):
    widget, box = QWidget(), QCheckBox()
    qtbot.addWidget(widget)
    qtbot.addWidget(box)
    assert positional_arity(widget.close) == 0        # docstring "close(self) -> bool"
    assert positional_arity(box.toggle) == 0
    assert positional_arity(box.setChecked) == 1      # toggled(bool) still reaches it
    assert positional_arity(widget.update) == 0       # the fewest of its overloads
    assert positional_arity(lambda: None) == 0
    assert positional_arity(lambda a, b=1: None) == 1
    assert positional_arity(lambda *a: None) is None


def test_guard_calls_qt_builtins_without_the_signal_flag(qtbot, messages):
    box = QCheckBox()
    qtbot.addWidget(box)
    guard(None, box.toggle)(False)        # triggered(bool) -> toggle(): TypeError before
    assert box.isChecked()
    guard(None, box.setChecked)(False)    # toggled(bool) -> setChecked(bool)
    assert not box.isChecked()
    widget = QWidget()
    qtbot.addWidget(widget)
    widget.show()
    guard(None, widget.close)(False)      # triggered(bool) -> close(): TypeError before
    assert not widget.isVisible() and messages.shown == []


def test_message_box_titles_lose_the_menus_ampersand(window, messages):
    action = next(a for _, a in menu_actions(window.menuBar()) if a.text() == "&Remove sample")
    action.trigger()  # nothing selected: a warning
    assert messages.shown[-1][0] == "warning" and messages.shown[-1][1] == "Remove sample"
    assert plain_title("Save && go...") == "Save & go"


def test_quit_shortcut_is_ctrl_q(window):
    action = next(a for _, a in menu_actions(window.menuBar()) if a.text() == "&Quit")
    assert action.shortcut().toString() == "Ctrl+Q"  # pressed for real in test_real_window


def test_file_dialogs_open_in_the_folder_used_last(qtbot, monkeypatch, tmp_path):
    from ui.dialogs import file_dialogs

    starts = []

    def fake_open(parent, title, start, file_filter):
        starts.append(start)
        return [str(tmp_path / "data" / "a.hdf5")], ""
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(fake_open))
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda parent, title, start, f: (starts.append(start) or "", "")))
    (tmp_path / "data").mkdir()
    file_dialogs.open_files(None, "Load datasets", "", kind="dataset")
    # Another kind, never used: the last folder of any kind.
    file_dialogs.save_file(None, "Save model", "unet.keras", "", kind="model")
    file_dialogs.save_file(None, "Save model", "/elsewhere/unet.keras", "")  # a full path is kept
    file_dialogs.open_files(None, "Load datasets", "", kind="dataset")  # its own folder again
    assert starts == ["", str(tmp_path / "data" / "unet.keras"), "/elsewhere/unet.keras",
                      str(tmp_path / "data")]
    settings = Path(os.environ["DEEPSCEM_SETTINGS_DIR"]) / "deepscem.ini"
    assert "data" in settings.read_text()  # remembered across sessions (QSettings)
