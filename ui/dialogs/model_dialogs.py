"""Dialogs for the model actions: create (UNetConfig), train (TrainConfig); predict
(PredictConfig, predict_dialog) and evaluate (evaluate_dialog) are imported from here too."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from PyQt5.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QWidget,
)

from deepscem.config import HOLDOUT, LOSS_NAMES, TrainConfig, UNetConfig, scaled_patch
from deepscem.errors import ConfigError, DeepScemError

from ..dataset_tree import DatasetSummary
from .base import ConfigDialog, PathEdit, combo_box, spin_box
from .dataset_checklist import DatasetChecklist
from .dataset_dialogs import _pair
from .evaluate_dialog import EvaluateDialog, EvaluateRequest, reference_for  # noqa: F401
from .predict_dialog import PredictDialog, PredictRequest  # noqa: F401
from .train_warnings import training_warnings


@dataclass(frozen=True)
class TrainRequest:
    model: str
    train: tuple[Path, ...]
    valid: tuple[Path, ...]
    config: TrainConfig


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
        self.dim = combo_box(["2", "3"], str(d.dim), "2D models work on slices and are usually better "
                             "for organelles; 3D on (Z, Y, X) patches")
        self.block = combo_box(["residual", "vgg"], d.block, "Convolution block type")
        self.kernel = spin_box(1, 11, d.kernel_size, "Convolution size per axis")
        self.filters = spin_box(1, 512, d.filters, "Filters at the first level (level l has f * 2^l)")
        self.blocks = spin_box(1, 8, d.blocks_per_level, "Convolution blocks per level")
        self.norm = combo_box(["batchnorm", "instance", "none"], d.normalization,
                              "Normalisation after convolutions: batchnorm (default), instance "
                              "(per patch and channel) or none")
        self.depth = spin_box(0, 8, d.depth, "Number of poolings; tiles must be multiples of 2^depth")
        self.outputs = spin_box(1, 64, locked_outputs or d.outputs, "Outputs = labels to segment")
        if locked_outputs is not None:
            self.outputs.setEnabled(False)
            self.outputs.setToolTip("Locked to the datasets' number of labels (safe mode; "
                                    "start with --gui-no-safe to change it)")
        self.activation = combo_box(["sigmoid", "softmax", "tanh", "linear"], d.activation,
                                    "sigmoid: independent labels; softmax: exclusive classes; "
                                    "tanh/linear: distance-map regression")
        # Not chosen by the user: measured on the loaded data when there is some (issue 16).
        self.context = combo_box(["0", "1", "2", "3", "auto"],
                                 "auto" if self.datasets else str(d.context),
                                 "2.5D: neighbouring slices on either side given to a 2D model as "
                                 "extra input channels (context for isotropic stacks such as "
                                 "FIB-SEM). auto (the default when datasets are loaded): measured "
                                 "on the loaded datasets (voxel size, how alike neighbouring "
                                 "slices are)")
        self.scale = combo_box(["1", "2", "4"], str(d.scale),
                               "2D: the network works at 1/scale of the YX resolution (block means in, "
                               "its output up-sampled back), so a patch of the same cost sees scale² "
                               "times the area: for large organelles in finely sampled images")
        self.dim.currentTextChanged.connect(lambda text: [w.setEnabled(text == "2")
                                                          for w in (self.context, self.scale)])
        for label, widget in (("Name", self.name_edit), ("Dimension", self.dim), ("Block", self.block),
                              ("Kernel size", self.kernel), ("Initial filters", self.filters),
                              ("Blocks per level", self.blocks), ("Normalisation", self.norm),
                              ("Depth", self.depth), ("Outputs", self.outputs),
                              ("Output activation", self.activation),
                              ("Context slices (2.5D)", self.context),
                              ("Resolution scale (2D)", self.scale)):
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
        return UNetConfig(dim=dim, context=slices, scale=int(self.scale.currentText()) if dim == 2 else 1,
                          block=self.block.currentText(),
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
                 trained: frozenset[str] = frozenset(), scale: int = 1,
                 kinds: dict[str, tuple[int, int]] | None = None,
                 contexts: dict[str, int] | None = None) -> None:
        """Long because it lays out the form's rows in reading order, one TrainConfig option each;
        split, the form would be harder to follow than to scroll. dim, scale: the current model's;
        kinds: (dim, scale) of every model offered, so the default patch follows the choice;
        contexts: their 2.5D contexts (what "Choose from the data" reports as the model's)."""
        super().__init__("Train model", parent)
        self.trained = trained  # models that already learnt: training them is fine-tuning
        d = TrainConfig()
        self.datasets = {summary.path: summary for summary in datasets}
        self.model_combo = combo_box(models, current_model or (models[0] if models else ""))
        self.train_list = DatasetChecklist(datasets, current_dataset)
        self.valid_list = DatasetChecklist(datasets, current_dataset)
        self.loss = combo_box(list(LOSS_NAMES), d.loss,
                              "Dice: overlap; CrossEntropy: per voxel; MSE: for distance maps; "
                              "BoundaryCrossEntropy: voxels within 3 px of a label's edge weigh 6x; "
                              "TopKCrossEntropy: only the hardest 10 % of voxels count")
        self.batch = spin_box(1, 1024, d.batch_size, "Patches per training step")
        self.micro = spin_box(0, 1024, int(d.micro_batch_size or 0),
                              "Patches computed at once: each batch runs in several passes whose gradients "
                              "are averaged, so memory follows this number, not the batch size. Must divide "
                              "the batch size. auto: 2 on a CPU, the whole batch on a GPU")
        self.micro.setSpecialValueText("auto")
        self._smallest = _smallest_sample(datasets)
        self._kinds = dict(kinds or {})
        self._kind = (dim, scale)  # the model whose default patch the spins were given
        self.patch = [spin_box(1, 4096, v, "Patch size (Z, Y, X); Z = 1 for 2D models")
                      for v in self._default_patch(*self._kind)]
        self.steps = spin_box(1, 100000, d.steps_per_epoch, "Training steps per epoch")
        self.epochs = spin_box(1, 100000, d.epochs)
        self.valid_steps = spin_box(0, 100000, d.validation_steps, "0 = no validation")
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
        self.calibrate = QCheckBox("Threshold from held-out data")  # train --calibrate, off by default
        self.calibrate.setChecked(d.calibrate)
        self.calibrate.setToolTip("After training, move each label's threshold to the best IoU on the held-"
                                  "back slices or other validation data (a few slices can mislead it)")
        self.schedule = combo_box(["plateau", "cosine", "constant"], d.lr_schedule,
                                  "plateau: halve the LR when the loss stalls (with 'Reduce LR on plateau'); "
                                  "cosine: decay it smoothly to ~0 over the run or the time limit (best for "
                                  "a fixed budget); constant")
        self.schedule.currentTextChanged.connect(lambda s: self.reduce_lr.setEnabled(s == "plateau"))
        self.time_limit = spin_box(0, 100000, int(d.time_limit_minutes or 0),
                                   "Stop after this many minutes, keeping the best weights (0 = no limit)")
        self.time_limit.setSuffix(" min")
        self.time_limit.setSpecialValueText("no limit")
        self.mixed = combo_box(list(_PRECISIONS), "auto", "auto: bfloat16 (mixed precision) for 2D models "
                               "where it is ~20% faster: CPUs with bf16 instructions, GPUs of compute "
                               "capability >= 8; float32 elsewhere and for 3D models")
        self.rotate = QCheckBox("Rotate 90°")
        self.rotate.setChecked(d.rotate)
        self.flip = QCheckBox("Flip")
        self.flip.setChecked(d.flip)
        self.deform = QCheckBox("Deform")
        self.deform.setChecked(d.deform)
        self.deform.setToolTip("Rotation by any angle, zoom (0.83-1.2x) and smooth elastic displacement, "
                               "on half the patches")
        self.intensity = QCheckBox("Intensity jitter")
        self.intensity.setChecked(d.intensity)
        self.target = combo_box(["label", "distance"], d.target, "Train on binary labels or their "
                                "distance maps (label_XXXX_dt, use MSE and tanh/linear)")
        self.log_edit = PathEdit("save", "CSV (*.csv)", "optional per-epoch CSV log")
        self._contexts = dict(contexts or {})
        self.auto_button = QPushButton("Choose from the data")
        self.auto_button.setToolTip(
            "Fill in patch, batch, patches per pass, validation (slices held back when no other "
            "validation dataset is ticked), time budget and schedule from the ticked training "
            "datasets and this computer, as 'train --auto' does; every value stays editable")
        self.auto_button.clicked.connect(self.choose_from_data)
        self.auto_note = QLabel("")
        self.auto_note.setVisible(False)
        rows = (("Model", self.model_combo), ("Training datasets", self.train_list),
                ("Validation datasets", self.valid_list),
                ("Automatic", _pair(self.auto_button, self.auto_note, vertical=True)),
                ("Loss", self.loss), ("Target", self.target),
                ("Batch size", self.batch), ("Patches per pass", self.micro),
                ("Patch Z, Y, X", _pair(*self.patch)),
                ("Steps per epoch", self.steps), ("Epochs", self.epochs),
                ("Validation steps", self.valid_steps), ("Learning rate", self.lr),
                ("Label focus", self.focus), ("LR schedule", self.schedule), ("Time limit", self.time_limit),
                ("Callbacks", _pair(self.keep_best, self.early, self.reduce_lr, self.calibrate,
                                    vertical=True)),
                ("Precision", self.mixed),
                ("Augmentation", _pair(self.rotate, self.flip, self.deform, self.intensity)),
                ("Log", self.log_edit))
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
        self.model_combo.currentTextChanged.connect(self._follow_model)
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

    def _default_patch(self, dim: int, scale: int) -> tuple[int, ...]:
        """The default patch of a (dim, scale) model (a model at 1/scale of the resolution:
        scale times larger for the same cost), cut to fit every loaded sample."""
        patch = scaled_patch(TrainConfig().patch, scale) if dim == 2 else (32, 128, 128)
        if self._smallest is not None:
            patch = tuple(min(p, s) for p, s in zip(patch, self._smallest))
        return patch

    def _follow_model(self, model: str) -> None:
        """A patch still at the previous model's default becomes the new model's; typed stays."""
        kind = self._kinds.get(model)
        if kind is None or kind == self._kind:
            return
        if tuple(s.value() for s in self.patch) == self._default_patch(*self._kind):
            for spin, value in zip(self.patch, self._default_patch(*kind)):
                spin.setValue(value)
        self._kind = kind

    def _fine_tune_default(self, model: str) -> None:
        """A trained model starts from its weights: a short time budget (fine-tuning) by default."""
        if model in self.trained:
            self.time_limit.setValue(FINE_TUNE_MINUTES)
            self.setWindowTitle(f"Fine-tune {model} (starts from its trained weights)")
        else:
            self.setWindowTitle("Train model")

    def choose_from_data(self) -> None:
        """The automatic configuration (deepscem.training.autoconfig, as ``train --auto``) for
        the chosen model and the ticked training datasets, written into the form's widgets and
        listed with its reasons under the button; problems go to the error line."""
        from deepscem.outputs import same_files
        from deepscem.training.autoconfig import apply, for_model

        train = self.train_list.ticked()
        if not train:
            self.error_label.setText("tick at least one training dataset, then choose from the data")
            return
        valid = self.valid_list.ticked()
        model = self.model_combo.currentText()
        dim, scale = self._kinds.get(model, self._kind)
        gpu = _gpu_known()
        try:
            choice, hint = for_model(train, valid, dim=dim, context=self._contexts.get(model, 0),
                                     scale=scale, gpu=bool(gpu))
        except (DeepScemError, OSError) as err:
            self.error_label.setText(f"could not read the training data: {err}")
            return
        config = apply(TrainConfig(validation_steps=self.valid_steps.value() or 1), choice)
        self.batch.setValue(config.batch_size)  # first: the step counts follow the batch
        for spin, value in zip(self.patch, config.patch):
            spin.setValue(value)
        self.micro.setValue(config.micro_batch_size or 0)
        self.steps.setValue(config.steps_per_epoch)
        self.epochs.setValue(config.epochs)
        self.valid_steps.setValue(config.validation_steps)
        self.keep_best.setChecked(config.keep_best)
        self.schedule.setCurrentText(config.lr_schedule)
        self.time_limit.setValue(round(config.time_limit_minutes))
        if not valid or same_files(valid, train):  # no validation data of its own: the training
            self.valid_list.set_ticked(list(train))  # files, their last slices held back
        every = [(r[0].upper() + r[1:]).replace("--keep-best", "'Keep best'") for r in choice.reasons]
        # Short under the button (the dialog is already tall; the values are in the form below and
        # the held-back slices in the note at the bottom); every reason in the tooltip.
        lines = [every[0], "Patch, batch, passes, time budget, schedule and weights kept: set below "
                           "(hover here for the reasons)"]
        if gpu is None:
            lines.append("Device not detected yet (TensorFlow still loading): sized for a CPU")
        if hint and model not in self.trained:
            lines.append("Hint: " + hint)
        # wrapped here, not by the label: a word-wrapped label in a form row gets the height of
        # a narrower width and is cut off
        self.auto_note.setText("\n".join(textwrap.fill(line, 70, initial_indent="• ", subsequent_indent="   ")
                                         for line in lines))
        self.auto_note.setToolTip("\n".join(every))
        self.auto_note.setVisible(True)
        self.form_changed()
        self.error_label.setText("")

    def warnings(self) -> tuple[list[str], list[str]]:
        """(same-dataset warnings, test-volume warnings) for the ticked datasets."""
        valid = self.valid_list.ticked() if self.valid_steps.value() > 0 else ()
        return training_warnings(self.train_list.ticked(), valid, self.datasets)

    def _show_warnings(self, *_args) -> None:
        same, tests = self.warnings()
        self.warning_label.setText("\n".join(same + tests))
        self.warning_label.setVisible(bool(same or tests))
        self.fit_to_screen()  # the note takes room from the form

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
                             deform=self.deform.isChecked(), intensity=self.intensity.isChecked(),
                             label_focus=self.focus.value(), calibrate=self.calibrate.isChecked(),
                             target=self.target.currentText(), lr_schedule=self.schedule.currentText(),
                             time_limit_minutes=self.time_limit.value() or None,
                             mixed_precision=_PRECISIONS[self.mixed.currentText()],
                             micro_batch_size=self.micro.value() or None,
                             # issue 16: validating on the training file itself measures nothing new;
                             # hold its last slices back instead (samples too thin: the whole file)
                             holdout=HOLDOUT if valid and set(valid) == set(train) else 0.0)
        return TrainRequest(self.model_combo.currentText(), train, valid, config)


def _gpu_known() -> bool | None:
    """Whether Keras computes on a GPU; None while Keras is not imported yet (the GUI imports
    it in a worker: asking here would block the window for its import)."""
    import sys

    if "keras" not in sys.modules:
        return None
    from deepscem.devices import has_gpu

    return has_gpu()


def _smallest_sample(datasets: list[DatasetSummary]) -> tuple[int, int, int] | None:
    """The per-axis minimum (Z, Y, X) over every sample of ``datasets``; None if none."""
    shapes = [shape for summary in datasets for shape, _ in summary.samples.values()]
    return tuple(min(axis) for axis in zip(*shapes)) if shapes else None
