"""A sortable table of measured objects (rows from deepscem.evaluation.measurements)."""

from __future__ import annotations

from typing import Any

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

#: (column title, row key, format) shown; the rest goes to the CSV export.
COLUMNS = (("id", "id", "{:d}"), ("volume", "volume", "{:.4g}"),
           ("surface", "surface_area", "{:.4g}"), ("sphericity", "sphericity", "{:.3f}"),
           ("elongation", "elongation", "{:.2f}"), ("slices", "slices", "{:d}"),
           ("border", "touches_border", "{}"), ("z", "centroid_z", "{:.0f}"),
           ("y", "centroid_y", "{:.0f}"), ("x", "centroid_x", "{:.0f}"))


class _Item(QTableWidgetItem):
    """Sorts by the number, not the text."""

    def __init__(self, value: Any, fmt: str) -> None:
        text = "-" if value is None else ("yes" if value is True else "no" if value is False
                                          else fmt.format(value))
        super().__init__(text)
        self.value = value if value is not None else float("-inf")
        self.setFlags(Qt.ItemIsSelectable | Qt.ItemIsEnabled)
        self.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, _Item):
            return float(self.value) < float(other.value)
        return super().__lt__(other)


class ObjectTable(QTableWidget):
    """One row per object; ``objectActivated(row dict)`` when a row is clicked."""

    objectActivated = pyqtSignal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels([c[0] for c in COLUMNS])
        self.setSortingEnabled(True)
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.verticalHeader().setVisible(False)
        self.setToolTip("Objects of the instance layer: click a row to jump to the object; "
                        "click a header to sort; Ctrl+click to select two for a merge")
        self.rows: dict[int, dict[str, Any]] = {}
        self.unit = "voxel"
        self.itemClicked.connect(self._clicked)

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        """Show ``rows`` (keeps the sort column and order)."""
        self.rows = {int(r["id"]): r for r in rows}
        self.unit = rows[0]["unit"] if rows else self.unit
        unit = self.unit
        self.setHorizontalHeaderItem(1, QTableWidgetItem(f"volume ({unit}³)"))
        self.setHorizontalHeaderItem(2, QTableWidgetItem(f"surface ({unit}²)"))
        sorting = self.isSortingEnabled()
        self.clearSelection()  # rows are replaced: a kept selection would point at other objects
        self.setSortingEnabled(False)  # filling a sorted table reorders rows under our feet
        self.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, (_, key, fmt) in enumerate(COLUMNS):
                self.setItem(i, j, _Item(row.get(key), fmt))
        self.setSortingEnabled(sorting)

    def selected_ids(self) -> list[int]:
        """Ids of the selected rows, in the order they were selected."""
        rows = sorted({index.row() for index in self.selectionModel().selectedRows()})
        return [int(self.item(r, 0).value) for r in rows]

    def select_id(self, value: int) -> None:
        for r in range(self.rowCount()):
            if int(self.item(r, 0).value) == value:
                self.selectRow(r)
                self.scrollToItem(self.item(r, 0))
                return

    def _clicked(self, item: QTableWidgetItem) -> None:
        value = int(self.item(item.row(), 0).value)
        self.objectActivated.emit(self.rows[value])
