"""The Predict dialog: model, dataset to segment, output file and every PredictConfig option."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PyQt5.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QWidget

from deepscem.config import PredictConfig
from deepscem.errors import ConfigError

from ..dataset_tree import DatasetSummary
from .base import DATASET_FILTER, ConfigDialog, PathEdit, combo_box, require_new_file, spin_box
from .dataset_dialogs import _pair


@dataclass(frozen=True)
class PredictRequest:
    model: str
    dataset: Path
    output: Path
    config: PredictConfig



class PredictDialog(ConfigDialog):
    """Model, dataset to segment, output file and every :class:`PredictConfig` option."""

    def __init__(self, models: list[str], datasets: list[DatasetSummary], current_model: str | None = None,
                 current_dataset: Path | None = None, parent: QWidget | None = None) -> None:
        """Long because it lays out the form's rows in reading order, one PredictConfig option each."""
        super().__init__("Predict", parent)
        d = PredictConfig()
        self.datasets = datasets
        self.model_combo = combo_box(models, current_model or (models[0] if models else ""))
        self.dataset_combo = QComboBox()
        for summary in datasets:
            self.dataset_combo.addItem(f"{summary.name} [{summary.path.name}]", str(summary.path))
        if current_dataset is not None:
            self.dataset_combo.setCurrentIndex(max(self.dataset_combo.findData(str(current_dataset)), 0))
        self.output = PathEdit("save", DATASET_FILTER, "prediction .hdf5")
        self._suggested = ""  # the output last proposed (replaced while the user keeps it)
        self.auto_patch = QCheckBox("Model default (larger than its training patch)")
        self.auto_patch.setChecked(True)
        self.patch = [spin_box(1, 8192, v, "Tile (Z, Y, X): as large as memory allows")
                      for v in (1, 512, 512)]
        self.auto_patch.toggled.connect(lambda on: [s.setEnabled(not on) for s in self.patch])
        for spin in self.patch:
            spin.setEnabled(False)
        self.overlap = QDoubleSpinBox()
        self.overlap.setRange(-0.05, 0.9)  # the minimum shows "auto" (None)
        self.overlap.setSingleStep(0.05)
        self.overlap.setSpecialValueText("auto")
        self.overlap.setValue(-0.05 if d.overlap is None else d.overlap)
        self.overlap.setToolTip("Fraction of a tile shared with its neighbour; auto: tiles as large "
                                "as memory allows, seams overlapping by the network's border effect")
        self.engine = QComboBox()
        self.engine.addItems(["auto", "keras", "onnxruntime", "openvino"])
        self.engine.setToolTip("What runs the network. auto: Keras on a GPU; on a CPU the fastest "
                               "engine that keeps Keras' accuracy (see docs/cli.md)")
        self.batch = spin_box(1, 256, d.batch_size, "Tiles per forward pass")
        self.use_threshold = QCheckBox("Threshold to a binary mask at")
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setValue(0.5)
        self.min_size = spin_box(0, 10**9, d.min_size, "After thresholding, remove connected objects of "
                                 "fewer voxels (specks); 0 keeps every object")
        self.min_size.setSuffix(" voxels")
        self.use_threshold.toggled.connect(self.min_size.setEnabled)
        self.min_size.setEnabled(False)
        self.z_smooth = QDoubleSpinBox()
        self.z_smooth.setRange(0.0, 50.0)
        self.z_smooth.setSingleStep(0.5)
        self.z_smooth.setValue(d.z_smooth)
        self.z_smooth.setSuffix(" slices")
        self.z_smooth.setSpecialValueText("off")
        self.z_smooth.setToolTip("Gaussian smoothing of the outputs along Z (sigma, in slices) before "
                                 "the threshold, so slices a 2D model predicted one by one agree with "
                                 "their neighbours. Keep it well below the Z extent of the smallest object")
        self.tta = QComboBox()
        for text, n in (("off", 0), ("2 transforms: + 180° rotation (2x time)", 2),
                        ("4 transforms: the 4 rotations (4x time)", 4),
                        ("8 transforms: rotations and flips (8x time)", 8)):
            self.tta.addItem(text, n)
        self.tta.setToolTip("Test-time augmentation: average the outputs of rotated / flipped "
                            "copies of every tile. Smoother, fewer specks; on the shared data sets "
                            "the 4 rotations bought nearly all of the 8 transforms' gain")
        self.overwrite = QCheckBox("Overwrite the output file if it exists")
        self.dataset_combo.currentIndexChanged.connect(self._suggest_output)
        for label, widget in (("Model", self.model_combo), ("Dataset", self.dataset_combo),
                              ("Output", self.output), ("Tile", self.auto_patch), ("", _pair(*self.patch)),
                              ("Overlap", self.overlap), ("Batch size", self.batch),
                              ("Engine", self.engine),
                              ("Smooth along Z", self.z_smooth),
                              ("", _pair(self.use_threshold, self.threshold)),
                              ("Remove objects under", self.min_size),
                              ("Test-time augmentation", self.tta),
                              ("", self.overwrite)):
            self.form.addRow(label, widget)
        self._suggest_output()

    def _suggest_output(self) -> None:
        """``<dataset>_prediction.hdf5`` next to the chosen dataset, following the dataset
        combo until the user types or browses an output of their own."""
        path = self.dataset_combo.currentData()
        if not path or self.output.text() not in ("", self._suggested):
            return
        p = Path(path)
        self._suggested = str(p.with_name(p.stem + "_prediction.hdf5"))
        self.output.setText(self._suggested)

    def build(self) -> PredictRequest:
        if not self.model_combo.currentText():
            raise ConfigError("create or load a model first")
        if self.dataset_combo.currentData() is None:
            raise ConfigError("load the dataset to segment first")
        output = require_new_file(self.output.text(), "prediction file", (".hdf5", ".h5"),
                                  overwrite=self.overwrite.isChecked())
        dataset = Path(self.dataset_combo.currentData())
        if output.resolve() == dataset.resolve():
            raise ConfigError("the prediction must go to a new file, not the dataset itself")
        patch = None if self.auto_patch.isChecked() else tuple(s.value() for s in self.patch)
        overlap = None if self.overlap.value() < 0 else self.overlap.value()
        config = PredictConfig(patch=patch, overlap=overlap, batch_size=self.batch.value(),
                               engine=self.engine.currentText(),
                               threshold=self.threshold.value() if self.use_threshold.isChecked() else None,
                               tta=self.tta.currentData(), z_smooth=self.z_smooth.value(),
                               min_size=self.min_size.value() if self.use_threshold.isChecked() else 0)
        return PredictRequest(self.model_combo.currentText(), dataset, output, config)
