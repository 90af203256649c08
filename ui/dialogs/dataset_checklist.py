"""A list of the loaded datasets with a tick box each (the Train dialog's training and
validation sets)."""

from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QListWidget, QListWidgetItem

from ..dataset_tree import DatasetSummary


class DatasetChecklist(QListWidget):
    """Loaded datasets with a tick box each (train / validation sets)."""

    def __init__(self, datasets: list[DatasetSummary], ticked: Path | None = None) -> None:
        super().__init__()
        for summary in datasets:
            item = QListWidgetItem(f"{summary.name} [{summary.path.name}]")
            item.setData(Qt.UserRole, str(summary.path))
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if summary.path == ticked else Qt.Unchecked)
            self.addItem(item)
        self.setMaximumHeight(90)

    def ticked(self) -> tuple[Path, ...]:
        return tuple(Path(self.item(i).data(Qt.UserRole)) for i in range(self.count())
                     if self.item(i).checkState() == Qt.Checked)

    def set_ticked(self, paths: list[Path]) -> None:
        for i in range(self.count()):
            on = Path(self.item(i).data(Qt.UserRole)) in paths
            self.item(i).setCheckState(Qt.Checked if on else Qt.Unchecked)
