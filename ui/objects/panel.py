"""The Objects panel: measure an instance layer, browse its objects, proofread them.

Beside the main window's viewer (a dock). For the selected sample it lists the sample's
``instance_XXXX`` layers; "Label objects" makes one from the sample's prediction (or label)
mask; "Measure" fills the table (volume, surface... in nm when the voxel size is known).
Clicking a row jumps to the object's middle slice, centres it and highlights it.

Proofreading writes into the dataset file at once (only the objects' bounding box), one
undo step per edit: delete the selected object, merge the selected objects (into the first),
split one by two clicks inside it (seeded watershed), relabel one. The table is measured
again after each edit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PyQt5.QtCore import pyqtSignal
from PyQt5.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from deepscem.dataset import Dataset
from deepscem.dataset.layers import is_instance
from deepscem.errors import DatasetError
from deepscem.postprocessing import proofreading as pr

from ..errors import guard
from .table import ObjectTable


def measure_rows(path: str | Path, sample: str, layer: str, *, progress=None, cancel=None):
    """Worker job: the measurement rows of ``layer`` (see deepscem.evaluation.measurements)."""
    from deepscem.evaluation.measurements import measure_layer

    with Dataset.open(path) as ds:
        return measure_layer(ds.sample(sample), layer, progress=progress, cancel=cancel)


def label_sample(path: str | Path, sample: str, overwrite: bool, *, progress=None, cancel=None):
    """Worker job: instance layers of one sample from its predictions (else its labels)."""
    from deepscem.postprocessing.instance_layers import add_instance_layers

    with Dataset.open(path, "r+") as ds:
        source = "prediction" if ds.sample(sample).prediction_layers() else "label"
        return add_instance_layers(ds, source=source, samples=[sample], overwrite=overwrite,
                                   progress=progress, cancel=cancel)


def open_for_writing(path: Path, tries: int = 20) -> Dataset:
    """Open ``path`` read-write, waiting briefly while a background read holds it open."""
    for attempt in range(tries):
        try:
            return Dataset.open(path, "r+")
        except DatasetError:
            if attempt == tries - 1:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class UndoStep:
    path: Path
    sample: str
    layer: str
    edit: pr.Edit


class ObjectPanel(QWidget):
    """Instance layer chooser, object table and proofreading buttons."""

    edited = pyqtSignal(str)    # what an edit or an undo did
    measured = pyqtSignal(int)  # rows now in the table

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.path: Path | None = None
        self.sample: str | None = None
        self.undo_stack: list[UndoStep] = []
        self.split_seeds: list[tuple[int, int, int]] = []
        self.splitting = False
        self.layer_box = QComboBox()
        self.layer_box.setToolTip("The instance layer (object ids) the table lists")
        self.table = ObjectTable()
        self.status = QLabel("Select a sample with an instance layer, or label its objects")
        self.status.setWordWrap(True)
        self.buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        for i, (key, text, tip, slot) in enumerate((
                ("label", "Label objects", "Make instance_XXXX from this sample's prediction "
                 "(or label): connected components, or the watershed for boundary models",
                 self.label_clicked),
                ("measure", "Measure", "Measure every object (nm when the voxel size is known)",
                 self.measure),
                ("export", "Export CSV", "Save the measurements as CSV", self.export_clicked),
                ("delete", "Delete", "Delete the selected object (Del)", self.delete_clicked),
                ("merge", "Merge", "Merge the selected objects into the first one",
                 self.merge_clicked),
                ("split", "Split", "Split an object: then click two points inside it in the view",
                 self.split_clicked),
                ("relabel", "Relabel", "Give the selected object another id", self.relabel_clicked),
                ("undo", "Undo", "Undo the last edit (Ctrl+Z in the table)", self.undo))):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(guard(self, slot, text))
            self.buttons[key] = button
            grid.addWidget(button, i // 4, i % 4)
        layout = QVBoxLayout(self)
        layout.addWidget(self.layer_box)
        layout.addLayout(grid)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        self.layer_box.currentTextChanged.connect(lambda _t: self.measure())
        self.table.objectActivated.connect(guard(self, self.jump_to, "Show object"))
        window.tree.sampleSelected.connect(guard(self, self.set_sample, "Objects"))
        window.view.canvas.clicked.connect(guard(self, self._canvas_clicked, "Split"))

    # --- what is shown ---------------------------------------------------------------------
    @property
    def layer(self) -> str | None:
        return self.layer_box.currentText() or None

    def set_sample(self, path: str, sample: str) -> None:
        """List ``sample``'s instance layers (keeping the chosen one when it is still there)."""
        self.path, self.sample = Path(path), sample
        summary = self.window.tree.summaries.get(self.path)
        layers = [n for n in (summary.samples[sample][1] if summary and sample in summary.samples
                              else []) if is_instance(n)]
        keep = self.layer
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        self.layer_box.addItems(layers)
        if keep in layers:
            self.layer_box.setCurrentText(keep)
        self.layer_box.blockSignals(False)
        self.table.set_rows([])
        self.split_seeds, self.splitting = [], False
        self.status.setText(f"{sample}: {len(layers)} instance layer(s)" if layers else
                            f"{sample}: no instance layer; 'Label objects' makes one")
        if layers:
            self.measure()

    def measure(self) -> None:
        if self.path is None or self.layer is None:
            return
        path, sample, layer = self.path, self.sample, self.layer

        def done(rows: list) -> None:
            if (self.path, self.sample, self.layer) == (path, sample, layer):
                self.table.set_rows(rows)
                self.status.setText(f"{sample}/{layer}: {len(rows)} objects")
                self.measured.emit(len(rows))
        self.window.tasks.run(measure_rows, path, sample, layer, title="Measure objects",
                              on_result=done, dialog=False)

    def jump_to(self, row: dict) -> None:
        """Show the object of ``row``: its middle slice, centred, highlighted, layer ticked."""
        view = self.window.view
        z = min(max(int(round(row["centroid_z"])), row["bbox_z0"]), row["bbox_z1"] - 1)
        if self.layer not in self.window.tree.checked_layers(self.path, self.sample):
            self.window.tree.set_checked(self.path, self.sample, self.layer, True)
        view.highlight = int(row["id"])
        view.set_z(z)
        view.reload()  # the highlight changed: draw the slice again once read
        view.canvas.centerOn(row["centroid_x"] + 0.5, row["centroid_y"] + 0.5)
        self.status.setText(f"object {row['id']}: slice {z}, {row['voxels']} voxels"
                            + (", touches the border" if row["touches_border"] else ""))

    # --- labelling and export ------------------------------------------------------------------
    def label_clicked(self) -> None:
        if self.path is None:
            raise DatasetError("select a sample first")
        overwrite = False
        summary = self.window.tree.summaries.get(self.path)
        if summary and any(is_instance(n) for n in summary.samples[self.sample][1]):
            answer = QMessageBox.question(self, "Label objects", "Replace the existing instance "
                                          "layers (proofreading edits are lost)?",
                                          QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
            if answer != QMessageBox.Yes:
                return
            overwrite = True
        path, sample = self.path, self.sample

        def done(written: list) -> None:
            self.window.tree.add_dataset(path)
            for item in written:
                self.window.tree.set_checked(path, sample, item.layer, True)
            self.set_sample(str(path), sample)
        self.window.tasks.run(label_sample, path, sample, overwrite, title="Label objects",
                              on_result=done)

    def export_clicked(self) -> None:
        if not self.table.rows:
            raise DatasetError("measure the objects first")
        name, _ = QFileDialog.getSaveFileName(self, "Export measurements",
                                              f"{self.sample}_{self.layer}.csv", "CSV (*.csv)")
        if name:
            self.export_csv(name)

    def export_csv(self, path: str | Path) -> Path:
        from deepscem.evaluation.measurements import MeasureReport

        rows = [{"sample": self.sample, "label": int(self.layer.rsplit("_", 1)[1]), **r}
                for r in self.table.rows.values()]
        return MeasureReport(str(self.path), rows).to_csv(path)

    # --- proofreading --------------------------------------------------------------------------
    def _selected(self, count: int | None = None) -> list[int]:
        ids = self.table.selected_ids()
        if not ids or (count is not None and len(ids) != count):
            raise DatasetError("select one object in the table" if count == 1 else
                               "select the objects in the table (Ctrl+click for several)")
        return ids

    def _hint(self, value: int):
        row = self.table.rows.get(value)
        if row is None:
            return None
        return tuple(slice(row[f"bbox_{a}0"], row[f"bbox_{a}1"]) for a in "zyx")

    def apply(self, operation) -> pr.Edit:
        """Run ``operation(layer dataset, voxel size) -> Edit`` on the file; push an undo step."""
        if self.path is None or self.layer is None:
            raise DatasetError("select a sample and an instance layer first")
        with open_for_writing(self.path) as ds:
            sample = ds.sample(self.sample)
            edit = operation(sample.layer(self.layer), sample.voxel_size)
        self.undo_stack.append(UndoStep(self.path, self.sample, self.layer, edit))
        self._after_edit(edit.text)
        return edit

    def _after_edit(self, text: str) -> None:
        self.status.setText(text)
        self.edited.emit(text)
        self.window.view.reload()  # the layer changed in the file
        self.measure()

    def delete_clicked(self) -> None:
        (value,) = self._selected(1)
        self.apply(lambda ids, _v: pr.delete(ids, value, hint=self._hint(value)))

    def merge_clicked(self) -> None:
        values = self._selected()
        self.apply(lambda ids, _v: pr.merge(ids, values, hints=[self._hint(v) for v in values]))

    def relabel_clicked(self) -> None:
        (value,) = self._selected(1)
        new, ok = QInputDialog.getInt(self, "Relabel object", f"New id for object {value}:",
                                      value, 1, 2**31 - 1)
        if ok and new != value:
            self.apply(lambda ids, _v: pr.relabel(ids, value, new, hint=self._hint(value)))

    def split_clicked(self) -> None:
        if self.layer is None:
            raise DatasetError("select a sample and an instance layer first")
        self.split_seeds, self.splitting = [], True
        self.status.setText("Split: click two points inside the object in the view")

    def split_at(self, seeds: list[tuple[int, int, int]]) -> pr.Edit:
        """Split the object under the first seed by a watershed from ``seeds`` (z, y, x)."""
        with Dataset.open(self.path) as ds:
            value = int(ds.sample(self.sample).layer(self.layer)[seeds[0]])
        if value == 0:
            raise DatasetError("the first click is on the background: click inside an object")
        return self.apply(lambda ids, voxel: pr.split(ids, value, seeds, voxel_size=voxel,
                                                      hint=self._hint(value)))

    def _canvas_clicked(self, row: int, col: int) -> None:
        if self.splitting:
            self.split_seeds.append((self.window.view.z, row, col))
            if len(self.split_seeds) == 2:
                seeds, self.split_seeds, self.splitting = self.split_seeds, [], False
                self.split_at(seeds)

    def undo(self) -> None:
        if not self.undo_stack:
            raise DatasetError("nothing to undo")
        step = self.undo_stack.pop()
        with open_for_writing(step.path) as ds:
            pr.undo(ds.sample(step.sample).layer(step.layer), step.edit)
        self._after_edit(f"undone: {step.edit.text}")
