"""Dialogs for the model actions: create (UNetConfig), train (TrainConfig),
predict (PredictConfig), evaluate (reference vs segmentation)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QLineEdit,
    QMessageBox,
    QSpinBox,
    QWidget,
)

from deepscem.config import HOLDOUT, LOSS_NAMES, PredictConfig, TrainConfig, UNetConfig
from deepscem.errors import ConfigError

from ..dataset_tree import DatasetSummary
from .base import DATASET_FILTER, ConfigDialog, PathEdit, require_new_file
from .dataset_checklist import DatasetChecklist
from .dataset_dialogs import _pair
from .evaluate_dialog import EvaluateDialog, EvaluateRequest, reference_for  # noqa: F401
from .train_warnings import training_warnings


@dataclass(frozen=True)
class TrainRequest:
    model: str
    train: tuple[Path, ...]
    valid: tuple[Path, ...]
    config: TrainConfig


@dataclass(frozen=True)
class PredictRequest:
    model: str
    dataset: Path
    output: Path
    config: PredictConfig


def _spin(low: int, high: int, value: int, tip: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


def _combo(items: list[str], current: str, tip: str = "") -> QComboBox:
    combo = QComboBox()
    combo.addItems(items)
    combo.setCurrentText(current)
    combo.setToolTip(tip)
    return combo


class CreateModelDialog(ConfigDialog):
    """Every option of the original's "New model" dialog, as a :class:`UNetConfig`.

    Safe mode locks the number of outputs to the number of labels of the loaded datasets
    (``locked_outputs``), so a model always fits the data it will be trained on.
    """

    def __init__(self, parent: QWidget | None = None, locked_outputs: int | None = None,
                 datasets: list[Path] | None = None) -> None:
        super().__init__("New model", parent)
        d = UNetConfig()
        self.datasets = list(datasets or [])
        #: with context "auto": the loaded datasets to measure (set by build; None otherwise)
        self.auto_data: tuple[Path, ...] | None = None
        self.name_edit = QLineEdit(d.name)
        self.dim = _combo(["2", "3"], str(d.dim), "2D models work on slices and are usually better "
                          "for organelles; 3D on (Z, Y, X) patches")
        self.block = _combo(["residual", "vgg"], d.block, "Convolution block type")
        self.kernel = _spin(1, 11, d.kernel_size, "Convolution size per axis")
        self.filters = _spin(1, 512, d.filters, "Filters at the first level (level l has f * 2^l)")
        self.blocks = _spin(1, 8, d.blocks_per_level, "Convolution blocks per level")
        self.norm = _combo(["batchnorm", "none"], d.normalization, "Normalisation after convolutions")
        self.depth = _spin(0, 8, d.depth, "Number of poolings; tiles must be multiples of 2^depth")
        self.outputs = _spin(1, 64, locked_outputs or d.outputs, "Outputs = labels to segment")
        if locked_outputs is not None:
            self.outputs.setEnabled(False)
            self.outputs.setToolTip("Locked to the datasets' number of labels (safe mode; "
                                    "start with --gui-no-safe to change it)")
        self.activation = _combo(["sigmoid", "softmax", "tanh", "linear"], d.activation,
                                 "sigmoid: independent labels; softmax: exclusive classes; "
                                 "tanh/linear: distance-map regression")
        # Not chosen by the user: measured on the loaded data when there is some (issue 16).
        self.context = _combo(["0", "1", "2", "3", "auto"],
                              "auto" if self.datasets else str(d.context),
                              "2.5D: neighbouring slices on either side given to a 2D model as "
                              "extra input channels (context for isotropic stacks such as "
                              "FIB-SEM). auto (the default when datasets are loaded): measured "
                              "on the loaded datasets (voxel size, how alike neighbouring "
                              "slices are)")
        self.dim.currentTextChanged.connect(lambda text: self.context.setEnabled(text == "2"))
        for label, widget in (("Name", self.name_edit), ("Dimension", self.dim), ("Block", self.block),
                              ("Kernel size", self.kernel), ("Initial filters", self.filters),
                              ("Blocks per level", self.blocks), ("Normalisation", self.norm),
                              ("Depth", self.depth), ("Outputs", self.outputs),
                              ("Output activation", self.activation),
                              ("Context slices (2.5D)", self.context)):
            self.form.addRow(label, widget)

    def build(self) -> UNetConfig:
        dim = int(self.dim.currentText())
        context, self.auto_data = self.context.currentText(), None
        if dim == 2 and context == "auto":
            if not self.datasets:
                raise ConfigError("context 'auto' measures the loaded datasets: load the "
                                  "training dataset first, or choose a number of slices")
            self.auto_data = tuple(self.datasets)
        slices = int(context) if dim == 2 and context != "auto" else 0
        return UNetConfig(dim=dim, context=slices, block=self.block.currentText(),
                          kernel_size=self.kernel.value(), filters=self.filters.value(),
                          blocks_per_level=self.blocks.value(), normalization=self.norm.currentText(),
                          depth=self.depth.value(), outputs=self.outputs.value(),
                          activation=self.activation.currentText(),
                          name=self.name_edit.text().strip() or "unet")


_PRECISIONS = {"auto": None, "float32": False, "bfloat16": True}  # -> TrainConfig.mixed_precision
FINE_TUNE_MINUTES = 5  # default time limit when the chosen model is already trained


class TrainDialog(ConfigDialog):
    """Model, training and validation datasets and every :class:`TrainConfig` option."""

    def __init__(self, models: list[str], datasets: list[DatasetSummary], current_model: str | None = None,
                 current_dataset: Path | None = None, dim: int = 2, parent: QWidget | None = None,
                 trained: frozenset[str] = frozenset()) -> None:
        """Long because it lays out the form's rows in reading order, one TrainConfig option each;
        split, the form would be harder to follow than to scroll."""
        super().__init__("Train model", parent)
        self.trained = trained  # models that already learnt: training them is fine-tuning
        d = TrainConfig()
        self.datasets = {summary.path: summary for summary in datasets}
        self.model_combo = _combo(models, current_model or (models[0] if models else ""))
        self.train_list = DatasetChecklist(datasets, current_dataset)
        self.valid_list = DatasetChecklist(datasets, current_dataset)
        self.loss = _combo(list(LOSS_NAMES), d.loss,
                           "Dice: overlap; CrossEntropy: per voxel; MSE: for distance maps; "
                           "BoundaryCrossEntropy: voxels within 3 px of a label's edge weigh 6x")
        self.batch = _spin(1, 1024, d.batch_size, "Patches per training step")
        self.micro = _spin(0, 1024, int(d.micro_batch_size or 0),
                           "Patches computed at once: each batch runs in several passes whose gradients "
                           "are averaged, so memory follows this number, not the batch size. Must divide "
                           "the batch size. auto: 2 on a CPU, the whole batch on a GPU")
        self.micro.setSpecialValueText("auto")
        patch = d.patch if dim == 2 else (32, 128, 128)
        smallest = _smallest_sample(datasets)
        if smallest is not None:  # a default that fits every loaded sample
            patch = tuple(min(p, s) for p, s in zip(patch, smallest))
        self.patch = [_spin(1, 4096, v, "Patch size (Z, Y, X); Z = 1 for 2D models") for v in patch]
        self.steps = _spin(1, 100000, d.steps_per_epoch, "Training steps per epoch")
        self.epochs = _spin(1, 100000, d.epochs)
        self.valid_steps = _spin(0, 100000, d.validation_steps, "0 = no validation")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(d.learning_rate)
        self.focus = QDoubleSpinBox()
        self.focus.setRange(0.0, 1.0)
        self.focus.setSingleStep(0.05)
        self.focus.setValue(d.label_focus)
        self.focus.setToolTip("Fraction of patches centred on a labelled voxel (rare labels are seen)")
        self.keep_best = QCheckBox("Keep best (validation loss)")
        self.keep_best.setChecked(d.keep_best)
        self.early = QCheckBox("Early stopping")
        self.early.setChecked(d.early_stopping)
        self.reduce_lr = QCheckBox("Reduce LR on plateau")
        self.reduce_lr.setChecked(d.reduce_lr)
        self.schedule = _combo(["plateau", "cosine", "constant"], d.lr_schedule,
                               "plateau: halve the LR when the loss stalls (with 'Reduce LR on plateau'); "
                               "cosine: decay it smoothly to ~0 over the run or the time limit (best for "
                               "a fixed budget); constant")
        self.schedule.currentTextChanged.connect(lambda s: self.reduce_lr.setEnabled(s == "plateau"))
        self.time_limit = _spin(0, 100000, int(d.time_limit_minutes or 0),
                                "Stop after this many minutes, keeping the best weights (0 = no limit)")
        self.time_limit.setSuffix(" min")
        self.time_limit.setSpecialValueText("no limit")
        self.mixed = _combo(list(_PRECISIONS), "auto", "auto: bfloat16 (mixed precision) for 2D models "
                            "where it is ~20% faster: CPUs with bf16 instructions, GPUs of compute "
                            "capability >= 8; float32 elsewhere and for 3D models")
        self.rotate = QCheckBox("Rotate 90°")
        self.rotate.setChecked(d.rotate)
        self.flip = QCheckBox("Flip")
        self.flip.setChecked(d.flip)
        self.intensity = QCheckBox("Intensity jitter")
        self.intensity.setChecked(d.intensity)
        self.target = _combo(["label", "distance"], d.target, "Train on binary labels or their "
                             "distance maps (label_XXXX_dt, use MSE and tanh/linear)")
        self.log_edit = PathEdit("save", "CSV (*.csv)", "optional per-epoch CSV log")
        rows = (("Model", self.model_combo), ("Training datasets", self.train_list),
                ("Validation datasets", self.valid_list), ("Loss", self.loss), ("Target", self.target),
                ("Batch size", self.batch), ("Patches per pass", self.micro),
                ("Patch Z, Y, X", _pair(*self.patch)),
                ("Steps per epoch", self.steps), ("Epochs", self.epochs),
                ("Validation steps", self.valid_steps), ("Learning rate", self.lr),
                ("Label focus", self.focus), ("LR schedule", self.schedule), ("Time limit", self.time_limit),
                ("Callbacks", _pair(self.keep_best, self.early, self.reduce_lr, vertical=True)),
                ("Precision", self.mixed),
                ("Augmentation", _pair(self.rotate, self.flip, self.intensity)), ("Log", self.log_edit))
        for label, widget in rows:
            self.form.addRow(label, widget)
        self.warning_label = QLabel("")
        self.warning_label.setStyleSheet("color: #b9770e")
        self.warning_label.setWordWrap(True)
        self.body.insertWidget(1, self.warning_label)
        for widget in (self.train_list, self.valid_list):
            widget.itemChanged.connect(self._show_warnings)
        self.valid_steps.valueChanged.connect(self._show_warnings)
        self._show_warnings()
        self.model_combo.currentTextChanged.connect(self._fine_tune_default)
        self._fine_tune_default(self.model_combo.currentText())
        self._batch_was = self.batch.value()
        self.batch.valueChanged.connect(self._keep_patch_counts)

    def _keep_patch_counts(self, batch: int) -> None:
        """Steps still at the values computed for the old batch follow the new one (epochs of 512
        patches, validation of 64, as on the CLI); steps the user typed stay."""
        from deepscem.config import EPOCH_PATCHES, VALIDATION_PATCHES, steps_for

        for spin, patches in ((self.steps, EPOCH_PATCHES), (self.valid_steps, VALIDATION_PATCHES)):
            if spin.value() and spin.value() == steps_for(patches, self._batch_was):
                spin.setValue(steps_for(patches, batch))
        self._batch_was = batch

    def _fine_tune_default(self, model: str) -> None:
        """A trained model starts from its weights: a short time budget (fine-tuning) by default."""
        if model in self.trained:
            self.time_limit.setValue(FINE_TUNE_MINUTES)
            self.setWindowTitle(f"Fine-tune {model} (starts from its trained weights)")
        else:
            self.setWindowTitle("Train model")

    def warnings(self) -> tuple[list[str], list[str]]:
        """(same-dataset warnings, test-volume warnings) for the ticked datasets."""
        valid = self.valid_list.ticked() if self.valid_steps.value() > 0 else ()
        return training_warnings(self.train_list.ticked(), valid, self.datasets)

    def _show_warnings(self, *_args) -> None:
        same, tests = self.warnings()
        self.warning_label.setText("\n".join(same + tests))
        self.warning_label.setVisible(bool(same or tests))

    def accept(self) -> None:
        """A test volume among the training data is asked about once; then trained on if
        the user insists (training on everything before a final run is legitimate)."""
        _, tests = self.warnings()
        if tests and QMessageBox.question(
                self, "Train on a test volume?", "\n".join(tests) + ".\nTrain on it anyway?",
                QMessageBox.Yes | QMessageBox.No, QMessageBox.No) != QMessageBox.Yes:
            return
        super().accept()

    def log_path(self) -> Path | None:
        return Path(self.log_edit.text()) if self.log_edit.text() else None

    def build(self) -> TrainRequest:
        if not self.model_combo.currentText():
            raise ConfigError("create or load a model first")
        train = self.train_list.ticked()
        if not train:
            raise ConfigError("tick at least one training dataset")
        valid = self.valid_list.ticked()
        if self.valid_steps.value() > 0 and not valid:
            raise ConfigError("tick a validation dataset, or set validation steps to 0")
        patch = tuple(s.value() for s in self.patch)
        for path in train + (valid if self.valid_steps.value() > 0 else ()):
            for sample, (shape, _layers) in self.datasets[path].samples.items():
                if any(p > s for p, s in zip(patch, shape)):
                    raise ConfigError(f"the patch {patch} is larger than sample {sample} {shape} of "
                                      f"{path.name}; use a patch of at most that size")
        config = TrainConfig(loss=self.loss.currentText(), batch_size=self.batch.value(),
                             patch=patch, steps_per_epoch=self.steps.value(),
                             epochs=self.epochs.value(), validation_steps=self.valid_steps.value(),
                             learning_rate=self.lr.value(), keep_best=self.keep_best.isChecked(),
                             early_stopping=self.early.isChecked(), reduce_lr=self.reduce_lr.isChecked(),
                             rotate=self.rotate.isChecked(), flip=self.flip.isChecked(),
                             intensity=self.intensity.isChecked(), label_focus=self.focus.value(),
                             target=self.target.currentText(), lr_schedule=self.schedule.currentText(),
                             time_limit_minutes=self.time_limit.value() or None,
                             mixed_precision=_PRECISIONS[self.mixed.currentText()],
                             micro_batch_size=self.micro.value() or None,
                             # issue 16: validating on the training file itself measures nothing new;
                             # hold its last slices back instead (samples too thin: the whole file)
                             holdout=HOLDOUT if valid and set(valid) == set(train) else 0.0)
        return TrainRequest(self.model_combo.currentText(), train, valid, config)


def _smallest_sample(datasets: list[DatasetSummary]) -> tuple[int, int, int] | None:
    """The per-axis minimum (Z, Y, X) over every sample of ``datasets``; None if none."""
    shapes = [shape for summary in datasets for shape, _ in summary.samples.values()]
    return tuple(min(axis) for axis in zip(*shapes)) if shapes else None


class PredictDialog(ConfigDialog):
    """Model, dataset to segment, output file and every :class:`PredictConfig` option."""

    def __init__(self, models: list[str], datasets: list[DatasetSummary], current_model: str | None = None,
                 current_dataset: Path | None = None, parent: QWidget | None = None) -> None:
        """Long because it lays out the form's rows in reading order, one PredictConfig option each."""
        super().__init__("Predict", parent)
        d = PredictConfig()
        self.datasets = datasets
        self.model_combo = _combo(models, current_model or (models[0] if models else ""))
        self.dataset_combo = QComboBox()
        for summary in datasets:
            self.dataset_combo.addItem(f"{summary.name} [{summary.path.name}]", str(summary.path))
        if current_dataset is not None:
            self.dataset_combo.setCurrentIndex(max(self.dataset_combo.findData(str(current_dataset)), 0))
        self.output = PathEdit("save", DATASET_FILTER, "prediction .hdf5")
        self._suggested = ""  # the output last proposed (replaced while the user keeps it)
        self.auto_patch = QCheckBox("Model default (larger than its training patch)")
        self.auto_patch.setChecked(True)
        self.patch = [_spin(1, 8192, v, "Tile (Z, Y, X): as large as memory allows") for v in (1, 512, 512)]
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
        self.batch = _spin(1, 256, d.batch_size, "Tiles per forward pass")
        self.use_threshold = QCheckBox("Threshold to a binary mask at")
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setValue(0.5)
        self.min_size = _spin(0, 10**9, d.min_size, "After thresholding, remove connected objects of "
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
        self.tta = QCheckBox("Test-time augmentation (average flips/rotations)")
        self.overwrite = QCheckBox("Overwrite the output file if it exists")
        self.dataset_combo.currentIndexChanged.connect(self._suggest_output)
        for label, widget in (("Model", self.model_combo), ("Dataset", self.dataset_combo),
                              ("Output", self.output), ("Tile", self.auto_patch), ("", _pair(*self.patch)),
                              ("Overlap", self.overlap), ("Batch size", self.batch),
                              ("Engine", self.engine),
                              ("Smooth along Z", self.z_smooth),
                              ("", _pair(self.use_threshold, self.threshold)),
                              ("Remove objects under", self.min_size), ("", self.tta),
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
                               tta=self.tta.isChecked(), z_smooth=self.z_smooth.value(),
                               min_size=self.min_size.value() if self.use_threshold.isChecked() else 0)
        return PredictRequest(self.model_combo.currentText(), dataset, output, config)
