"""A zoomable, pannable view of one 2D plane that reports where the cursor is.

The picture is a NumPy RGB array drawn through a QImage that shares its memory, so a brush
stroke redraws only the rectangle it dirtied (:meth:`SliceCanvas.update_patch`), not the
whole 4096² slice.
"""

from __future__ import annotations

import numpy as np
from PyQt5.QtCore import QPoint, QPointF, QRectF, Qt, pyqtSignal
from PyQt5.QtGui import QColor, QImage, QPainter, QPen
from PyQt5.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsView, QWidget

ZOOM_STEP = 1.25
MAX_ZOOM = 64.0


class _ArrayItem(QGraphicsItem):
    """Draws an RGB (rows, cols, 3) uint8 array, one pixel per ``stride`` voxels."""

    def __init__(self) -> None:
        super().__init__()
        self.rgb: np.ndarray | None = None
        self._image: QImage | None = None
        self.stride = (1, 1)

    def set_array(self, rgb: np.ndarray | None, stride: tuple[int, int]) -> None:
        self.prepareGeometryChange()
        self.rgb = None if rgb is None else np.ascontiguousarray(rgb)
        self.stride = stride
        self._image = None if self.rgb is None else QImage(
            self.rgb.data, self.rgb.shape[1], self.rgb.shape[0], 3 * self.rgb.shape[1],
            QImage.Format_RGB888)  # shares self.rgb's memory: kept alive by self.rgb
        self.update()

    def boundingRect(self) -> QRectF:
        if self.rgb is None:
            return QRectF()
        return QRectF(0, 0, self.rgb.shape[1] * self.stride[1], self.rgb.shape[0] * self.stride[0])

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if self._image is not None:
            painter.drawImage(self.boundingRect(), self._image)


