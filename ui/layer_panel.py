"""The overlays shown, one row each: visible, colour, opacity, and a live threshold for
probability layers. Changes go into a :class:`ui.layer_style.LayerStyles` and ``changed``."""

from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QColor
from PyQt5.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QGridLayout,
    QLabel,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from deepscem.dataset.layers import kind_of

from . import view_settings
from .dataset_tree import split_ref
from .layer_style import LayerStyles


class LayerPanel(QWidget):
    changed = pyqtSignal()

    def __init__(self, styles: LayerStyles, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.styles = styles
        self.rows: dict[str, dict[str, QWidget]] = {}
        self._grid = QGridLayout()
        self._grid.setContentsMargins(0, 0, 0, 0)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(2, 0, 2, 0)
        title = QLabel("<b>Overlays</b>")
        title.setToolTip("Layers ticked in the dataset list: visibility, colour, opacity, threshold")
        outer.addWidget(title)
        outer.addLayout(self._grid)
        outer.addStretch(1)
        self.setMaximumWidth(240)

    def set_layers(self, refs: list[str]) -> None:
        """One row per overlay in ``refs`` (the image has none)."""
        refs = [r for r in refs if r != "image"]
        if list(self.rows) == refs:
            return
        while self._grid.count():
            widget = self._grid.takeAt(0).widget()
            if widget is not None:  # hidden now: deleteLater alone leaves it drawn until then
                widget.hide()
                widget.deleteLater()
        self.rows = {}
        for i, ref in enumerate(refs):
            self._add_row(2 * i, ref)
        self.setVisible(bool(refs))

    def _add_row(self, row: int, ref: str) -> None:
        layer, other = split_ref(ref)
        style = self.styles[ref]
        visible = QCheckBox(layer + (f" [{other.name}]" if other else ""))
        visible.setChecked(style.visible)
        visible.setToolTip(f"Draw {layer} (hides it without unticking it in the list)")
        visible.toggled.connect(lambda on: self._set(ref, visible=on))
        colour = QToolButton()
        colour.setToolTip(f"Colour of {layer}")
        colour.setStyleSheet(f"background-color: rgb{tuple(style.colour)}")
        colour.clicked.connect(lambda: self._pick_colour(ref, colour))
        opacity = QSlider(Qt.Horizontal)
        opacity.setRange(0, 100)
        opacity.setValue(int(round(style.opacity * 100)))
        opacity.setToolTip(f"Opacity of {layer} (relative to the Overlay slider)")
        opacity.valueChanged.connect(lambda v: self._set(ref, opacity=v / 100.0))
        widgets = {"visible": visible, "colour": colour, "opacity": opacity}
        self._grid.addWidget(visible, row, 0, 1, 2)
        self._grid.addWidget(colour, row + 1, 0)
        self._grid.addWidget(opacity, row + 1, 1)
        if kind_of(layer) == "prediction":
            threshold = QSlider(Qt.Horizontal)
            threshold.setRange(0, 99)
            threshold.setValue(int(round((style.threshold or 0) * 100)))
            threshold.setToolTip(f"Threshold of {layer}: drawn as the mask value >= threshold "
                                 "(leftmost: the probabilities as they are)")
            threshold.valueChanged.connect(lambda v: self._set(ref, threshold=v / 100.0 if v else None))
            self._grid.addWidget(threshold, row + 1, 2)
            widgets["threshold"] = threshold
        self.rows[ref] = widgets

    def _pick_colour(self, ref: str, button: QToolButton) -> None:
        chosen = QColorDialog.getColor(QColor(*self.styles[ref].colour), self, "Overlay colour")
        if chosen.isValid():
            rgb = (chosen.red(), chosen.green(), chosen.blue())
            button.setStyleSheet(f"background-color: rgb{rgb}")
            self._set(ref, colour=rgb)

    def _set(self, ref: str, **changes) -> None:
        style = self.styles[ref]
        for key, value in changes.items():
            setattr(style, key, value)
        view_settings.save_style(split_ref(ref)[0], style)
        self.changed.emit()
