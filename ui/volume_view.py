"""The main view (control 15) with its Z selector (control 14).

Reads only what is on screen: the current Z slice of the image and of each checked layer
(plus one XZ and one YZ plane when the orthogonal views are on), through
``Sample.read_layer(layer, region)``; so a volume far larger than RAM opens instantly.
The file is opened for each read and closed again, so the view never holds a handle a
worker would need for writing.

Z changes (slider, Page Up/Down) read the new slice on a background thread, so the window
stays responsive while a large slice (16k x 16k) comes off the disk: the Z label follows
the slider at once, the picture when its slice is read. While one read runs, further Z
changes only remember the newest Z, which is read next (dragging the slider across a
thousand slices reads a handful, not a thousand). The XZ / YZ planes (a plane across every
slice of a large volume touches many chunks) are read on a second background thread the
same way: the old planes stay until the new ones arrive. A new sample or a change of the
ticked layers is read synchronously when its slices are small (up to
``SYNC_SLICE_VOXELS``, where reading takes a few tens of milliseconds), in the background
above that.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from deepscem.dataset import Dataset
from deepscem.errors import DeepScemError

from .dataset_tree import split_ref
from .render import compose, layer_colour, outline, to_grey
from .slice_canvas import SliceCanvas

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


class VolumeView(QWidget):
    """Grey image + coloured semi-transparent overlays, contrast, Z slider, zoom/pan,
    cursor read-out and optional orthogonal XZ / YZ planes."""

    message = pyqtSignal(str)   # read problems, shown in the status bar
    _slice_read = pyqtSignal(object)  # (ticket, z, Future) from the reader thread
    _planes_read = pyqtSignal(object)  # (ticket, (path, sample), Future) from the plane reader

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source: ViewSource | None = None
        self.z = 0
        self.cross = (0, 0)                      # (y, x) where the orthogonal planes cut
        self._plane: dict[str, np.ndarray] = {}  # raw arrays of the current Z slice, by layer
        self._ortho: tuple[dict, dict] | None = None
        self._stride = 1
        self._rendering = False  # raw XZ and YZ planes (they do not depend on z)
        self._rgb: np.ndarray | None = None
        self._plane_z: int | None = None  # the Z that self._plane holds
        # Background Z reads: one thread; `_ticket` changes whenever what is shown changes
        # (sample, layers, a synchronous refresh), so a read started before is dropped.
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slice-reader")
        self._ticket = 0
        self._in_flight = False
        self._slice_read.connect(self._on_slice_read)
        self._plane_reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plane-reader")
        self._ortho_ticket = 0
        self._ortho_for: tuple[Path, str] | None = None  # whose planes self._ortho holds
        self._ortho_in_flight = False
        self._ortho_pending = False
        self._planes_read.connect(self._on_planes_read)

        self.canvas = SliceCanvas()
        self.canvas.setToolTip("Main view: wheel to zoom, drag to pan, click to place the XZ/YZ planes")
        self.xz_canvas = SliceCanvas(scrollbars=False)
        self.yz_canvas = SliceCanvas(scrollbars=False)
        for ortho in (self.xz_canvas, self.yz_canvas):
            ortho.setVisible(False)
        self.xz_canvas.setToolTip("XZ plane through the crosshair (Z downwards)")
        self.yz_canvas.setToolTip("YZ plane through the crosshair (Z to the right)")

        self.z_slider = QSlider(Qt.Horizontal)
        self.z_slider.setToolTip("Z selector: the slice shown (also Page Up / Page Down)")
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
            box.setMaximumWidth(110)
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
                                  "reads a plane across all slices)")
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Zoom to fit the slice in the view")
        self.position_label = QLabel("")
        self.position_label.setTextInteractionFlags(Qt.TextSelectableByMouse)

        self._build_layout()
        self.z_slider.valueChanged.connect(self.set_z)
        self.lo_box.valueChanged.connect(self._render_all)
        self.hi_box.valueChanged.connect(self._render_all)
        self.opacity.valueChanged.connect(self._render_all)
        self.auto_button.clicked.connect(self.auto_contrast)
        self.reset_button.clicked.connect(self.reset_contrast)
        self.ortho_box.toggled.connect(self._toggle_ortho)
        self.fit_button.clicked.connect(self.canvas.fit)
        self.canvas.hovered.connect(self._show_position)
        self.canvas.clicked.connect(self._place_cross)
        self.canvas.zoomed.connect(lambda _scale: self._on_zoom())
        self._set_controls_enabled(False)

    def _build_layout(self) -> None:
        grid = QGridLayout()
        grid.addWidget(self.canvas, 0, 0)
        grid.addWidget(self.yz_canvas, 0, 1)
        grid.addWidget(self.xz_canvas, 1, 0)
        grid.setColumnStretch(0, 3)
        grid.setRowStretch(0, 3)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Contrast"))
        controls.addWidget(self.lo_box)
        controls.addWidget(self.hi_box)
        controls.addWidget(self.auto_button)
        controls.addWidget(self.reset_button)
        controls.addSpacing(12)
        controls.addWidget(QLabel("Overlay"))
        controls.addWidget(self.opacity)
        controls.addWidget(self.ortho_box)
        controls.addWidget(self.fit_button)
        controls.addStretch(1)
        z_row = QHBoxLayout()
        z_row.addWidget(self.z_label)
        z_row.addWidget(self.z_slider, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(grid, 1)
        layout.addLayout(z_row)
        layout.addWidget(self.position_label)

    def _set_controls_enabled(self, on: bool) -> None:
        for widget in (self.lo_box, self.hi_box, self.auto_button, self.reset_button, self.ortho_box,
                       self.fit_button, self.opacity):
            widget.setEnabled(on)
        self.z_slider.setEnabled(on and self.source is not None and self.source.shape[0] > 1)

    # --- what is shown -------------------------------------------------------------------
    def show_sample(self, path: str | Path, sample: str, layers: list[str] | None = None) -> None:
        """Show ``sample`` of the dataset at ``path`` (middle slice, whole-volume contrast)."""
        with Dataset.open(path, check_samples=False) as ds:
            s = ds.sample(sample)
            shape = tuple(int(v) for v in s.shape)
            lo, hi = (float(v) for v in s.image_range)
        same = self.source is not None and self.source.path == Path(path) and \
            self.source.sample == sample and self.source.shape == shape
        self.source = ViewSource(Path(path), sample, shape, (lo, hi), list(layers or ["image"]))
        self.z_slider.blockSignals(True)
        self.z_slider.setRange(0, shape[0] - 1)
        if not same:
            self.z = shape[0] // 2
            self.cross = (shape[1] // 2, shape[2] // 2)
        self.z = min(self.z, shape[0] - 1)
        self.z_slider.setValue(self.z)
        self.z_slider.blockSignals(False)
        if not same:
            self._set_contrast(lo, hi)
        self._set_controls_enabled(True)
        self.ortho_box.setEnabled(shape[0] > 1)
        self._reload(new_sample=not same)

    def set_layers(self, layers: list[str]) -> None:
        """Which layers are drawn ("image" and any label/prediction layers)."""
        if self.source is not None:
            self.source.layers = list(layers)
            self._reload(new_sample=False)

    def _reload(self, new_sample: bool) -> None:
        """Read what is shown again after the sample or its layers changed: synchronously for
        slices up to SYNC_SLICE_VOXELS, in the background above (a new sample's view stays
        empty until its slice arrives; new layers appear when read)."""
        _, y, x = self.source.shape
        if y * x <= SYNC_SLICE_VOXELS:
            self.refresh()
            return
        self._ticket += 1  # a read under way is for what was shown before
        self._show_z_label()
        if new_sample:
            self._plane, self._rgb = {}, None
            self.canvas.set_image(None)
        self._plane_z = None
        self._read_ortho()
        self._request_slice()

    def showing(self, path: str | Path, sample: str | None = None) -> bool:
        """Whether the view shows (a sample of) the dataset at ``path``."""
        if self.source is None or Path(path) != self.source.path:
            return False
        return sample is None or sample == self.source.sample

    def clear(self) -> None:
        """Show nothing (the shown dataset or sample went away)."""
        self.source = None
        self._ticket += 1
        self._plane, self._plane_z = {}, None
        self._ortho = None
        self._rgb = None
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
        return self.source is not None and (self._in_flight or self._plane_z != self.z
                                            or self._ortho_in_flight)

    def shutdown(self) -> None:
        """Stop the reader thread (the window is closing); a read under way is abandoned."""
        self._ticket += 1
        self._ortho_ticket += 1
        self._reader.shutdown(wait=False, cancel_futures=True)
        self._plane_reader.shutdown(wait=False, cancel_futures=True)

    # --- reading and drawing -------------------------------------------------------------
    def _show_z_label(self) -> None:
        self.z_label.setText(f"Z {self.z} (0-{self.source.shape[0] - 1})")  # 0-based, like the crop dialog

    def _request_slice(self) -> None:
        """Read slice ``self.z`` on the reader thread, unless a read is under way (then the
        newest Z is read when it ends)."""
        if self._in_flight or self.source is None:
            return
        z, source = self.z, self._snapshot()
        region = (slice(z, z + 1), slice(None), slice(None))
        # Set before submitting: a read that ends at once reports before submit returns.
        self._in_flight = True
        if not self._submit(self._reader, self._slice_read, (self._ticket, z),
                            lambda: self._read(region, source)):
            self._in_flight = False

    def _snapshot(self) -> ViewSource:
        """A copy of what is shown, for a reader thread (the GUI thread may change it)."""
        return dataclasses.replace(self.source, layers=list(self.source.layers))

    @staticmethod
    def _submit(reader: ThreadPoolExecutor, signal, tag: tuple, job) -> bool:
        """Run ``job`` on ``reader``; ``signal`` receives ``(*tag, future)`` on the GUI thread
        when it ends. False when the reader is shut down (the window is closing)."""
        def emit(future: Future) -> None:
            try:
                signal.emit((*tag, future))
            except RuntimeError:  # the view was deleted meanwhile
                pass

        try:
            reader.submit(job).add_done_callback(emit)
        except RuntimeError:
            return False
        return True

    def _on_slice_read(self, result) -> None:
        ticket, z, future = result
        self._in_flight = False
        if ticket != self._ticket or self.source is None:
            self._request_if_behind()
            return
        try:
            planes = future.result()
        except READ_ERRORS as err:
            self._read_failed(err)
            return
        self._plane, self._plane_z = {n: a[0] for n, a in planes.items()}, z
        self._render_all()
        self._request_if_behind()

    def _read_failed(self, err: Exception) -> None:
        """The file changed under us (sample removed, file moved): show nothing rather than
        a stale or half-read picture, and say why in the status bar."""
        self.clear()
        self.message.emit(f"cannot show the sample: {err}")

    def _request_if_behind(self) -> None:
        if self.source is not None and self._plane_z != self.z:
            self._request_slice()

    def _read(self, region: tuple[slice, slice, slice], source: ViewSource | None = None
              ) -> dict[str, np.ndarray]:
        """The image and the ticked layers in ``region``, keyed by layer ref (see
        :func:`ui.dataset_tree.split_ref`: a layer may come from another loaded file), of
        ``source`` (default: what is shown now)."""
        src = source or self.source
        by_file: dict[Path, list[tuple[str, str]]] = {src.path: [("image", "image")]}
        for ref in src.layers:
            if ref != "image":
                layer, other = split_ref(ref)
                by_file.setdefault(other or src.path, []).append((ref, layer))
        planes = {}
        for path, wanted in by_file.items():
            with Dataset.open(path, check_samples=False) as ds:
                s = ds.sample(src.sample)
                present = set(s.layer_names())
                planes.update({ref: np.asarray(s.read_layer(layer, region))
                               for ref, layer in wanted if layer in present})
        return planes

    def refresh(self, ortho: bool = True) -> None:
        """Re-read the visible planes from the file and redraw them (``ortho=False``: a Z
        change, the XZ / YZ planes are kept and only their Z marker moves)."""
        if self.source is None:
            return
        self._ticket += 1  # a background read started before this is out of date
        self._show_z_label()
        try:
            planes = self._read((slice(self.z, self.z + 1), slice(None), slice(None)))
            self._plane, self._plane_z = {n: a[0] for n, a in planes.items()}, self.z
            if ortho or (self._ortho is None and not self._ortho_in_flight):
                self._read_ortho()
            self._render_all()
        except READ_ERRORS as err:
            self._read_failed(err)

    def _read_ortho(self) -> None:
        """Read the XZ and YZ planes through the crosshair in the background (only while
        they are shown: a plane across every slice of a large volume touches many chunks)."""
        self._ortho_ticket += 1  # a read under way is out of date
        if not self.ortho_box.isChecked():
            self._ortho = None
            return
        self._request_planes()

    def _request_planes(self) -> None:
        if self.source is None:
            return
        if self._ortho_in_flight:
            self._ortho_pending = True  # read again when this one ends
            return
        self._ortho_pending = False
        (y, x), source = self.cross, self._snapshot()

        def job():
            xz = self._read((slice(None), slice(y, y + 1), slice(None)), source)
            yz = self._read((slice(None), slice(None), slice(x, x + 1)), source)
            # YZ drawn with Z along the horizontal axis so it sits beside the main view.
            return {n: a[:, 0, :] for n, a in xz.items()}, {n: a[:, :, 0].T for n, a in yz.items()}

        self._ortho_in_flight = True  # before submitting, as in _request_slice
        if not self._submit(self._plane_reader, self._planes_read,
                            (self._ortho_ticket, (source.path, source.sample)), job):
            self._ortho_in_flight = False

    def _on_planes_read(self, result) -> None:
        ticket, whose, future = result
        self._ortho_in_flight = False
        if ticket == self._ortho_ticket and self.source is not None and self.ortho_box.isChecked():
            try:
                self._ortho, self._ortho_for = future.result(), whose
            except READ_ERRORS as err:
                self._read_failed(err)
                return
            self._render_all()
        elif self._ortho_pending and self.ortho_box.isChecked():
            self._request_planes()

    def _compose(self, planes: dict[str, np.ndarray]) -> np.ndarray:
        lo, hi = self.lo_box.value(), self.hi_box.value()
        src = self.source
        if "image" in src.layers:
            grey = to_grey(planes["image"], lo, hi)
        else:
            grey = np.zeros(planes["image"].shape, np.uint8)
        shown = [n for n in src.layers if n != "image" and n in planes]
        # Labels next to a prediction are drawn as outlines, so the prediction's fill does
        # not hide the reference it is compared with.
        compare = any(split_ref(n)[0].startswith("prediction_") for n in shown)
        fills, outlines = [], []
        for n in shown:
            layer = split_ref(n)[0]
            if compare and layer.startswith("label_") and not layer.endswith("_dt"):
                outlines.append((outline(planes[n]), layer_colour(layer), 1.0))  # opaque, on top
            else:
                fills.append((planes[n], layer_colour(layer)))
        return compose(grey, fills + outlines, self.opacity.value() / 100.0)

    def _render_all(self, *_args) -> None:
        """Redraw from the planes already read (contrast, opacity, Z marker changes).

        Composed at the display stride: never more pixels than the screen shows.
        """
        if self.source is None or not self._plane:
            return
        self._rendering = True  # a fit inside set_extent must not start a second render
        try:
            self.canvas.set_extent(self._plane["image"].shape)
        finally:
            self._rendering = False
        step = self._stride = self.canvas.stride()
        self._rgb = None  # full-resolution composition is made on demand (current_rgb)
        self.canvas.cross = (self.cross[0], self.cross[1]) if self.ortho_box.isChecked() else None
        self.canvas.set_image(self._compose(_strided(self._plane, step, step)), (step, step))
        if self.ortho_box.isChecked() and self._ortho is not None and \
                self._ortho_for == (self.source.path, self.source.sample):
            # Z stays whole in the orthogonal planes (a few hundred slices at most).
            y, x = self.cross
            xz, yz = self._ortho
            self.xz_canvas.cross = (self._plane_z, x)
            self.xz_canvas.set_extent(xz["image"].shape)
            self.xz_canvas.set_image(self._compose(_strided(xz, 1, step)), (1, step))
            self.yz_canvas.cross = (y, self._plane_z)
            self.yz_canvas.set_extent(yz["image"].shape)
            self.yz_canvas.set_image(self._compose(_strided(yz, step, 1)), (step, 1))
            self._match_ortho_zoom()

    def _on_zoom(self) -> None:
        self._match_ortho_zoom()
        if not self._rendering and self.source is not None and self.canvas.stride() != self._stride:
            self._render_all()

    def _match_ortho_zoom(self) -> None:
        """Give the orthogonal planes the main view's zoom, so a voxel is the same size in
        all three and the planes line up with the main view's axes."""
        if self.source is None or not self.ortho_box.isChecked():
            return
        scale = self.canvas.transform().m11()
        z_px = int(self.source.shape[0] * scale) + 6
        for ortho in (self.xz_canvas, self.yz_canvas):
            ortho.resetTransform()
            ortho.scale(scale, scale)
            ortho.centerOn(ortho.sceneRect().center())
        self.xz_canvas.setFixedHeight(min(max(z_px, 40), 260))
        self.yz_canvas.setFixedWidth(min(max(z_px, 40), 260))

    def _toggle_ortho(self, on: bool) -> None:
        self.xz_canvas.setVisible(on)
        self.yz_canvas.setVisible(on)
        if self.source is not None:
            self._read_ortho()  # in the background; the Z slice shown stays as it is
            self._render_all()

    def _place_cross(self, row: int, col: int) -> None:
        self.cross = (row, col)
        if self.ortho_box.isChecked():
            self._read_ortho()
            self._render_all()  # the crosshair moves now, the planes when they are read

    # --- contrast ------------------------------------------------------------------------
    def _set_contrast(self, lo: float, hi: float) -> None:
        for box, value in ((self.lo_box, lo), (self.hi_box, hi)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
        step = max((hi - lo) / 100.0, 1e-3)
        self.lo_box.setSingleStep(step)
        self.hi_box.setSingleStep(step)

    def auto_contrast(self) -> None:
        if "image" not in self._plane:
            return
        lo, hi = np.percentile(self._plane["image"], (0.5, 99.5))
        self._set_contrast(float(lo), float(max(hi, lo + 1e-6)))
        self._render_all()

    def reset_contrast(self) -> None:
        if self.source is not None:
            self._set_contrast(*self.source.image_range)
            self._render_all()

    # --- cursor read-out and export ------------------------------------------------------
    def _show_position(self, row: int, col: int) -> None:
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

    def current_rgb(self) -> np.ndarray | None:
        """The composed current slice at full resolution, uint8 (Y, X, 3)."""
        if self._rgb is None and self.source is not None and self._plane:
            self._rgb = self._compose(self._plane)
        return self._rgb

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key_PageUp, Qt.Key_Up):
            self.set_z(self.z + 1)
        elif event.key() in (Qt.Key_PageDown, Qt.Key_Down):
            self.set_z(self.z - 1)
        else:
            super().keyPressEvent(event)


def _strided(planes: dict[str, np.ndarray], row_step: int, col_step: int) -> dict[str, np.ndarray]:
    """Every ``row_step``-th row and ``col_step``-th column of each plane."""
    if row_step == col_step == 1:
        return planes
    return {n: a[::row_step, ::col_step] for n, a in planes.items()}
