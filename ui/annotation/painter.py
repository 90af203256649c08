"""Mouse strokes on the view's canvases turned into label edits.

While a stroke is drawn only memory changes: the dab is stamped into a stroke mask and into
the displayed plane, and just the dirty rectangle is composed again
(:meth:`ui.volume_view.VolumeView.redraw_box`). On release the stroke's bounding box is
written to the file in one call of :func:`deepscem.dataset.editing.paint` (chunk by chunk,
flushed), recorded for undo, and the view re-reads its planes in the background.

Canvases: the XY view paints ``Plane(0, z)``; the XZ plane ``Plane(1, y)`` (rows Z, cols X);
the YZ plane is drawn transposed (rows Y, cols Z) and paints ``Plane(2, x)``.
"""

from __future__ import annotations

import time

import numpy as np
from PyQt5.QtCore import QObject, pyqtSignal

from deepscem.dataset import Dataset, editing
from deepscem.dataset.editing import EditHistory, Plane
from deepscem.dataset.layers import ANNOTATED, label_name
from deepscem.errors import DeepScemError

from .brush import stamp, stamp_segment

TOOLS = ("navigate", "brush", "eraser", "fill", "rect")
MAX_BRUSH = 512


class PaintController(QObject):
    """The painting state (tool, brush size, label) and the strokes in progress.

    ``changed`` when the tool, size, label or history changes; ``edited(text)`` after an
    edit was written (for the status bar); ``failed(text)`` when it could not be;
    ``layerWanted(path, sample, layer)`` asks for a layer to be ticked (shown).
    """

    changed = pyqtSignal()
    edited = pyqtSignal(str)
    failed = pyqtSignal(str)
    layerWanted = pyqtSignal(str, str, str)

    def __init__(self, view, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.history = EditHistory(limit=100)
        self.tool = "navigate"
        self.size = 9
        self.label = 0
        self.latencies_ms: list[float] = []  # file write per stroke (bench/gui.py reads them)
        self._stroke: dict | None = None
        for canvas in self.canvases():
            canvas.pressed.connect(lambda r, c, cv=canvas: self._press(cv, r, c))
            canvas.dragged.connect(lambda r, c, cv=canvas: self._drag(cv, r, c))
            canvas.released.connect(lambda r, c, cv=canvas: self._release(cv, r, c))

    def canvases(self) -> tuple:
        return self.view.canvas, self.view.xz_canvas, self.view.yz_canvas

    # --- state ---------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(tool)
        self.tool = tool
        for canvas in self.canvases():
            canvas.set_tool_active(tool != "navigate")
        self._show_brush()
        if tool != "navigate":
            self._want_label()
        self.changed.emit()

    def set_size(self, size: int) -> None:
        self.size = int(np.clip(size, 1, MAX_BRUSH))
        self._show_brush()
        self.changed.emit()

    def grow(self, bigger: bool) -> None:
        """``]`` / ``[``: about 25 % per press, at least one pixel."""
        self.set_size(max(self.size + 1, round(self.size * 1.25)) if bigger
                      else min(self.size - 1, round(self.size / 1.25)))

    def set_label(self, index: int) -> None:
        self.label = max(0, int(index))
        self._want_label()
        self.changed.emit()

    @property
    def layer(self) -> str:
        return label_name(self.label)

    def _show_brush(self) -> None:
        for canvas in self.canvases():
            canvas.brush_size = self.size if self.tool in ("brush", "eraser") else 0
            canvas.viewport().update()

    def _want_label(self) -> None:
        src = self.view.source
        if src is not None and self.layer not in src.layers:
            self.layerWanted.emit(str(src.path), src.sample, self.layer)

    # --- where a canvas paints -----------------------------------------------------------
    def _plane_of(self, canvas) -> tuple[Plane, bool] | None:
        """(plane, transposed) painted by ``canvas``, None while its picture is out of date."""
        view = self.view
        if canvas is view.canvas:
            return (Plane(0, view.z), False) if view._plane_z == view.z else None
        y, x = view.cross
        return (Plane(1, y), False) if canvas is view.xz_canvas else (Plane(2, x), True)

    def _planes(self, canvas) -> dict | None:
        """The displayed planes of ``canvas`` holding the label being painted, or None."""
        shown = self.view.shown.get(canvas)
        if shown is None or self.layer not in shown[0]:
            self._want_label()
            shown = self.view.shown.get(canvas)
        if shown is None or self.layer not in shown[0]:
            src = self.view.source
            with Dataset.open(src.path, check_samples=False) as ds:
                present = self.layer in ds.sample(src.sample).group
            if present:  # ticked, read in the background (a large slice)
                self.edited.emit(f"showing {self.layer} first; paint again when it is drawn")
            else:
                self.failed.emit(f"{src.path.name}, sample {src.sample!r} has no {self.layer} (a "
                                 "prediction file?): paint in the dataset file, or choose another label")
            return None
        return shown[0]

    # --- strokes -------------------------------------------------------------------------
    def _press(self, canvas, row: int, col: int) -> None:
        if self.view.source is None or self.tool == "navigate":
            return
        where = self._plane_of(canvas)
        if where is None:
            return
        if self.tool == "rect":
            self._stroke = {"canvas": canvas, "where": where, "start": (row, col)}
            canvas.rubber = (row, col, row, col)
            return
        planes = self._planes(canvas)
        if planes is None:
            return
        if self.tool == "fill":
            self._fill(canvas, where, planes, row, col)
            return
        self.view.hold = True
        mask = np.zeros(planes[self.layer].shape, bool)
        self._stroke = {"canvas": canvas, "where": where, "planes": planes, "mask": mask,
                        "value": 1 if self.tool == "brush" else 0, "last": (row, col), "box": None}
        self._dab(stamp(mask, row, col, self.size))

    def _drag(self, canvas, row: int, col: int) -> None:
        stroke = self._stroke
        if stroke is None or stroke["canvas"] is not canvas:
            return
        if "mask" not in stroke:  # the rectangle tool
            canvas.rubber = (*stroke["start"], row, col)
            canvas.viewport().update()
            return
        box = stamp_segment(stroke["mask"], stroke["last"], (row, col), self.size)
        stroke["last"] = (row, col)
        self._dab(box)

    def _dab(self, box) -> None:
        """Show a dab: the plane's values under it change in memory, and only its box is redrawn."""
        stroke = self._stroke
        if box is None:
            return
        r0, r1, c0, c1 = box
        cut = stroke["mask"][r0:r1, c0:c1]
        planes = stroke["planes"]
        planes[self.layer][r0:r1, c0:c1][cut] = stroke["value"]
        if ANNOTATED in planes:
            planes[ANNOTATED][r0:r1, c0:c1][cut] = 1
        old = stroke["box"]
        stroke["box"] = box if old is None else (min(old[0], r0), max(old[1], r1),
                                                 min(old[2], c0), max(old[3], c1))
        self.view.redraw_box(stroke["canvas"], r0, r1, c0, c1)

    def _release(self, canvas, row: int, col: int) -> None:
        stroke, self._stroke = self._stroke, None
        if stroke is None or stroke["canvas"] is not canvas:
            return
        if "mask" not in stroke:
            canvas.rubber = None
            canvas.viewport().update()
            (r0, c0), (r1, c1) = stroke["start"], (row, col)
            rows = slice(max(min(r0, r1), 0), max(r0, r1) + 1)
            cols = slice(max(min(c0, c1), 0), max(c0, c1) + 1)
            self._commit(stroke["where"], rows, cols, None, "rectangle marked annotated")
            return
        self.view.hold = False
        if stroke["box"] is None:
            return
        r0, r1, c0, c1 = stroke["box"]
        what = "stroke" if stroke["value"] else "eraser stroke"
        self._commit(stroke["where"], slice(r0, r1), slice(c0, c1),
                     (stroke["mask"][r0:r1, c0:c1], stroke["value"]), what)

    def _fill(self, canvas, where, planes, row: int, col: int) -> None:
        plane = planes[self.layer]
        (r0, c0), mask = editing.fill_region(plane, (row, col))
        rows, cols = slice(r0, r0 + mask.shape[0]), slice(c0, c0 + mask.shape[1])
        plane[rows, cols][mask] = 1
        self.view.redraw_box(canvas, rows.start, rows.stop, cols.start, cols.stop)
        self._commit(where, rows, cols, (mask, 1), "fill")

    def _commit(self, where, rows: slice, cols: slice, paint, what: str) -> None:
        """Write one edit: ``paint`` = (mask, value) over rows x cols of the canvas plane, or
        None to mark that rectangle annotated."""
        plane, transposed = where
        src = self.view.source
        if transposed:  # the YZ canvas shows rows Y, cols Z; the plane is rows Z, cols Y
            rows, cols = cols, rows
            paint = None if paint is None else (paint[0].T, paint[1])
        start = time.perf_counter()
        try:
            if paint is None:
                patch = editing.mark_annotated(src.path, src.sample, plane.box(rows, cols), what=what)
            else:
                patch = editing.paint(src.path, src.sample, self.layer, plane, (rows.start, cols.start),
                                      paint[0], paint[1], what=what)
        except (DeepScemError, OSError) as err:
            self.failed.emit(f"{what} not saved: {err}")
            self.view.reload()  # show what the file holds
            return
        took = (time.perf_counter() - start) * 1000
        self.latencies_ms.append(took)
        self.history.push(patch)
        self.view.reload()
        self.edited.emit(f"{what}: {'saved' if patch else 'nothing changed'} ({took:.0f} ms)")
        self.changed.emit()

    # --- whole-slice actions and history --------------------------------------------------
    def mark_slice(self) -> None:
        """Mark the shown Z slice annotated: its labels are checked, the rest is background."""
        src = self.view.source
        if src is None:
            raise DeepScemError("select a sample to show first")
        self._commit((Plane(0, self.view.z), False), slice(0, src.shape[1]), slice(0, src.shape[2]),
                     None, f"slice {self.view.z} marked annotated")

    def record(self, patch, what: str) -> None:
        """An edit made elsewhere (use prediction as label): undoable here, shown at once."""
        self.history.push(patch)
        self.view.reload()
        self.edited.emit(what)
        self.changed.emit()

    def undo(self) -> None:
        self._replay(self.history.undo, "undone")

    def redo(self) -> None:
        self._replay(self.history.redo, "redone")

    def _replay(self, step, word: str) -> None:
        if self._stroke is not None:
            return
        patch = step()
        if patch is None:
            self.edited.emit(f"nothing to be {word}")
            return
        if self.view.showing(patch.path, patch.sample):
            self.view.reload()
        self.edited.emit(f"{patch.what} {word}")
        self.changed.emit()
