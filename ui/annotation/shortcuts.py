"""The keyboard shortcut help (``?``): every shortcut of the window, read from its menus and
toolbars, so the list cannot drift from what the keys do."""

from __future__ import annotations

from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import QAction, QDialog, QDialogButtonBox, QTableWidget, QTableWidgetItem, QVBoxLayout

MOUSE = (
    ("wheel", "zoom at the cursor, or scroll Z when View > Wheel scrolls Z is on"),
    ("Ctrl+wheel", "zoom (when the wheel scrolls Z)"),
    ("drag", "pan (Navigate tool); with a paint tool: paint, and middle or right drag pans"),
    ("click in XY", "place the XZ / YZ planes (Navigate tool)"),
    ("click in XZ / YZ", "go to that slice and move the crosshair there"),
    ("Page Up / Page Down", "next / previous slice"),
)


def shortcut_rows(window) -> list[tuple[str, str]]:
    """(keys, what) for every action of ``window`` that has a shortcut, then the mouse."""
    rows, seen = [], set()
    for action in window.findChildren(QAction):
        keys = ", ".join(s.toString(QKeySequence.NativeText) for s in action.shortcuts())
        text = action.text().replace("&", "").replace("...", "")
        if keys and (keys, text) not in seen:
            seen.add((keys, text))
            rows.append((keys, text))
    return sorted(rows, key=lambda r: r[1].lower()) + list(MOUSE)


def show_shortcuts(window) -> QDialog:
    rows = shortcut_rows(window)
    dialog = QDialog(window)
    dialog.setWindowTitle("Keyboard shortcuts")
    table = QTableWidget(len(rows), 2)
    table.setHorizontalHeaderLabels(["Keys", "Does"])
    for i, (keys, text) in enumerate(rows):
        table.setItem(i, 0, QTableWidgetItem(keys))
        table.setItem(i, 1, QTableWidgetItem(text))
    table.resizeColumnsToContents()
    table.verticalHeader().setVisible(False)
    buttons = QDialogButtonBox(QDialogButtonBox.Close)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(table)
    layout.addWidget(buttons)
    dialog.resize(560, 600)
    dialog.show()
    window.shortcut_dialog = dialog
    return dialog
