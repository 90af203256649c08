"""Control 13: the models held in memory (loaded, created or trained), saved or not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QPalette
from PyQt5.QtWidgets import QListWidget, QListWidgetItem, QWidget


@dataclass
class ModelEntry:
    """One in-memory model: the Keras model, its DeepSCEM metadata and where it is saved."""

    name: str
    model: Any                  # keras.Model (Keras is imported lazily, so no annotation)
    info: Any                   # deepscem.models.introspection.ModelInfo (imported lazily with Keras)
    path: Path | None = None    # the file it was loaded from or last saved to
    saved: bool = False         # False until written to disk since the last change

    def describe(self) -> str:
        info = self.info
        if info is None:  # a model whose metadata is not read yet
            return f"{self.name}\n{self.path or 'not saved'}"
        labels = ", ".join(info.label_names)
        patch = info.patch_size
        return (f"{self.name}: {info.dimension}D, "
                f"{info.outputs} output(s)" + (f" [{labels}]" if labels else "")
                + (f", trained on patches {tuple(patch)}" if patch else "")
                + (f"\n{self.path}" if self.path else "\nnot saved"))


class ModelList(QListWidget):
    """Lists :class:`ModelEntry` objects by unique name; unsaved ones are marked with '*'."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setToolTip("Models in memory (* = not saved yet); select one to train, predict or save")
        self._entries: dict[str, ModelEntry] = {}
        self._training: set[str] = set()

    def unique_name(self, base: str) -> str:
        name, i = base, 2
        while name in self._entries:
            name, i = f"{base}_{i}", i + 1
        return name

    def add_entry(self, entry: ModelEntry) -> ModelEntry:
        entry.name = self.unique_name(entry.name)
        self._entries[entry.name] = entry
        item = QListWidgetItem()
        item.setData(Qt.UserRole, entry.name)
        self.addItem(item)
        self._decorate(item)
        self.setCurrentItem(item)
        return entry

    def set_training(self, name: str, on: bool) -> None:
        """Mark a model as being trained ("(training...)", greyed italic) or not any more."""
        (self._training.add if on else self._training.discard)(name)
        if name in self._entries:
            self.update_entry(self._entries[name])

    def is_training(self, name: str) -> bool:
        return name in self._training

    def update_entry(self, entry: ModelEntry) -> None:
        for i in range(self.count()):
            if self.item(i).data(Qt.UserRole) == entry.name:
                self._decorate(self.item(i))

    def _decorate(self, item: QListWidgetItem) -> None:
        entry = self._entries[item.data(Qt.UserRole)]
        training = entry.name in self._training
        item.setText(entry.name + ("" if entry.saved else " *") + ("  (training...)" if training else ""))
        item.setToolTip(entry.describe() + ("\nbeing trained: predict, save and remove wait for "
                                            "the end of training" if training else ""))
        font = item.font()
        font.setItalic(training)
        item.setFont(font)
        item.setForeground(self.palette().color(QPalette.Disabled if training else QPalette.Active,
                                                QPalette.Text))

    def remove_entry(self, name: str) -> None:
        self._entries.pop(name, None)
        for i in range(self.count()):
            if self.item(i).data(Qt.UserRole) == name:
                self.takeItem(i)
                return

    def current_entry(self) -> ModelEntry | None:
        item = self.currentItem()
        return self._entries.get(item.data(Qt.UserRole)) if item is not None else None

    def entry(self, name: str) -> ModelEntry:
        return self._entries[name]

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def unsaved(self) -> list[ModelEntry]:
        return [e for e in self._entries.values() if not e.saved]
