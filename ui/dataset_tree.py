"""Control 6: the loaded datasets, their samples and each sample's checkable layers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QColor, QIcon, QPixmap
from PyQt5.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

from deepscem.dataset import Dataset

from .render import layer_colour

ROLE = Qt.UserRole


@dataclass(frozen=True)
class DatasetSummary:
    """Metadata of one dataset file, read once (no voxels)."""

    path: Path
    name: str
    n_labels: int
    aliases: list[str]
    samples: dict[str, tuple[tuple[int, int, int], list[str]]]  # name -> (shape ZYX, layers)


def read_summary(path: str | Path) -> DatasetSummary:
    """Open ``path`` read-only and list its samples and layers; DatasetError if it is not one."""
    with Dataset.open(path) as ds:
        samples = {}
        for name in ds.sample_names():
            s = ds.sample(name)
            samples[name] = (tuple(int(v) for v in s.shape), list(s.layer_names()))
        return DatasetSummary(Path(ds.path), str(ds.name), int(ds.n_labels), list(ds.label_aliases),
                              samples)


def make_ref(layer: str, path: Path | None = None) -> str:
    """A layer of the shown sample (``label_0000``) or of the same-named sample in another
    loaded file (``prediction_0000@/data/pred.hdf5``), as one string."""
    return layer if path is None else f"{layer}@{path}"


def split_ref(ref: str) -> tuple[str, Path | None]:
    """``"prediction_0000@/a/p.hdf5"`` -> ``("prediction_0000", Path("/a/p.hdf5"))``."""
    layer, _, path = ref.partition("@")
    return layer, (Path(path) if path else None)


def _swatch(layer: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(*layer_colour(layer)) if layer != "image" else QColor(128, 128, 128))
    return QIcon(pixmap)


class DatasetTree(QTreeWidget):
    """datasets -> samples -> layers (image, label_*, prediction_*), layers checkable.

    ``sampleSelected(path, sample)`` when the user picks a sample (or one of its layers);
    ``layersChanged(path, sample)`` when a layer is checked or unchecked.
    """

    sampleSelected = pyqtSignal(str, str)
    layersChanged = pyqtSignal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Datasets / samples (Z x Y x X) / layers"])
        # Long names (a prediction file's layers under a sample) scroll instead of being cut.
        self.header().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.header().setStretchLastSection(False)
        self.setSelectionMode(QAbstractItemView.SingleSelection)
        self.setToolTip("Loaded datasets, their samples and layers; tick layers to overlay them")
        self.summaries: dict[Path, DatasetSummary] = {}
        self.itemChanged.connect(self._on_item_changed)
        self.currentItemChanged.connect(self._on_current_changed)

    # --- datasets ------------------------------------------------------------------------
    def add_dataset(self, path: str | Path) -> DatasetSummary:
        """Show the dataset at ``path`` (or refresh it if already there, keeping the ticks)."""
        summary = read_summary(path)
        self.summaries[summary.path] = summary
        self._rebuild_all()
        return summary

    def remove_dataset(self, path: str | Path) -> None:
        item = self._dataset_item(Path(path))
        if item is not None:
            self.takeTopLevelItem(self.indexOfTopLevelItem(item))
        self.summaries.pop(Path(path), None)
        self._rebuild_all()  # other datasets drop their links to it

    def _rebuild_all(self) -> None:
        """Rebuild every dataset's items (links between datasets depend on all of them),
        keeping ticks, expansions and the current item; no signals while doing it."""
        current = self.selection()
        self.blockSignals(True)
        try:
            for summary in self.summaries.values():
                self._build(summary)
            if current[0] is not None and current[0] in self.summaries:
                self.select(current[0], current[1] if current[1] in self.summaries[current[0]].samples
                            else None)
        finally:
            self.blockSignals(False)

    def _links(self, summary: DatasetSummary, sample: str) -> list[str]:
        """Layers of *other* loaded datasets that fit ``sample`` (a sample of the same name and
        shape, e.g. the prediction file made from this dataset), as ``layer@path`` refs."""
        shape = summary.samples[sample][0]
        refs = []
        for other in self.summaries.values():
            if other.path == summary.path or other.samples.get(sample, ((),))[0] != shape:
                continue
            refs += [make_ref(layer, other.path) for layer in other.samples[sample][1] if layer != "image"]
        return refs

    def _build(self, summary: DatasetSummary) -> None:
        key = summary.path
        old_item = self._dataset_item(key)
        checked = self._checked_by_sample(old_item) if old_item is not None else {}
        expanded = self._expanded_samples(old_item) if old_item is not None else set()
        item = old_item or QTreeWidgetItem(self)
        item.takeChildren()
        item.setText(0, f"{summary.name}  [{key.name}]")
        item.setToolTip(0, f"{key}\n{len(summary.samples)} samples, {summary.n_labels} labels per sample")
        item.setData(0, ROLE, ("dataset", str(key)))
        for sample, (shape, layers) in summary.samples.items():
            s_item = QTreeWidgetItem(item, [f"{sample}  ({' x '.join(map(str, shape))})"])
            s_item.setData(0, ROLE, ("sample", str(key), sample))
            ticked = checked.get(sample, {"image"})
            for ref in layers + self._links(summary, sample):
                layer, other = split_ref(ref)
                aliases = summary.aliases if other is None else self.summaries[other].aliases
                text = self._layer_text(layer, aliases) + (f"  [{other.name}]" if other else "")
                l_item = QTreeWidgetItem(s_item, [text])
                l_item.setData(0, ROLE, ("layer", str(key), sample, ref))
                l_item.setFlags(l_item.flags() | Qt.ItemIsUserCheckable)
                l_item.setCheckState(0, Qt.Checked if ref in ticked else Qt.Unchecked)
                l_item.setIcon(0, _swatch(layer))
                if other is not None:
                    l_item.setToolTip(0, f"{layer} of sample {sample} in {other}, drawn over this sample")
            s_item.setExpanded(sample in expanded)
        item.setExpanded(old_item is None or old_item.isExpanded())

    @staticmethod
    def _expanded_samples(ds_item: QTreeWidgetItem) -> set[str]:
        return {ds_item.child(i).data(0, ROLE)[2] for i in range(ds_item.childCount())
                if ds_item.child(i).isExpanded()}

    def dataset_paths(self) -> list[Path]:
        return list(self.summaries)

    @staticmethod
    def _layer_text(layer: str, aliases: list[str]) -> str:
        for prefix in ("label_", "prediction_"):
            rest = layer[len(prefix):]
            if layer.startswith(prefix) and rest.isdigit() and int(rest) < len(aliases) \
                    and aliases[int(rest)] != f"label {int(rest)}":  # only names the user gave
                return f"{layer} ({aliases[int(rest)]})"
        return layer

    def _dataset_item(self, path: Path) -> QTreeWidgetItem | None:
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            if Path(item.data(0, ROLE)[1]) == path:
                return item
        return None

    def _checked_by_sample(self, ds_item: QTreeWidgetItem) -> dict[str, set[str]]:
        result = {}
        for i in range(ds_item.childCount()):
            s_item = ds_item.child(i)
            result[s_item.data(0, ROLE)[2]] = {
                s_item.child(j).data(0, ROLE)[3] for j in range(s_item.childCount())
                if s_item.child(j).checkState(0) == Qt.Checked}
        return result

    # --- selection and ticks -------------------------------------------------------------
    def selection(self) -> tuple[Path | None, str | None, str | None]:
        """(dataset path, sample, layer) of the current item; None where not applicable."""
        item = self.currentItem()
        if item is None:
            return None, None, None
        data = item.data(0, ROLE)
        return Path(data[1]), (data[2] if len(data) > 2 else None), (data[3] if len(data) > 3 else None)

    def select(self, path: str | Path, sample: str | None = None) -> None:
        item = self._dataset_item(Path(path))
        if item is not None and sample is not None:
            for i in range(item.childCount()):
                if item.child(i).data(0, ROLE)[2] == sample:
                    item = item.child(i)
                    break
        if item is not None:
            self.setCurrentItem(item)
            item.setExpanded(True)  # show the layer tick boxes of the chosen sample

    def checked_layers(self, path: str | Path, sample: str) -> list[str]:
        item = self._dataset_item(Path(path))
        if item is None:
            return []
        return sorted(self._checked_by_sample(item).get(sample, set()),
                      key=lambda n: (n != "image", n))

    def set_checked(self, path: str | Path, sample: str, layer: str, on: bool = True) -> None:
        item = self._dataset_item(Path(path))
        for i in range(item.childCount() if item else 0):
            s_item = item.child(i)
            if s_item.data(0, ROLE)[2] != sample:
                continue
            for j in range(s_item.childCount()):
                if s_item.child(j).data(0, ROLE)[3] == layer:
                    s_item.child(j).setCheckState(0, Qt.Checked if on else Qt.Unchecked)

    def _on_item_changed(self, item: QTreeWidgetItem, _column: int) -> None:
        data = item.data(0, ROLE)
        if data and data[0] == "layer":
            self.layersChanged.emit(data[1], data[2])

    def _on_current_changed(self, current: QTreeWidgetItem | None, _previous) -> None:
        if current is None:
            return
        data = current.data(0, ROLE)
        if data and data[0] in ("sample", "layer"):
            self.sampleSelected.emit(data[1], data[2])
