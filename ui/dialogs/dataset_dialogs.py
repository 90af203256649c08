"""Dialogs for the dataset actions: create, add sample, crop, aliases, distance transform,
export, save as. Each returns a small request object (frozen dataclass)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PyQt5.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox, QWidget

from deepscem.errors import ConfigError

from ..dataset_tree import DatasetSummary
from .base import (
    DATASET_FILTER,
    IMAGE_FILTER,
    ConfigDialog,
    PathEdit,
    require_file,
    require_new_file,
)


@dataclass(frozen=True)
class CreateDatasetRequest:
    path: Path
    name: str
    n_labels: int


@dataclass(frozen=True)
class AddSampleRequest:
    dataset: Path
    name: str
    image: Path
    labels: tuple[Path | None, ...]   # None = blank label (stored as zeros)


@dataclass(frozen=True)
class CropRequest:
    dataset: Path
    sample: str
    z: tuple[int, int]
    y: tuple[int, int]
    x: tuple[int, int]
    new_name: str | None


@dataclass(frozen=True)
class DistanceRequest:
    dataset: Path
    sample: str
    label: int
    scale: float
    sampling: tuple[float, float, float]
    per_slice: bool


@dataclass(frozen=True)
class SaveAsRequest:
    source: Path
    target: Path
    original: bool


class CreateDatasetDialog(ConfigDialog):
    """File, name and number of labels of a new, empty dataset."""

    def __init__(self, parent: QWidget | None = None, safe: bool = True) -> None:
        super().__init__("New dataset", parent)
        self.path_edit = PathEdit("save", DATASET_FILTER, "new_dataset.hdf5")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. I3")
        self.labels_spin = QSpinBox()
        self.labels_spin.setRange(1, 64)
        self.labels_spin.setToolTip("Labels per sample (e.g. 2 for mitochondria and ER); "
                                    "fixed for the dataset's life")
        self.form.addRow("File", self.path_edit)
        self.form.addRow("Name", self.name_edit)
        self.form.addRow("Labels per sample", self.labels_spin)

    def build(self) -> CreateDatasetRequest:
        path = require_new_file(self.path_edit.text(), "dataset file", (".hdf5", ".h5"))
        name = self.name_edit.text().strip() or path.stem
        return CreateDatasetRequest(path, name, self.labels_spin.value())


class AddSampleDialog(ConfigDialog):
    """Image and one file per label (empty = blank label) for a new sample.

    The number of label rows is the dataset's number of labels: a dataset's label count
    never changes, so the rows follow the chosen dataset.
    """

    def __init__(self, datasets: list[DatasetSummary], current: Path | None = None,
                 image: str = "", labels: list[str] | None = None, parent: QWidget | None = None,
                 name: str = "") -> None:
        super().__init__("Add sample", parent)
        self.datasets = datasets
        self.dataset_combo = QComboBox()
        for summary in datasets:
            self.dataset_combo.addItem(f"{summary.name} [{summary.path.name}]", str(summary.path))
        if current is not None:
            index = self.dataset_combo.findData(str(current))
            self.dataset_combo.setCurrentIndex(max(index, 0))
        self.name_edit = QLineEdit(name)
        self._auto_name = ""  # the name last filled in from the image path
        self.image_edit = PathEdit("open", IMAGE_FILTER, "grey image (.tif, .tiff, .npy)")
        self.image_edit.setText(image)
        self.form.addRow("Dataset", self.dataset_combo)
        self.form.addRow("Sample name", self.name_edit)
        self.form.addRow("Image", self.image_edit)
        self.label_edits: list[PathEdit] = []
        self._preset = list(labels or [])
        self.dataset_combo.currentIndexChanged.connect(self._rebuild_labels)
        self.image_edit.changed.connect(self._suggest_name)
        self._rebuild_labels()
        self._suggest_name(image)

    def _summary(self) -> DatasetSummary | None:
        index = self.dataset_combo.currentIndex()
        return self.datasets[index] if 0 <= index < len(self.datasets) else None

    def _rebuild_labels(self) -> None:
        for edit in self.label_edits:
            self.form.removeRow(edit)
        self.label_edits = []
        summary = self._summary()
        for i in range(summary.n_labels if summary else 0):
            alias = summary.aliases[i] if i < len(summary.aliases) else f"label {i}"
            edit = PathEdit("open", IMAGE_FILTER, "empty = blank label")
            if i < len(self._preset):
                edit.setText(self._preset[i])
            self.label_edits.append(edit)
            self.form.addRow(f"Label {i} ({alias})", edit)
        self.form_changed()

    def _suggest_name(self, image: str) -> None:
        """Name the sample after the image file (its stem), unless the user typed a name.

        Follows the path while it is typed ("/d/t" then "/d/top.tif" -> "top"), so the name
        is never left at the path's first letters.
        """
        current = self.name_edit.text().strip()
        if current and current != self._auto_name:
            return  # the user's own name
        self._auto_name = Path(image.strip()).stem if image.strip() else ""
        self.name_edit.setText(self._auto_name)

    def build(self) -> AddSampleRequest:
        summary = self._summary()
        if summary is None:
            raise ConfigError("load or create a dataset first")
        name = self.name_edit.text().strip()
        if not name or "/" in name:
            raise ConfigError("give the sample a name (without '/')")
        if name in summary.samples:
            raise ConfigError(f"the dataset already has a sample named {name!r}")
        image = require_file(self.image_edit.text(), "image")
        labels = tuple(require_file(e.text(), f"label {i}") if e.text() else None
                       for i, e in enumerate(self.label_edits))
        _check_shapes(image, labels)
        return AddSampleRequest(summary.path, name, image, labels)

    def preset(self) -> dict:
        """What the form holds, to open it again as it was (after the add failed)."""
        return dict(current=self._summary().path if self._summary() else None,
                    image=self.image_edit.text(), labels=[e.text() for e in self.label_edits],
                    name=self.name_edit.text().strip())


def _check_shapes(image: Path, labels: tuple[Path | None, ...]) -> None:
    """The files open as grey volumes of one (Z, Y, X) shape (headers only, no voxels read),
    so a mismatch is said under the form instead of after it closed."""
    from deepscem.dataset.imageio import open_volume

    with open_volume(image) as img:
        shape = img.shape
    for i, label in enumerate(labels):
        if label is not None:
            with open_volume(label) as src:
                if src.shape != shape:
                    raise ConfigError(f"label {i} ({label.name}) has shape {src.shape} (Z, Y, X); the "
                                      f"image {image.name} has {shape}: they must match")


class CropDialog(ConfigDialog):
    """A (Z, Y, X) box of a sample, written as a new sample (or in place)."""

    def __init__(self, dataset: Path, sample: str, shape: tuple[int, int, int],
                 parent: QWidget | None = None) -> None:
        super().__init__(f"Crop {sample}", parent)
        self.dataset, self.sample, self.shape = dataset, sample, shape
        self.spins = []
        for axis, size in zip("ZYX", shape):
            start, stop = QSpinBox(), QSpinBox()
            start.setRange(0, size - 1)
            stop.setRange(1, size)
            stop.setValue(size)
            self.spins.append((start, stop))
            self.form.addRow(f"{axis} from / to (of {size})", _pair(start, stop))
        self.name_edit = QLineEdit(f"{sample}_crop")
        self.name_edit.setToolTip("Name of the cropped sample; empty replaces the sample itself")
        self.form.addRow("New sample name", self.name_edit)

    def build(self) -> CropRequest:
        box = []
        for axis, (start, stop) in zip("ZYX", self.spins):
            if start.value() >= stop.value():
                raise ConfigError(f"{axis}: 'from' must be smaller than 'to'")
            box.append((start.value(), stop.value()))
        return CropRequest(self.dataset, self.sample, *box, self.name_edit.text().strip() or None)


class AliasesDialog(ConfigDialog):
    """Names for the dataset's labels ("mito", "er"...)."""

    def __init__(self, summary: DatasetSummary, parent: QWidget | None = None) -> None:
        super().__init__(f"Label names of {summary.name}", parent)
        self.edits = []
        for i in range(summary.n_labels):
            edit = QLineEdit(summary.aliases[i] if i < len(summary.aliases) else f"label {i}")
            self.edits.append(edit)
            self.form.addRow(f"Label {i}", edit)

    def build(self) -> list[str]:
        names = [e.text().strip() for e in self.edits]
        if any(not n for n in names):
            raise ConfigError("every label needs a name")
        return names


