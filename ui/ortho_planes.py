"""The XZ / YZ part of :class:`ui.volume_view.VolumeView` (a mixin, kept apart by role):
reading the two planes through the crosshair in the background, matching their zoom to the
main view, and going where the user clicks in them."""

from __future__ import annotations


class OrthoPlanes:
    """Needs the view's ``source``, ``cross``, ``ortho_box``, ``canvas``, ``xz_canvas``,
    ``yz_canvas``, ``_plane_loader``, ``_read``, ``_snapshot``, ``_render_all``, ``set_z``."""

    def _read_ortho(self) -> None:
        """Read the XZ and YZ planes through the crosshair in the background (only while
        they are shown: a plane across every slice of a large volume touches many chunks)."""
        self._plane_loader.invalidate()
        self._ortho_waiting = False
        if not self.ortho_box.isChecked():
            self._ortho = None
            return
        if self.source is None:
            return
        (y, x), source = self.cross, self._snapshot()

        def job():
            xz = self._read((slice(None), slice(y, y + 1), slice(None)), source)
            yz = self._read((slice(None), slice(None), slice(x, x + 1)), source)
            # YZ drawn with Z along the horizontal axis so it sits beside the main view.
            return {n: a[:, 0, :] for n, a in xz.items()}, {n: a[:, :, 0].T for n, a in yz.items()}

        self._ortho_waiting = True
        self._plane_loader.request((source.path, source.sample), job)

    def _on_planes_read(self, result) -> None:
        whose, planes, error = result
        self._ortho_waiting = False
        if self.source is None or not self.ortho_box.isChecked() or self.hold:
            return
        if error is not None:
            if isinstance(error, self.READ_ERRORS):
                self._read_failed(error)
                return
            raise error
        self._ortho, self._ortho_for = planes, whose
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

    def _navigate(self, z: int, y: int, x: int) -> None:
        """A click in the XZ / YZ plane: go to that slice and put the crosshair there."""
        self.cross = (y, x)
        self._read_ortho()
        self.set_z(z)
        self._render_all()
