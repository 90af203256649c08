"""The evaluation table (F1, IoU, precision, recall, objects per sample and label, then the
pooled rows per label), with the matching problems listed below it; savable as CSV."""

from __future__ import annotations

from PyQt5.QtWidgets import (
    QApplication,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..errors import show_error
from . import file_dialogs


def report_table(report) -> tuple[list[str], list[list[str]]]:
    """Header and text rows of a :class:`deepscem.evaluation.EvaluationReport`."""
    records = report.records()
    columns: list[str] = []
    for rec in records:
        columns += [k for k in rec if k not in columns]
    return columns, [[_cell(rec.get(c, "")) for c in columns] for rec in records]


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


class EvaluationResultDialog(QDialog):
    def __init__(self, report, title: str = "Evaluation", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Evaluation: {title}")
        self.report = report
        header, rows = report_table(report)
        self.table = QTableWidget(len(rows), len(header))
        self.table.setHorizontalHeaderLabels(header)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(value))
        self.table.resizeColumnsToContents()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        note = (f"threshold {report.threshold} for float predictions; both masks empty scores 1.0")
        problems = "".join(f"\nwarning: {p}" for p in report.problems)
        self.note = QLabel(note + problems)
        self.note.setWordWrap(True)
        save = QPushButton("Save CSV...")
        save.setToolTip("Write this table as a CSV file")
        save.clicked.connect(lambda: self.save_csv())
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(save)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(title))
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)
        layout.addLayout(buttons)
        self.table.verticalHeader().setVisible(False)
        self.resize(self._wanted_width(), 380)

    def _wanted_width(self) -> int:
        """Wide enough for every column (~20 of scores) or 1000 px, whichever is more, but at
        most 90 % of the screen's width (it was a fixed 1000 px, which scrolled at 1920 x 1080)."""
        columns = sum(self.table.columnWidth(c) for c in range(self.table.columnCount()))
        want = max(1000, columns + 2 * self.table.frameWidth() + 40)
        screen = self.screen() or QApplication.primaryScreen()
        return want if screen is None else min(want, int(screen.availableGeometry().width() * 0.9))

    def save_csv(self, path: str | None = None) -> str | None:
        if not path:
            path = file_dialogs.save_file(self, "Save evaluation", "evaluation.csv", "CSV (*.csv)")
        if not path:
            return None
        try:
            self.report.to_csv(path)
        except OSError as err:
            show_error(self, err)
            return None
        return path
