"""The drawing part of :class:`ui.volume_view.VolumeView` (a mixin, kept apart by role):
composing the planes already read into RGB at the display stride, redrawing only the rectangle
an edit touched, and the full-resolution composition for screenshots."""

from __future__ import annotations

import numpy as np

from .layer_style import compose_planes
from .slice_canvas import SliceCanvas


class Drawing:
    """Needs the view's ``source``, ``styles``, ``canvas``/``xz_canvas``/``yz_canvas``, ``shown``,
    ``_plane``, ``_ortho`` and the contrast/opacity controls."""

    def _compose(self, planes: dict[str, np.ndarray]) -> np.ndarray:
        return compose_planes(planes, self.source.layers, self.styles,
                              (self.lo_box.value(), self.hi_box.value()), self.opacity.value() / 100.0,
                              highlight=self.highlight)

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
        self._draw(self.canvas, self._plane, (step, step))
        if self.ortho_box.isChecked() and self._ortho is not None and \
                self._ortho_for == (self.source.path, self.source.sample):
            # Z stays whole in the orthogonal planes (a few hundred slices at most).
            y, x = self.cross
            xz, yz = self._ortho
            self.xz_canvas.cross = (self._plane_z, x)
            self.xz_canvas.set_extent(xz["image"].shape)
            self._draw(self.xz_canvas, xz, (1, step))
            self.yz_canvas.cross = (y, self._plane_z)
            self.yz_canvas.set_extent(yz["image"].shape)
            self._draw(self.yz_canvas, yz, (step, 1))
            self._match_ortho_zoom()

    def _draw(self, canvas: SliceCanvas, planes: dict[str, np.ndarray], stride: tuple[int, int]) -> None:
        self.shown[canvas] = (planes, stride)
        canvas.set_image(self._compose(_strided(planes, *stride)), stride)

    def redraw_box(self, canvas: SliceCanvas, r0: int, r1: int, c0: int, c1: int) -> None:
        """Compose again only voxels rows r0:r1, cols c0:c1 of ``canvas`` (after an edit of
        its planes in place) and repaint that rectangle: a brush dab on a 4096² slice costs
        a few thousand pixels, not 16 million."""
        if canvas not in self.shown or self.source is None:
            return
        planes, (sr, sc) = self.shown[canvas]
        rows, cols = planes["image"].shape
        # display pixels covering the box, one more each side so outlines stay right inside it
        d0, d1 = max(r0 // sr - 1, 0), min(-(-r1 // sr) + 1, -(-rows // sr))
        e0, e1 = max(c0 // sc - 1, 0), min(-(-c1 // sc) + 1, -(-cols // sc))
        if d1 <= d0 or e1 <= e0:
            return
        cut = {n: a[d0 * sr:d1 * sr:sr, e0 * sc:e1 * sc:sc] for n, a in planes.items()}
        rgb = self._compose(cut)
        inner = (slice(min(1, d0), None if d1 == -(-rows // sr) else -1),
                 slice(min(1, e0), None if e1 == -(-cols // sc) else -1))
        canvas.update_patch(d0 + inner[0].start, e0 + inner[1].start, rgb[inner])
        self._rgb = None

    def current_rgb(self) -> np.ndarray | None:
        """The composed current slice at full resolution, uint8 (Y, X, 3)."""
        if self._rgb is None and self.source is not None and self._plane:
            self._rgb = self._compose(self._plane)
        return self._rgb


def _strided(planes: dict[str, np.ndarray], row_step: int, col_step: int) -> dict[str, np.ndarray]:
    """Every ``row_step``-th row and ``col_step``-th column of each plane."""
    if row_step == col_step == 1:
        return planes
    return {n: a[::row_step, ::col_step] for n, a in planes.items()}