class SliceCanvas(QGraphicsView):
    """Shows an RGB (rows, cols, 3) image; wheel zooms at the cursor, drag pans.

    ``hovered(row, col)`` gives the pixel under the cursor (-1, -1 outside the image);
    ``clicked(row, col)`` a click that did not pan (used to place the orthogonal planes).
    With ``tool_active`` (a paint tool is chosen) the left button emits ``pressed`` /
    ``dragged`` / ``released`` instead of panning; the middle button pans. ``wheelSteps(n)``
    replaces zooming when ``wheel_scrolls`` is on (Ctrl+wheel zooms then).
    """

    hovered = pyqtSignal(int, int)
    clicked = pyqtSignal(int, int)
    zoomed = pyqtSignal(float)   # the new scale (screen pixels per voxel)
    pressed = pyqtSignal(int, int)
    dragged = pyqtSignal(int, int)
    released = pyqtSignal(int, int)
    wheelSteps = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None, scrollbars: bool = True) -> None:
        super().__init__(parent)
        if not scrollbars:  # the small orthogonal planes: panning by drag is enough
            self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
            self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setScene(QGraphicsScene(self))
        self._item = _ArrayItem()
        self.scene().addItem(self._item)
        self.setDragMode(QGraphicsView.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setMouseTracking(True)
        self.setBackgroundBrush(QColor(30, 30, 30))
        self.setRenderHint(QPainter.SmoothPixmapTransform, False)
        self._shape: tuple[int, int] | None = None
        self._press: QPoint | None = None
        self._pan: QPoint | None = None
        self._painting = False
        self.cross: tuple[int, int] | None = None  # (row, col) drawn as a crosshair
        self.tool_active = False
        self.wheel_scrolls = False
        self.brush_size = 0          # > 0: a circle of this diameter follows the cursor
        self.rubber: tuple[int, int, int, int] | None = None  # (r0, c0, r1, c1) being drawn
        self._cursor: QPointF | None = None
        self._fitted = True  # follow the window size until the user zooms

    @property
    def image_shape(self) -> tuple[int, int] | None:
        return self._shape

    @property
    def rgb(self) -> np.ndarray | None:
        """The displayed array (one pixel per stride), or None."""
        return self._item.rgb

    def set_extent(self, shape: tuple[int, int] | None) -> None:
        """The plane's size in voxels (rows, cols); a new size is fitted to the view.

        Called before the first image so the zoom (hence the display stride) is known.
        """
        if shape == self._shape:
            return
        self._shape = shape
        if shape is None:
            self._item.set_array(None, (1, 1))
        else:
            self.scene().setSceneRect(0, 0, shape[1], shape[0])
            self.fit()
        self.viewport().update()

    def set_image(self, rgb: np.ndarray | None, stride: tuple[int, int] = (1, 1)) -> None:
        """Show ``rgb``, one pixel per ``stride`` = (rows, cols) voxels (scene units stay
        voxels, so zoom, cursor and crosshair do not depend on the stride)."""
        if rgb is None:
            self.set_extent(None)
            return
        if self._shape is None:
            self.set_extent((rgb.shape[0] * stride[0], rgb.shape[1] * stride[1]))
        self._item.set_array(rgb, stride)
        self.viewport().update()

    def update_patch(self, row: int, col: int, patch: np.ndarray) -> None:
        """Replace displayed pixels from (row, col) (display pixels, not voxels) by ``patch``
        (h, w, 3) and repaint only that rectangle."""
        rgb = self._item.rgb
        if rgb is None:
            return
        h, w = patch.shape[:2]
        rgb[row:row + h, col:col + w] = patch
        sr, sc = self._item.stride
        self._item.update(QRectF(col * sc, row * sr, w * sc, h * sr))

    def fit(self) -> None:
        if self._shape is not None:
            self.fitInView(self.sceneRect(), Qt.KeepAspectRatio)
            self._fitted = True
            self.zoomed.emit(self.transform().m11())

    def stride(self) -> int:
        """Voxels per displayed pixel worth computing at this zoom: 1, 2, 4... (a 4096² slice
        seen at 1/4 scale is composed at 1024², 16x less work)."""
        scale = self.transform().m11()
        step = 1
        while step * 2 * scale <= 1.0:
            step *= 2
        return step

    def zoom(self, factor: float) -> None:
        current = self.transform().m11()
        if current * factor > MAX_ZOOM or current * factor < 0.01:
            return
        self.scale(factor, factor)
        self._fitted = False
        self.zoomed.emit(self.transform().m11())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()

    def wheelEvent(self, event) -> None:
        up = event.angleDelta().y() > 0
        if self.wheel_scrolls and not event.modifiers() & Qt.ControlModifier:
            self.wheelSteps.emit(1 if up else -1)
        else:
            self.zoom(ZOOM_STEP if up else 1 / ZOOM_STEP)

    def set_tool_active(self, on: bool) -> None:
        self.tool_active = on
        self.setDragMode(QGraphicsView.NoDrag if on else QGraphicsView.ScrollHandDrag)
        self.viewport().setCursor(Qt.CrossCursor if on else Qt.OpenHandCursor)

    def pixel_at(self, pos: QPoint, clip: bool = True) -> tuple[int, int]:
        """The voxel (row, col) under a viewport position; (-1, -1) outside with ``clip``."""
        if self._shape is None:
            return -1, -1
        scene = self.mapToScene(pos)
        row, col = int(np.floor(scene.y())), int(np.floor(scene.x()))
        if not clip or (0 <= row < self._shape[0] and 0 <= col < self._shape[1]):
            return row, col
        return -1, -1

    def mouseMoveEvent(self, event) -> None:
        self._cursor = self.mapToScene(event.pos())
        if self._pan is not None:
            delta = event.pos() - self._pan
            self._pan = event.pos()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
        elif self._painting:
            self.dragged.emit(*self.pixel_at(event.pos(), clip=False))
        else:
            super().mouseMoveEvent(event)
        self.hovered.emit(*self.pixel_at(event.pos()))
        if self.brush_size or self.rubber:
            self.viewport().update()

    def leaveEvent(self, event) -> None:
        super().leaveEvent(event)
        self._cursor = None
        self.viewport().update()
        self.hovered.emit(-1, -1)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MiddleButton or (self.tool_active and event.button() == Qt.RightButton):
            self._pan = event.pos()
            return
        if self.tool_active and event.button() == Qt.LeftButton:
            row, col = self.pixel_at(event.pos())
            if row >= 0:
                self._painting = True
                self.pressed.emit(row, col)
            return
        self._press = event.pos()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._pan is not None:
            self._pan = None
            return
        if self._painting:
            self._painting = False
            self.released.emit(*self.pixel_at(event.pos(), clip=False))
            return
        super().mouseReleaseEvent(event)
        if self._press is not None and (event.pos() - self._press).manhattanLength() < 4:
            row, col = self.pixel_at(event.pos())
            if row >= 0:
                self.clicked.emit(row, col)
        self._press = None

    def drawForeground(self, painter: QPainter, rect) -> None:
        if self._shape is None:
            return
        if self.cross is not None:
            row, col = self.cross
            # A dark line under a bright one: visible on white membranes and black background.
            for colour, width in ((QColor(0, 0, 0, 200), 3), (QColor(255, 230, 0), 1)):
                pen = QPen(colour, width)
                pen.setCosmetic(True)  # screen pixels wide at any zoom
                painter.setPen(pen)
                painter.drawLine(QPointF(0, row + 0.5), QPointF(self._shape[1], row + 0.5))
                painter.drawLine(QPointF(col + 0.5, 0), QPointF(col + 0.5, self._shape[0]))
        pen = QPen(QColor(255, 255, 255, 220), 1)
        pen.setCosmetic(True)
        painter.setPen(pen)
        if self.rubber is not None:
            r0, c0, r1, c1 = self.rubber
            painter.drawRect(QRectF(min(c0, c1), min(r0, r1), abs(c1 - c0) + 1, abs(r1 - r0) + 1))
        if self.brush_size and self._cursor is not None:
            radius = self.brush_size / 2
            centre = QPointF(np.floor(self._cursor.x()) + 0.5, np.floor(self._cursor.y()) + 0.5)
            painter.drawEllipse(centre, radius, radius)
