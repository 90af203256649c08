"""The controls around the main view: contrast, overlay opacity, XZ / YZ switch, fit, Z
slider (control 14) and the cursor read-out. Widgets only; :class:`ui.volume_view.VolumeView`
connects them."""

from __future__ import annotations

import numpy as np
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QWidget,
)

from . import view_settings
from .dataset_tree import split_ref


class ViewControls:
    """Holds the widgets; ``top`` (contrast) and ``z_row`` (Z slider, overlay opacity, XZ / YZ,
    fit) are the two rows to put in a layout."""

    def __init__(self) -> None:
        self.z_slider = QSlider(Qt.Horizontal)
        self.z_slider.setToolTip("Z selector: the slice shown (also Page Up / Page Down; the wheel "
                                 "when 'Wheel scrolls Z' is on in the View menu)")
        self.z_slider.setEnabled(False)
        self.z_label = QLabel("Z -")
        self.z_label.setMinimumWidth(70)
        self.lo_box, self.hi_box = QDoubleSpinBox(), QDoubleSpinBox()
        for box, tip in ((self.lo_box, "Contrast: raw value shown black"),
                         (self.hi_box, "Contrast: raw value shown white")):
            box.setDecimals(3)
            box.setRange(-1e9, 1e9)
            box.setToolTip(tip)
            box.setKeyboardTracking(False)
            # room for a 16-bit value with its decimals at any font size (a fixed 110 px cut
            # the digits at 150-200 % scaling); the +-1e9 range alone would ask for far more
            box.setMaximumWidth(box.fontMetrics().horizontalAdvance("-65535.000") + 40)
        self.auto_button = QPushButton("Auto")
        self.auto_button.setToolTip("Stretch contrast to the 0.5-99.5 percentiles of this slice")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Contrast of the whole volume (its normalisation range)")
        self.opacity = QSlider(Qt.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.opacity.setMaximumWidth(100)
        self.opacity.setToolTip("Opacity of the label and prediction overlays")
        self.ortho_box = QCheckBox("XZ / YZ")
        self.ortho_box.setToolTip("Show orthogonal planes through the crosshair (3D volumes; "
                                  "reads a plane across all slices); click in them to go there")
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Zoom to fit the slice in the view")
        self.position_label = QLabel("")
        self.position_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.whole_numbers = False  # an integer image: contrast without decimals ("22", not "22.000")

        self.top = QHBoxLayout()
        self.top.addWidget(QLabel("Contrast"))
        for widget in (self.lo_box, self.hi_box, self.auto_button, self.reset_button):
            self.top.addWidget(widget)
        self.top.addStretch(1)
        # the overlay and view switches share the Z row: one row of everything would make the
        # window wider than a 1024-pixel screen
        self.z_row = QHBoxLayout()
        self.z_row.addWidget(self.z_label)
        self.z_row.addWidget(self.z_slider, 1)
        self.z_row.addSpacing(12)
        self.z_row.addWidget(QLabel("Overlay"))
        self.z_row.addWidget(self.opacity)
        self.z_row.addWidget(self.ortho_box)
        self.z_row.addWidget(self.fit_button)

    def widgets(self) -> list[QWidget]:
        """The controls that are disabled while nothing is shown."""
        return [self.lo_box, self.hi_box, self.auto_button, self.reset_button, self.ortho_box,
                self.fit_button, self.opacity]

    def set_contrast(self, lo: float, hi: float) -> None:
        """Show (lo, hi) without emitting valueChanged."""
        for box, value in ((self.lo_box, lo), (self.hi_box, hi)):
            box.blockSignals(True)
            box.setDecimals(0 if self.whole_numbers else 3)
            box.setValue(value)
            box.blockSignals(False)
        step = max((hi - lo) / 100.0, 1 if self.whole_numbers else 1e-3)
        self.lo_box.setSingleStep(step)
        self.hi_box.setSingleStep(step)


class ContrastAndReadout:
    """The view's contrast actions and cursor read-out (a mixin of :class:`ui.volume_view.VolumeView`:
    needs ``source``, ``controls``, ``_plane``, ``_plane_z``, ``_render_all``)."""

    def auto_contrast(self) -> None:
        if "image" not in self._plane:
            return
        lo, hi = np.percentile(self._plane["image"], (0.5, 99.5))
        self.controls.set_contrast(float(lo), float(max(hi, lo + 1e-6)))
        self._contrast_changed()

    def reset_contrast(self) -> None:
        if self.source is not None:
            self.controls.set_contrast(*self.source.image_range)
            self._contrast_changed()

    def _contrast_changed(self, *_args) -> None:
        if self.source is not None:
            view_settings.save_contrast(self.source.path, self.source.sample,
                                        self.lo_box.value(), self.hi_box.value())
            self._render_all()

    def _show_position(self, row: int, col: int) -> None:
        self._hover = (row, col) if row >= 0 else None
        if row < 0 or "image" not in self._plane:
            self.position_label.setText("")
            return
        parts = [f"z {self._plane_z}  y {row}  x {col}"]
        for name, plane in self._plane.items():
            value = plane[row, col]
            text = f"{value:.4g}" if np.issubdtype(plane.dtype, np.floating) else str(int(value))
            layer, other = split_ref(name)
            parts.append(f"{layer}{f'[{other.name}]' if other else ''} {text}")
        self.position_label.setText("   ".join(parts))
