"""A small live line plot (QPainter): loss and validation loss during training."""

from __future__ import annotations

import math

from PyQt5.QtCore import QPointF, QRectF, Qt
from PyQt5.QtGui import QColor, QPainter, QPainterPath, QPen
from PyQt5.QtWidgets import QSizePolicy, QWidget

SERIES_COLOURS = {"loss": QColor(0, 114, 178), "val_loss": QColor(213, 94, 0)}


class LossPlot(QWidget):
    """Series of (x, y) points drawn with shared axes, a legend and tick labels."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.x_label = "step"
        self.setMinimumSize(420, 220)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)

    def add(self, name: str, x: float, y: float) -> None:
        if y is None or not math.isfinite(float(y)):
            return
        self.series.setdefault(name, []).append((float(x), float(y)))
        self.update()

    def clear(self) -> None:
        self.series = {}
        self.update()

    def _bounds(self) -> tuple[float, float, float, float]:
        points = [p for pts in self.series.values() for p in pts]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if x1 <= x0:
            x1 = x0 + 1
        pad = (y1 - y0) * 0.08 or max(abs(y1) * 0.1, 1e-3)
        return x0, x1, y0 - pad, y1 + pad

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.fillRect(self.rect(), Qt.white)
        frame = QRectF(56, 12, self.width() - 70, self.height() - 44)
        painter.setPen(QPen(QColor(160, 160, 160)))
        painter.drawRect(frame)
        if not any(self.series.values()):
            painter.setPen(QColor(120, 120, 120))
            painter.drawText(frame, Qt.AlignCenter, "waiting for the first training steps...")
            return
        x0, x1, y0, y1 = self._bounds()

        def to_px(x: float, y: float) -> QPointF:
            return QPointF(frame.left() + (x - x0) / (x1 - x0) * frame.width(),
                           frame.bottom() - (y - y0) / (y1 - y0) * frame.height())

        painter.setPen(QColor(90, 90, 90))
        for i in range(5):  # ticks: 5 on each axis
            fy = y0 + (y1 - y0) * i / 4
            py = to_px(x0, fy).y()
            painter.drawText(QRectF(0, py - 8, 52, 16), Qt.AlignRight | Qt.AlignVCenter, f"{fy:.3g}")
            fx = x0 + (x1 - x0) * i / 4
            px = to_px(fx, y0).x()
            painter.drawText(QRectF(px - 30, frame.bottom() + 2, 60, 14), Qt.AlignCenter, f"{fx:.0f}")
        painter.drawText(QRectF(frame.left(), frame.bottom() + 16, frame.width(), 14), Qt.AlignCenter,
                         self.x_label)
        for k, (name, points) in enumerate(self.series.items()):
            colour = SERIES_COLOURS.get(name, QColor.fromHsv((k * 70) % 360, 200, 200))
            pen = QPen(colour, 2)
            painter.setPen(pen)
            path = QPainterPath(to_px(*points[0]))
            for p in points[1:]:
                path.lineTo(to_px(*p))
            painter.drawPath(path)
            if len(points) < 30:
                painter.setBrush(colour)
                for p in points:
                    painter.drawEllipse(to_px(*p), 2.5, 2.5)
                painter.setBrush(Qt.NoBrush)
            legend_y = frame.top() + 6 + 16 * k
            painter.drawLine(QPointF(frame.right() - 110, legend_y + 6),
                             QPointF(frame.right() - 90, legend_y + 6))
            painter.setPen(QColor(40, 40, 40))
            painter.drawText(QRectF(frame.right() - 86, legend_y, 84, 14), Qt.AlignLeft | Qt.AlignVCenter,
                             f"{name} {points[-1][1]:.4g}")
