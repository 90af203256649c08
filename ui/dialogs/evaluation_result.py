"""The evaluation table (F1, IoU, precision, recall per sample and label), savable as CSV."""

from __future__ import annotations

import csv
import io

from PyQt5.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.errors import show_error


def report_rows(report) -> tuple[list[str], list[list[str]]]:
    """Header and rows of an EvaluationReport, read back from its own CSV (one source of truth)."""
    rows = list(csv.reader(io.StringIO(report_csv_text(report))))
    return (rows[0], rows[1:]) if rows else ([], [])


def report_csv_text(report) -> str:
    """The report's CSV as text, whichever way the core exposes it."""
    to_csv = report.to_csv
    try:
        text = to_csv()
    except TypeError:  # to_csv(path) only: write into memory
        buffer = io.StringIO()
        to_csv(buffer)
        text = buffer.getvalue()
    return text if isinstance(text, str) else ""


class EvaluationResultDialog(QDialog):
    def __init__(self, report, title: str = "Evaluation", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.report = report
        header, rows = report_rows(report)
        self.table = QTableWidget(len(rows), len(header))
        self.table.setHorizontalHeaderLabels(header)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(_short(value)))
        self.table.resizeColumnsToContents()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        save = QPushButton("Save CSV...")
        save.setToolTip("Write this table as a CSV file")
        save.clicked.connect(self.save_csv)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(save)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(title))
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.resize(760, 360)

    def save_csv(self, path: str | None = None) -> str | None:
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Save evaluation", "evaluation.csv", "CSV (*.csv)")
        if not path:
            return None
        try:
            with open(path, "w", newline="") as f:
                f.write(report_csv_text(self.report))
        except OSError as err:
            show_error(self, err)
            return None
        return path


def _short(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() and "." not in value else f"{number:.4f}"
