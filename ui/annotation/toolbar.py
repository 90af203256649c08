"""The painting toolbar and the Label menu, and :func:`install`, which hooks painting into the
main window (one call from :class:`ui.main_window.MainWindow`)."""

from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import QAction, QActionGroup, QComboBox, QLabel, QMessageBox, QSpinBox, QToolBar

from deepscem.dataset.layers import ANNOTATED

from .. import view_settings
from ..errors import guard
from .painter import MAX_BRUSH, PaintController
from .prediction_dialog import use_prediction_clicked
from .shortcuts import show_shortcuts

# (tool, text, shortcut, tip)
TOOL_ACTIONS = (
    ("navigate", "Navigate", "N", "Pan and zoom; a click places the XZ / YZ planes (N or Esc)"),
    ("brush", "Brush", "B", "Paint the chosen label (B); [ and ] change the size; marks annotated"),
    ("eraser", "Eraser", "E", "Erase the chosen label (E); what it touches is marked annotated"),
    ("fill", "Fill", "F", "Fill the closed region under the click with the chosen label (F)"),
    ("rect", "Mark region", "R", "Drag a rectangle whose labels are checked: marked annotated, "
                                 "what is unlabelled there is background (R)"),
)


class PaintToolbar(QToolBar):
    """Tools, brush size, label, undo / redo, mark slice, use prediction."""

    def __init__(self, painter: PaintController, parent=None) -> None:
        super().__init__("Painting", parent)
        self.painter = painter
        self.setObjectName("painting_toolbar")
        self.tool_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for tool, text, key, tip in TOOL_ACTIONS:
            action = QAction(text, self)
            action.setCheckable(True)
            action.setShortcuts([QKeySequence(key)] + ([QKeySequence(Qt.Key_Escape)] if tool == "navigate"
                                                       else []))
            action.setToolTip(tip)
            action.setStatusTip(tip)
            action.triggered.connect(lambda _on, t=tool: painter.set_tool(t))
            group.addAction(action)
            self.addAction(action)
            self.tool_actions[tool] = action
        self.tool_actions["navigate"].setChecked(True)
        self.size_box = QSpinBox()
        self.size_box.setRange(1, MAX_BRUSH)
        self.size_box.setValue(painter.size)
        self.size_box.setSuffix(" px")
        self.size_box.setToolTip("Brush diameter in voxels ([ smaller, ] bigger)")
        self.size_box.valueChanged.connect(painter.set_size)
        self.label_box = QComboBox()
        self.label_box.setToolTip("The label painted, erased and filled")
        # Wide enough for the names of the loaded dataset's labels (not only the first shown).
        self.label_box.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.label_box.setMaximumWidth(240)
        self.label_box.addItem("label 0")
        self.label_box.currentIndexChanged.connect(lambda i: painter.set_label(max(i, 0)))
        self.addWidget(QLabel(" Size "))
        self.addWidget(self.size_box)
        self.addWidget(QLabel(" Label "))
        self.addWidget(self.label_box)
        self.addSeparator()
        self.smaller = self._action("Smaller brush", "[", lambda: painter.grow(False), False)
        self.bigger = self._action("Bigger brush", "]", lambda: painter.grow(True), False)
        self.undo = self._action("Undo", "Ctrl+Z", painter.undo, True, "Undo the last edit (Ctrl+Z)")
        self.redo = self._action("Redo", "Ctrl+Shift+Z", painter.redo, True, "Redo (Ctrl+Shift+Z)")
        self.mark_slice = self._action("Mark slice annotated", "M", painter.mark_slice, True,
                                       "This slice's labels are complete: unlabelled voxels of it "
                                       "are background (M)")
        painter.changed.connect(self.sync)
        self.sync()

    def _action(self, text: str, key: str, slot, shown: bool, tip: str = "") -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(key))
        action.setToolTip(tip or f"{text} ({key})")
        action.setStatusTip(tip or text)
        action.triggered.connect(guard(self.parentWidget() or self, slot, text))
        if shown:
            self.addAction(action)
        return action

    def set_labels(self, names: list[str]) -> None:
        """The labels of the shown dataset (their aliases)."""
        current = self.label_box.currentIndex()
        self.label_box.blockSignals(True)
        self.label_box.clear()
        self.label_box.addItems([f"{i}: {n}" for i, n in enumerate(names)] or ["label 0"])
        self.label_box.setCurrentIndex(min(max(current, 0), self.label_box.count() - 1))
        self.label_box.blockSignals(False)
        self.painter.label = self.label_box.currentIndex()

    def sync(self) -> None:
        self.tool_actions[self.painter.tool].setChecked(True)
        if self.size_box.value() != self.painter.size:
            self.size_box.setValue(self.painter.size)
        self.undo.setEnabled(self.painter.history.can_undo)
        self.redo.setEnabled(self.painter.history.can_redo)