class DistanceDialog(ConfigDialog):
    """The original's Data > distance transform: adds ``label_XXXX_dt`` to a sample."""

    def __init__(self, dataset: Path, sample: str, n_labels: int, parent: QWidget | None = None) -> None:
        super().__init__(f"Distance transform of {sample}", parent)
        self.dataset, self.sample = dataset, sample
        self.label_spin = QSpinBox()
        self.label_spin.setRange(0, max(n_labels - 1, 0))
        self.scale = QDoubleSpinBox()
        self.scale.setRange(0.1, 1000)
        self.scale.setValue(5.0)
        self.scale.setToolTip("Distance (voxels) mapped to tanh(1): larger = softer maps")
        self.sampling = [QDoubleSpinBox() for _ in range(3)]
        for spin in self.sampling:
            spin.setRange(0.01, 100)
            spin.setValue(1.0)
        self.per_slice = QCheckBox("Per Z slice (2D distances)")
        self.form.addRow("Label", self.label_spin)
        self.form.addRow("Scale", self.scale)
        self.form.addRow("Voxel size Z, Y, X", _pair(*self.sampling))
        self.form.addRow("", self.per_slice)

    def build(self) -> DistanceRequest:
        return DistanceRequest(self.dataset, self.sample, self.label_spin.value(), self.scale.value(),
                               tuple(s.value() for s in self.sampling), self.per_slice.isChecked())


class SaveAsDialog(ConfigDialog):
    """A compact copy of a dataset, optionally in the original tool's float32 layout."""

    def __init__(self, source: Path, parent: QWidget | None = None) -> None:
        super().__init__("Save dataset as", parent)
        self.source = source
        self.path_edit = PathEdit("save", DATASET_FILTER, "copy.hdf5")
        self.original = QCheckBox("Original DeepSCEM layout (float32 images, 4x larger)")
        self.form.addRow("Copy to", self.path_edit)
        self.form.addRow("", self.original)

    def build(self) -> SaveAsRequest:
        target = require_new_file(self.path_edit.text(), "dataset copy", (".hdf5", ".h5"))
        if target.resolve() == self.source.resolve():
            raise ConfigError("choose a different file than the dataset itself")
        return SaveAsRequest(self.source, target, self.original.isChecked())


def _pair(*widgets: QWidget, vertical: bool = False) -> QWidget:
    """Widgets side by side (or stacked: long check-box texts stay readable at natural width)."""
    from PyQt5.QtWidgets import QHBoxLayout, QVBoxLayout

    box = QWidget()
    layout = QVBoxLayout(box) if vertical else QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    return box
