"""The Evaluate dialog: a segmentation (predictions) and its reference (labels)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PyQt5.QtWidgets import QComboBox, QDoubleSpinBox, QWidget

from deepscem.dataset.layers import is_label, is_prediction
from deepscem.errors import ConfigError

from ..dataset_tree import DatasetSummary
from .base import ConfigDialog


@dataclass(frozen=True)
class EvaluateRequest:
    reference: Path
    segmentation: Path
    threshold: float


def _has_layers(summary: DatasetSummary, test) -> bool:
    return any(test(layer) for _, layers in summary.samples.values() for layer in layers)


def reference_for(segmentation: Path, datasets: list[DatasetSummary],
                  sources: dict[Path, Path] | None = None) -> Path | None:
    """The dataset a prediction file was made from: the one recorded when the GUI made it,
    else the labelled dataset sharing the most sample names with it (then the one whose
    file name starts its name: ``I3.hdf5`` for ``I3_prediction.hdf5``); None if none fits."""
    loaded = {s.path for s in datasets}
    source = (sources or {}).get(segmentation)
    if source in loaded and source != segmentation:
        return source
    seg = next((s for s in datasets if s.path == segmentation), None)
    if seg is None:
        return None
    scores = [(len(set(s.samples) & set(seg.samples)), segmentation.stem.startswith(s.path.stem), s.path)
              for s in datasets if s.path != segmentation and _has_layers(s, is_label)]
    best = max(scores, key=lambda t: t[:2], default=None)
    return best[2] if best is not None and best[0] > 0 else None


class EvaluateDialog(ConfigDialog):
    """Reference (labels) vs segmentation (predictions), matched by sample name.

    Proposes the newest file holding predictions as the segmentation and, whenever the
    segmentation changes, its source dataset as the reference (:func:`reference_for`).
    """

    def __init__(self, datasets: list[DatasetSummary], parent: QWidget | None = None,
                 sources: dict[Path, Path] | None = None) -> None:
        super().__init__("Evaluate", parent)
        self.datasets, self.sources = datasets, dict(sources or {})
        self.reference, self.segmentation = QComboBox(), QComboBox()
        for summary in datasets:
            for combo in (self.reference, self.segmentation):
                combo.addItem(f"{summary.name} [{summary.path.name}]", str(summary.path))
        predicted = [i for i, s in enumerate(datasets) if _has_layers(s, is_prediction)]
        if predicted or len(datasets) > 1:
            self.segmentation.setCurrentIndex(predicted[-1] if predicted else len(datasets) - 1)
        self.segmentation.currentIndexChanged.connect(self._suggest_reference)
        self._suggest_reference()
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setValue(0.5)
        self.threshold.setToolTip("Float predictions above this count as foreground")
        self.form.addRow("Reference (labels)", self.reference)
        self.form.addRow("Segmentation", self.segmentation)
        self.form.addRow("Threshold", self.threshold)

    def _suggest_reference(self) -> None:
        if self.segmentation.currentData() is None:
            return
        reference = reference_for(Path(self.segmentation.currentData()), self.datasets, self.sources)
        if reference is not None:
            self.reference.setCurrentIndex(self.reference.findData(str(reference)))

    def build(self) -> EvaluateRequest:
        if self.reference.currentData() is None:
            raise ConfigError("load the reference and segmentation datasets first")
        return EvaluateRequest(Path(self.reference.currentData()), Path(self.segmentation.currentData()),
                               self.threshold.value())
