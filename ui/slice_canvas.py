"""A zoomable, pannable view of one 2D plane that reports where the cursor is."""

from __future__ import annotations

import numpy as np
from PyQt5.QtCore import QPoint, QPointF, Qt, pyqtSignal
from PyQt5.QtGui import QColor, QPainter, QPen, QPixmap, QTransform
from PyQt5.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget

from .render import to_qimage

ZOOM_STEP = 1.25
MAX_ZOOM = 64.0


class SliceCanvas(QGraphicsView):
    """Shows an RGB (rows, cols, 3) image; wheel zooms at the cursor, drag pans.

    ``hovered(row, col)`` gives the pixel under the cursor (-1, -1 outside the image);
    ``clicked(row, col)`` a click that did not pan (used to place the orthogonal planes).
    """

    hovered = pyqtSignal(int, int)
    clicked = pyqtSignal(int, int)
    zoomed = pyqtSignal(float)   # the new scale (screen pixels per voxel)

    def __init__(self, parent: QWidget | None = None, scrollbars: bool = True) -> None:
        super().__init__(parent)
        if not scrollbars:  # the small orthogonal planes: panning by drag is enough
            self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
            self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setScene(QGraphicsScene(self))
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.FastTransformation)  # voxels stay sharp when zoomed
        self.scene().addItem(self._item)
        self.setDragMode(QGraphicsView.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setMouseTracking(True)
        self.setBackgroundBrush(QColor(30, 30, 30))
        self.setRenderHint(QPainter.SmoothPixmapTransform, False)
        self._shape: tuple[int, int] | None = None
        self._press: QPoint | None = None
        self.cross: tuple[int, int] | None = None  # (row, col) drawn as a crosshair
        self._fitted = True  # follow the window size until the user zooms

    @property
    def image_shape(self) -> tuple[int, int] | None:
        return self._shape

    def set_extent(self, shape: tuple[int, int] | None) -> None:
        """The plane's size in voxels (rows, cols); a new size is fitted to the view.

        Called before the first image so the zoom (hence the display stride) is known.
        """
        if shape == self._shape:
            return
        self._shape = shape
        if shape is None:
            self._item.setPixmap(QPixmap())
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
        self._item.setPixmap(QPixmap.fromImage(to_qimage(rgb)))
        self._item.setTransform(QTransform.fromScale(stride[1], stride[0]))
        self.viewport().update()

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
        self.zoom(ZOOM_STEP if event.angleDelta().y() > 0 else 1 / ZOOM_STEP)

    def _pixel_at(self, pos: QPoint) -> tuple[int, int]:
        if self._shape is None:
            return -1, -1
        scene = self.mapToScene(pos)
        row, col = int(np.floor(scene.y())), int(np.floor(scene.x()))
        if 0 <= row < self._shape[0] and 0 <= col < self._shape[1]:
            return row, col
        return -1, -1

    def mouseMoveEvent(self, event) -> None:
        super().mouseMoveEvent(event)
        self.hovered.emit(*self._pixel_at(event.pos()))

    def leaveEvent(self, event) -> None:
        super().leaveEvent(event)
        self.hovered.emit(-1, -1)

    def mousePressEvent(self, event) -> None:
        self._press = event.pos()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        super().mouseReleaseEvent(event)
        if self._press is not None and (event.pos() - self._press).manhattanLength() < 4:
            row, col = self._pixel_at(event.pos())
            if row >= 0:
                self.clicked.emit(row, col)
        self._press = None

    def drawForeground(self, painter: QPainter, rect) -> None:
        if self.cross is None or self._shape is None:
            return
        row, col = self.cross
        pen = QPen(QColor(255, 255, 255, 110))
        pen.setCosmetic(True)  # one screen pixel wide at any zoom
        pen.setStyle(Qt.DashLine)
        painter.setPen(pen)
        painter.drawLine(QPointF(0, row + 0.5), QPointF(self._shape[1], row + 0.5))
        painter.drawLine(QPointF(col + 0.5, 0), QPointF(col + 0.5, self._shape[0]))