def install(window) -> PaintController:
    """Add painting to ``window``: toolbar, Label menu, View menu entries, help, and the
    connections to the dataset list (tick the painted label, list a new ``annotated`` layer).

    Long because it is a flat list of actions, each with its shortcut and tooltip."""
    view, tree = window.view, window.tree
    painter = PaintController(view, window)
    toolbar = PaintToolbar(painter, window)
    window.addToolBar(Qt.TopToolBarArea, toolbar)
    window.painter, window.paint_toolbar = painter, toolbar

    menu = window.menuBar().addMenu("&Label")
    for action in list(toolbar.tool_actions.values()) + [toolbar.smaller, toolbar.bigger, None,
                                                           toolbar.undo, toolbar.redo, None,
                                                           toolbar.mark_slice]:
        menu.addSeparator() if action is None else menu.addAction(action)
    use = QAction("&Use prediction as label...", window)
    use.setShortcut(QKeySequence("Ctrl+Shift+U"))
    use.setStatusTip("Copy a thresholded prediction into the label (slice, region or sample), then "
                     "paint the corrections")
    use.triggered.connect(guard(window, lambda: use_prediction_clicked(window), "Use prediction as label"))
    menu.addAction(use)
    window.use_prediction_action = use

    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    wheel = QAction("&Wheel scrolls Z (Ctrl+wheel zooms)", window)
    wheel.setCheckable(True)
    wheel.setChecked(view_settings.wheel_scrolls_z())
    wheel.toggled.connect(lambda on: (view.set_wheel_scrolls_z(on), view_settings.set_wheel_scrolls_z(on)))
    view_menu.addAction(wheel)
    window.wheel_action = wheel
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    keys = QAction("&Keyboard shortcuts", window)
    keys.setShortcuts([QKeySequence("?"), QKeySequence("Shift+F1")])
    keys.triggered.connect(lambda: show_shortcuts(window))
    help_menu.addAction(keys)

    def tick(path: str, sample: str, layer: str) -> None:
        tree.set_checked(Path(path), sample, layer, True)

    def after_edit(text: str) -> None:
        window.statusBar().showMessage(text, 5000)
        src = view.source
        summary = tree.summaries.get(src.path) if src is not None else None
        if summary is not None and ANNOTATED not in summary.samples.get(src.sample, ((), []))[1]:
            window.dataset_actions.refresh(src.path)  # the first edit created the layer

    def shown(path: str, sample: str) -> None:
        summary = tree.summaries.get(Path(path))
        if summary is not None:
            toolbar.set_labels(summary.aliases)
            saved = view_settings.saved_layers(path, sample)
            if saved and view.showing(path, sample) and set(saved) != set(view.source.layers):
                present = set(summary.samples[sample][1]) | {r for r in saved if "@" in r}
                for ref in saved:
                    if ref in present:
                        tree.set_checked(Path(path), sample, ref, True)

    painter.layerWanted.connect(tick)
    painter.edited.connect(after_edit)
    painter.failed.connect(lambda text: QMessageBox.warning(window, "Painting", text))
    tree.sampleSelected.connect(shown)
    return painter
