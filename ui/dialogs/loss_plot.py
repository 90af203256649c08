"""A small live line plot (QPainter): loss and validation loss during training."""

from __future__ import annotations

import math

from PyQt5.QtCore import QPointF, QRectF, Qt
from PyQt5.QtGui import QColor, QPainter, QPainterPath, QPen
from PyQt5.QtWidgets import QSizePolicy, QWidget

SERIES_COLOURS = {"loss": QColor(0, 114, 178), "val_loss": QColor(213, 94, 0)}


def format_value(value: float) -> str:
    """A loss as the legend and the text under the plot both show it: 4 significant digits."""
    return f"{value:.4g}"


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """About ``count`` round tick values in [lo, hi] (steps of 1, 2, 2.5 or 5 x 10^k; whole
    numbers only when ``integer``): 1..3 steps -> 1, 2, 3 (not 1, 1.5, 2, 2.5, 3 shown as
    "1 2 2 2 3")."""
    span = hi - lo
    if not math.isfinite(span) or span <= 0:
        return [lo]
    raw = span / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(lo / step - 1e-9) * step
    ticks, i = [], 0
    while first + i * step <= hi + step * 1e-9:
        ticks.append(first + i * step)
        i += 1
    return ticks


def tick_labels(ticks: list[float]) -> list[str]:
    """The fewest decimals that keep every label distinct (0.4446, 0.4448 -> "0.4446", "0.4448")."""
    for decimals in range(0, 10):
        labels = [f"{t:.{decimals}f}" for t in ticks]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{t:.6g}" for t in ticks]


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

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.fillRect(self.rect(), Qt.white)
        metrics = painter.fontMetrics()
        line = metrics.height()
        if not any(self.series.values()):
            frame = QRectF(8, 8, self.width() - 16, self.height() - 16)
            painter.setPen(QColor(120, 120, 120))
            painter.drawRect(frame)
            painter.drawText(frame, Qt.AlignCenter, "waiting for the first training steps...")
            return
        x0, x1, y0, y1 = self._bounds()
        y_values = nice_ticks(y0, y1)
        y_ticks = list(zip(y_values, tick_labels(y_values)))
        x_values = nice_ticks(x0, x1, integer=True)
        x_ticks = list(zip(x_values, tick_labels(x_values)))
        left = 8 + max(metrics.horizontalAdvance(t) for _, t in y_ticks)
        frame = QRectF(left, line / 2 + 4, self.width() - left - 16, self.height() - 2.5 * line - 10)
        painter.setPen(QPen(QColor(160, 160, 160)))
        painter.drawRect(frame)

        def to_px(x: float, y: float) -> QPointF:
            return QPointF(frame.left() + (x - x0) / (x1 - x0) * frame.width(),
                           frame.bottom() - (y - y0) / (y1 - y0) * frame.height())

        painter.setPen(QColor(90, 90, 90))
        for fy, text in y_ticks:  # round values, each label once
            py = to_px(x0, fy).y()
            painter.drawText(QRectF(0, py - line / 2, left - 4, line), Qt.AlignRight | Qt.AlignVCenter, text)
        for fx, text in x_ticks:
            px = to_px(fx, y0).x()
            painter.drawText(QRectF(px - 40, frame.bottom() + 2, 80, line), Qt.AlignCenter, text)
        painter.drawText(QRectF(frame.left(), frame.bottom() + 2 + line, frame.width(), line), Qt.AlignCenter,
                         self.x_label)
        entries = []
        for k, (name, points) in enumerate(self.series.items()):
            colour = SERIES_COLOURS.get(name, QColor.fromHsv((k * 70) % 360, 200, 200))
            painter.setPen(QPen(colour, 2))
            path = QPainterPath(to_px(*points[0]))
            for p in points[1:]:
                path.lineTo(to_px(*p))
            painter.drawPath(path)
            if len(points) < 30:
                painter.setBrush(colour)
                for p in points:
                    painter.drawEllipse(to_px(*p), 2.5, 2.5)
                painter.setBrush(Qt.NoBrush)
            entries.append((colour, f"{name} {format_value(points[-1][1])}"))
        self._legend(painter, frame, entries)

    @staticmethod
    def _legend(painter: QPainter, frame: QRectF, entries: list[tuple[QColor, str]]) -> None:
        """Top-right legend on a white box, sized to its text."""
        metrics = painter.fontMetrics()
        line = metrics.height() + 2
        width = 30 + max(metrics.horizontalAdvance(text) for _, text in entries)
        box = QRectF(frame.right() - width - 8, frame.top() + 6, width + 4, line * len(entries) + 4)
        painter.setPen(QColor(200, 200, 200))
        painter.setBrush(QColor(255, 255, 255, 230))
        painter.drawRect(box)
        painter.setBrush(Qt.NoBrush)
        for k, (colour, text) in enumerate(entries):
            y = box.top() + 2 + line * k + line / 2
            painter.setPen(QPen(colour, 2))
            painter.drawLine(QPointF(box.left() + 4, y), QPointF(box.left() + 22, y))
            painter.setPen(QColor(40, 40, 40))
            painter.drawText(QRectF(box.left() + 26, y - line / 2, width, line),
                             Qt.AlignLeft | Qt.AlignVCenter, text)
