"""The main view (control 15) with its Z selector (control 14): display and routing only.

Reads only what is on screen (the current Z slice of the image and the ticked layers, plus one
XZ and one YZ plane when shown) with :func:`deepscem.dataset.slice_loader.read_planes`, never
holding the file open. Z changes and the XZ / YZ planes are read by two
:class:`~deepscem.dataset.slice_loader.NewestWinsLoader` (dragging the slider across a thousand
slices reads a handful); a new sample or new layers are read at once when slices are small
(up to ``SYNC_SLICE_VOXELS``). Painting: :mod:`ui.annotation`; styles: :mod:`ui.layer_style`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import QGridLayout, QVBoxLayout, QWidget

from deepscem.dataset import Dataset
from deepscem.dataset.slice_loader import NewestWinsLoader, read_planes
from deepscem.errors import DeepScemError

from . import view_settings
from .dataset_tree import split_ref
from .layer_panel import LayerPanel
from .layer_style import LayerStyles
from .ortho_planes import OrthoPlanes
from .slice_canvas import SliceCanvas
from .view_controls import ContrastAndReadout, ViewControls
from .view_drawing import Drawing

# Slices of up to this many pixels (2048 x 2048) are read synchronously when a sample is shown
# or its layers change (tens of ms); larger ones in the background like Z changes.
SYNC_SLICE_VOXELS = 2048 * 2048

# What reading the shown file can raise when it changed under the view.
READ_ERRORS = (DeepScemError, OSError, KeyError)


@dataclass
class ViewSource:
    """What is shown: one sample of one dataset file, and its visible layers."""

    path: Path
    sample: str
    shape: tuple[int, int, int]          # (Z, Y, X)
    image_range: tuple[float, float]     # the volume-wide normalisation range, raw units
    layers: list[str] = field(default_factory=lambda: ["image"])


class VolumeView(OrthoPlanes, Drawing, ContrastAndReadout, QWidget):
    """Grey image + coloured semi-transparent overlays, contrast, Z slider, zoom/pan,
    cursor read-out and optional orthogonal XZ / YZ planes."""

    READ_ERRORS = READ_ERRORS
    message = pyqtSignal(str)   # read problems, shown in the status bar
    _slice_read = pyqtSignal(object)  # (z, planes, error) from the slice loader's thread
    _planes_read = pyqtSignal(object)  # ((path, sample), planes, error) from the plane loader

    def __init__(self, parent: QWidget | None = None) -> None:
        """Long because it builds the view's widgets and wires their signals in one place, in
        the order they appear on screen."""
        super().__init__(parent)
        self.source: ViewSource | None = None
        self.z = 0
        self.cross = (0, 0)                      # (y, x) where the orthogonal planes cut
        self.highlight: int | None = None        # object id drawn highlighted (ui.objects)
        self._plane: dict[str, np.ndarray] = {}  # raw arrays of the current Z slice, by layer
        self._ortho: tuple[dict, dict] | None = None  # raw XZ and YZ planes (they do not depend on z)
        self._ortho_for: tuple[Path, str] | None = None  # whose planes self._ortho holds
        self._ortho_waiting = False
        self._stride = 1
        self._rendering = False
        self._rgb: np.ndarray | None = None
        self._plane_z: int | None = None  # the Z that self._plane holds
        self._hover: tuple[int, int] | None = None  # the voxel under the cursor (read-out)
        self._refreshing = False  # reload() asked, its read not yet shown
        self.hold = False  # a stroke is being painted: arriving reads are dropped (re-read after it)
        self.shown: dict[SliceCanvas, tuple[dict, tuple[int, int]]] = {}  # planes drawn, stride
        self.styles = LayerStyles()
        view_settings.load_styles(self.styles)
        self._slice_read.connect(self._on_slice_read)
        self._planes_read.connect(self._on_planes_read)
        self._loader = NewestWinsLoader(self._emitter(self._slice_read), "slice-reader")
        self._plane_loader = NewestWinsLoader(self._emitter(self._planes_read), "plane-reader")

        self.canvas = SliceCanvas()
        self.canvas.setToolTip("Main view: wheel to zoom (or scroll Z, see View menu), drag to pan, "
                               "click to place the XZ/YZ planes")
        self.xz_canvas = SliceCanvas(scrollbars=False)
        self.yz_canvas = SliceCanvas(scrollbars=False)
        for ortho in (self.xz_canvas, self.yz_canvas):
            ortho.setVisible(False)
        self.xz_canvas.setToolTip("XZ plane through the crosshair (Z downwards); click to go there")
        self.yz_canvas.setToolTip("YZ plane through the crosshair (Z to the right); click to go there")
        self.layer_panel = LayerPanel(self.styles)
        self.layer_panel.setVisible(False)

        self.controls = ViewControls()
        c = self.controls
        self.z_slider, self.z_label, self.lo_box, self.hi_box = c.z_slider, c.z_label, c.lo_box, c.hi_box
        self.auto_button, self.reset_button, self.opacity = c.auto_button, c.reset_button, c.opacity
        self.ortho_box, self.fit_button, self.position_label = c.ortho_box, c.fit_button, c.position_label
        grid = QGridLayout()
        grid.addWidget(self.canvas, 0, 0)
        grid.addWidget(self.yz_canvas, 0, 1)
        grid.addWidget(self.xz_canvas, 1, 0)
        grid.addWidget(self.layer_panel, 0, 2, 2, 1)
        grid.setColumnStretch(0, 3)
        grid.setRowStretch(0, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(c.top)
        layout.addLayout(grid, 1)
        layout.addLayout(c.z_row)
        layout.addWidget(self.position_label)
        self.z_slider.valueChanged.connect(self.set_z)
        self.lo_box.valueChanged.connect(self._contrast_changed)
        self.hi_box.valueChanged.connect(self._contrast_changed)
        self.opacity.valueChanged.connect(self._render_all)
        self.layer_panel.changed.connect(self._render_all)
        self.auto_button.clicked.connect(self.auto_contrast)
        self.reset_button.clicked.connect(self.reset_contrast)
        self.ortho_box.toggled.connect(self._toggle_ortho)
        self.fit_button.clicked.connect(self.canvas.fit)
        self.canvas.hovered.connect(self._show_position)
        self.canvas.clicked.connect(self._place_cross)
        self.xz_canvas.clicked.connect(lambda z, x: self._navigate(z, self.cross[0], x))
        self.yz_canvas.clicked.connect(lambda y, z: self._navigate(z, y, self.cross[1]))
        self.canvas.zoomed.connect(lambda _scale: self._on_zoom())
        self.set_wheel_scrolls_z(view_settings.wheel_scrolls_z())
        for canvas in (self.canvas, self.xz_canvas, self.yz_canvas):
            canvas.wheelSteps.connect(lambda steps: self.set_z(self.z + steps))
        self._set_controls_enabled(False)

    def _emitter(self, signal):
        def deliver(key, result, error) -> None:
            try:
                signal.emit((key, result, error))
            except RuntimeError:  # the view was deleted meanwhile
                pass
        return deliver

    def _set_controls_enabled(self, on: bool) -> None:
        for widget in self.controls.widgets():
            widget.setEnabled(on)
        self.z_slider.setEnabled(on and self.source is not None and self.source.shape[0] > 1)

    def set_wheel_scrolls_z(self, on: bool) -> None:
        """The wheel scrolls Z (Ctrl+wheel zooms) instead of zooming."""
        for canvas in (self.canvas, self.xz_canvas, self.yz_canvas):
            canvas.wheel_scrolls = bool(on)

    # --- what is shown -------------------------------------------------------------------
    def show_sample(self, path: str | Path, sample: str, layers: list[str] | None = None) -> None:
        """Show ``sample`` of the dataset at ``path`` (middle slice, whole-volume contrast, or
        the contrast it had in the last session)."""
        with Dataset.open(path, check_samples=False) as ds:
            s = ds.sample(sample)
            shape = tuple(int(v) for v in s.shape)
            lo, hi = (float(v) for v in s.image_range)
            self.controls.whole_numbers = s.layer("image").dtype.kind in "iu"
        same = self.source is not None and self.source.path == Path(path) and \
            self.source.sample == sample and self.source.shape == shape
        self.source = ViewSource(Path(path), sample, shape, (lo, hi), list(layers or ["image"]))
        self.layer_panel.set_layers(self.source.layers)
        self.z_slider.blockSignals(True)
        self.z_slider.setRange(0, shape[0] - 1)
        if not same:
            self.z = shape[0] // 2
            self.cross = (shape[1] // 2, shape[2] // 2)
        self.z = min(self.z, shape[0] - 1)
        self.z_slider.setValue(self.z)
        self.z_slider.blockSignals(False)
        if not same:
            self.controls.set_contrast(*(view_settings.saved_contrast(path, sample) or (lo, hi)))
        self._set_controls_enabled(True)
        self.ortho_box.setEnabled(shape[0] > 1)
        self._reload(new_sample=not same)

    def set_layers(self, layers: list[str]) -> None:
        """Which layers are drawn ("image" and any label/prediction layers)."""
        if self.source is not None:
            self.source.layers = list(layers)
            self.layer_panel.set_layers(self.source.layers)
            view_settings.save_layers(self.source.path, self.source.sample, self.source.layers)
            self._reload(new_sample=False)

    def _reload(self, new_sample: bool) -> None:
        """Read what is shown again after the sample or its layers changed: synchronously for
        slices up to SYNC_SLICE_VOXELS, in the background above (a new sample's view stays
        empty until its slice arrives; new layers appear when read)."""
        _, y, x = self.source.shape
        if y * x <= SYNC_SLICE_VOXELS:
            self.refresh()
            return
        self._loader.invalidate()  # a read under way is for what was shown before
        self._show_z_label()
        if new_sample:
            self._plane, self._rgb = {}, None
            self.canvas.set_image(None)
        self._plane_z = None
        self._read_ortho()
        self._request_slice()

    def reload(self) -> None:
        """Read the shown planes again in the background (the file was edited); the old
        picture stays, and can be painted on, until they arrive."""
        if self.source is not None:
            self._refreshing = True
            self._request_slice()
            self._read_ortho()

    def showing(self, path: str | Path, sample: str | None = None) -> bool:
        """Whether the view shows (a sample of) the dataset at ``path``."""
        if self.source is None or Path(path) != self.source.path:
            return False
        return sample is None or sample == self.source.sample

    def clear(self) -> None:
        """Show nothing (the shown dataset or sample went away)."""
        self.source = None
        self._loader.invalidate()
        self._plane_loader.invalidate()
        self._plane, self._plane_z = {}, None
        self._ortho, self._ortho_waiting = None, False
        self._rgb, self._refreshing = None, False
        self.shown = {}
        for canvas in (self.canvas, self.xz_canvas, self.yz_canvas):
            canvas.set_image(None)
        self.z_label.setText("Z -")
        self.position_label.setText("")
        self._set_controls_enabled(False)

    def set_z(self, z: int) -> None:
        """Show slice ``z``: the label and markers move now, the slice is read in the
        background (see the module docstring); ``loading`` is True until it is shown."""
        if self.source is None:
            return
        self.z = int(np.clip(z, 0, self.source.shape[0] - 1))
        if self.z_slider.value() != self.z:
            self.z_slider.setValue(self.z)  # re-enters once through valueChanged
            return
        self._show_z_label()
        self._request_slice()

    @property
    def loading(self) -> bool:
        """True while the shown slice is not yet the one at ``z`` (a background read runs)."""
        return self.source is not None and (self._loader.busy or self._plane_z != self.z
                                            or self._ortho_waiting or self._refreshing)

    def shutdown(self) -> None:
        """Stop the reader threads (the window is closing); a read under way is abandoned."""
        self._loader.shutdown()
        self._plane_loader.shutdown()

    # --- reading -------------------------------------------------------------------------
    def _show_z_label(self) -> None:
        self.z_label.setText(f"Z {self.z} (0-{self.source.shape[0] - 1})")  # 0-based, like the crop dialog

    def _request_slice(self) -> None:
        """Read slice ``self.z`` in the background (the newest request wins)."""
        if self.source is None:
            return
        z, source = self.z, self._snapshot()
        region = (slice(z, z + 1), slice(None), slice(None))
        self._loader.request(z, lambda: self._read(region, source))

    def _snapshot(self) -> ViewSource:
        """A copy of what is shown, for a reader thread (the GUI thread may change it)."""
        return dataclasses.replace(self.source, layers=list(self.source.layers))

    def _on_slice_read(self, result) -> None:
        z, planes, error = result
        if self.source is None:
            return
        if self.hold:  # a stroke is drawn over the old planes; they are read again after it
            return
        self._refreshing = False
        if error is not None:
            if isinstance(error, READ_ERRORS):
                self._read_failed(error)
                return
            raise error
        self._plane, self._plane_z = {n: a[0] for n, a in planes.items()}, z
        self._render_all()  # (a newer Z asked for meanwhile is already queued in the loader)
        if self._hover is not None and all(np.less(self._hover, self._plane["image"].shape)):
            self._show_position(*self._hover)  # the read-out follows the new slice, not the old z

    def _read_failed(self, err: Exception) -> None:
        """The file changed under us (sample removed, file moved): show nothing rather than
        a stale or half-read picture, and say why in the status bar."""
        self.clear()
        self.message.emit(f"cannot show the sample: {err}")

    def _read(self, region: tuple[slice, slice, slice], source: ViewSource | None = None
              ) -> dict[str, np.ndarray]:
        """The image and the ticked layers in ``region``, keyed by layer ref (see
        :func:`ui.dataset_tree.split_ref`: a layer may come from another loaded file), of
        ``source`` (default: what is shown now)."""
        src = source or self.source
        wanted = [("image", src.path, "image")]
        for ref in src.layers:
            if ref != "image":
                layer, other = split_ref(ref)
                wanted.append((ref, other or src.path, layer))
        return read_planes(src.sample, wanted, region)

    def refresh(self, ortho: bool = True) -> None:
        """Re-read the visible planes from the file and redraw them (``ortho=False``: a Z
        change, the XZ / YZ planes are kept and only their Z marker moves)."""
        if self.source is None:
            return
        self._loader.invalidate()  # a background read started before this is out of date
        self._show_z_label()
        try:
            planes = self._read((slice(self.z, self.z + 1), slice(None), slice(None)))
            self._plane, self._plane_z = {n: a[0] for n, a in planes.items()}, self.z
            self._refreshing = False
            if ortho or (self._ortho is None and not self._ortho_waiting):
                self._read_ortho()
            self._render_all()
        except READ_ERRORS as err:
            self._read_failed(err)

    def _on_zoom(self) -> None:
        self._match_ortho_zoom()
        if not self._rendering and self.source is not None and self.canvas.stride() != self._stride:
            self._render_all()

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key_PageUp, Qt.Key_Up):
            self.set_z(self.z + 1)
        elif event.key() in (Qt.Key_PageDown, Qt.Key_Down):
            self.set_z(self.z - 1)
        else:
            super().keyPressEvent(event)

