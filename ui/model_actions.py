"""The model side of the main window: controls 7-13 and the Model menu.

Keras and the model code are imported inside the worker functions below, never at
import time, so the window shows before TensorFlow is loaded.
"""

from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import QObject
from PyQt5.QtWidgets import QMessageBox

from deepscem.config import UNetConfig
from deepscem.errors import ModelError
from deepscem.models.introspection import model_scale
from deepscem.training.stop_reasons import StopReason

from .dialogs import file_dialogs
from .dialogs.base import MODEL_FILTER
from .dialogs.evaluation_result import EvaluationResultDialog
from .dialogs.model_dialogs import (
    CreateModelDialog,
    EvaluateDialog,
    EvaluateRequest,
    PredictDialog,
    PredictRequest,
    TrainDialog,
    TrainRequest,
)
from .dialogs.train_progress import TrainProgressDialog
from .model_list import ModelEntry
from .workers import Worker


def _load_model(path: Path, *, progress=None, cancel=None):
    from deepscem.models.bioimageio import is_package, load_package
    from deepscem.models.storage import load_model

    # a bioimage.io package: the "model" is its forward function (predict only)
    model, info = load_package(path) if is_package(path) else load_model(path)
    return path, model, info


def _keras_only(entry: ModelEntry, action: str) -> None:
    if not hasattr(entry.model, "count_params"):
        raise ModelError(f"{entry.name} is an imported bioimage.io package: it can predict, not "
                         f"{action}")


def _export_model(entry: ModelEntry, path: Path, *, progress=None, cancel=None):
    if path.suffix.lower() == ".onnx":
        from deepscem.models.export import export_onnx

        return export_onnx(entry.model, path)
    from deepscem.models.export import ExportCard, export_bioimageio

    history = getattr(entry.info, "history", None) or {}
    card = ExportCard(training_data=", ".join(history.get("train_datasets", [])))
    return export_bioimageio(entry.model, entry.info, path, card=card, name=entry.name)


def _create_model(config: UNetConfig, context_from: tuple[Path, ...] | None = None, *,
                  progress=None, cancel=None):
    """(model, info, note): with ``context_from`` the 2.5D context is measured on those
    datasets first (as ``model create --context auto --data ...``), ``note`` says why."""
    import dataclasses

    from deepscem.models.storage import model_info_from
    from deepscem.models.unet import build_unet

    note = ""
    if context_from:
        from deepscem.training.autoconfig import measured_context

        context, note = measured_context(context_from)
        config = dataclasses.replace(config, context=context)
    model = build_unet(config)
    return model, model_info_from(model, config), note


def _save_model(entry: ModelEntry, path: Path, *, progress=None, cancel=None):
    from deepscem.models.storage import save_model

    _keras_only(entry, "be saved as a .keras/.h5 file")
    save_model(entry.model, path, entry.info, overwrite=True)
    return path


def _train(entry: ModelEntry, req: TrainRequest, log_path, *, progress=None, cancel=None):
    from deepscem.training.trainer import train

    _keras_only(entry, "be trained")
    return train(entry.model, entry.info, list(req.train), list(req.valid), req.config,
                 log_path=log_path, progress=progress, cancel=cancel)


def _predict(entry: ModelEntry, req: PredictRequest, overwrite: bool, *, progress=None, cancel=None):
    from deepscem.inference.predictor import Predictor, predict_dataset

    model = entry.model
    if not hasattr(model, "count_params"):  # an imported bioimage.io package
        model = Predictor(None, entry.info, req.config, forward=model)
    return predict_dataset(model, entry.info, req.dataset, req.output, req.config,
                           overwrite=overwrite, progress=progress, cancel=cancel)


def _evaluate(req: EvaluateRequest, *, progress=None, cancel=None):
    from deepscem.evaluation import evaluate

    return evaluate(req.reference, req.segmentation, threshold=req.threshold,
                    progress=progress, cancel=cancel)


def _trained(entry: ModelEntry) -> bool:
    """Whether the model has learnt already (then training it is fine-tuning)."""
    info = entry.info
    return info is not None and (getattr(info, "patch_size", None) is not None
                                 or getattr(info, "history", None) is not None
                                 or bool(getattr(info, "legacy", False)))


def _kind(entry: ModelEntry) -> tuple[int, int]:
    """(dimension, UNetConfig.scale) of a model: what its default training patch follows."""
    return int(getattr(entry.info, "dimension", 2) or 2), model_scale(entry.info)


def _context(entry: ModelEntry) -> int:
    """2.5D context slices per side of a model (from its input channels; 0 when unknown)."""
    from deepscem.dataset.context import model_context

    try:
        return model_context(entry.model)
    except (AttributeError, IndexError, TypeError):  # not a Keras model (e.g. an ONNX file)
        return int(getattr(getattr(entry.info, "unet", None), "context", 0) or 0)


def _accept_fine_tuned(parent, name: str, result) -> bool:
    """Ask whether the fine-tuned weights replace the previous ones (kept until then)."""
    reason = getattr(result, "stopped_reason", "") or "finished"
    return QMessageBox.question(
        parent, "Fine-tuning done",
        f"Fine-tuning of {name}: {reason}. Keep the new weights?\n"
        "No restores the weights it had before.",
        QMessageBox.Yes | QMessageBox.No, QMessageBox.Yes) == QMessageBox.Yes


class ModelActions(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.w = window
        self.models = window.models
        self.result_dialogs: list[EvaluationResultDialog] = []
        self.training: set[str] = set()  # models being trained: their weights are changing
        self.prediction_sources: dict[Path, Path] = {}  # prediction file -> dataset it segments

    def _entry(self, name: str | None = None, idle: bool = False) -> ModelEntry:
        entry = self.models.entry(name) if name else self.models.current_entry()
        if entry is None:
            raise ModelError("select a model in the model list first (load or create one)")
        if idle and entry.name in self.training:
            raise ModelError(f"{entry.name} is being trained; wait for the end of training or cancel it")
        return entry

    # --- actions (called by slots and tests) ---------------------------------------------
    def load(self, path: str | Path) -> Worker:
        """Control 7: load a .keras/.h5 model (DeepSCEM's or the original's) into memory."""
        def done(result) -> None:
            path_, model, info = result
            self.models.add_entry(ModelEntry(Path(path_).stem, model, info, Path(path_), saved=True))
        return self.w.tasks.run(_load_model, Path(path), title=f"Loading {Path(path).name}", on_result=done)

    def create(self, config: UNetConfig, context_from: tuple[Path, ...] | None = None) -> Worker:
        """Control 8: build a new U-Net in memory (unsaved until control 12); with
        ``context_from``, its 2.5D context measured on those datasets (said in the status bar)."""
        def done(result) -> None:
            model, info, note = result
            self.models.add_entry(ModelEntry(config.name, model, info))
            if note:
                self.w.statusBar().showMessage(f"{config.name}: {note}", 15000)
        return self.w.tasks.run(_create_model, config, context_from,
                                title=f"Creating {config.name}", on_result=done)

    def train(self, req: TrainRequest, log_path: Path | None = None) -> Worker:
        """Control 9: train in a worker, with live curves; the entry gets the trained weights."""
        entry = self._entry(req.model, idle=True)
        previous = entry.model.get_weights() if _trained(entry) else None  # fine-tuning: kept

        def done(result) -> None:
            if previous is not None and not _accept_fine_tuned(self.w, entry.name, result):
                entry.model.set_weights(previous)
                return
            entry.model = getattr(result, "model", entry.model)
            entry.info = getattr(result, "info", entry.info)
            entry.saved = False
            self.models.update_entry(entry)
            reason = str(result.stopped_reason)
            message = getattr(result, "message", "")
            self.w.statusBar().showMessage(f"training of {entry.name}: {reason} {message}", 10000)
            # The user must know the weights are the last good ones (unless the window is closing).
            if reason == StopReason.NAN and self.w.isVisible():
                QMessageBox.warning(self.w, "Training stopped", message or "the loss became NaN")

        worker = Worker(_train, entry, req, log_path, title=f"Training {entry.name}")
        limit = req.config.time_limit_minutes
        dialog = TrainProgressDialog(worker, self.w, req.config.steps_per_epoch,
                                     time_limit_s=float(limit) * 60 if limit else None)
        self.train_dialog = dialog
        self.training.add(entry.name)
        self.models.set_training(entry.name, True)

        def ended() -> None:
            self.training.discard(entry.name)
            self.models.set_training(entry.name, False)
        return self.w.tasks.run_worker(worker, on_result=done, dialog=dialog, on_done=ended)

    def predict(self, req: PredictRequest, overwrite: bool = False) -> Worker:
        """Control 10: segment a dataset into a new prediction file, then load and show it."""
        entry = self._entry(req.model, idle=True)

        def done(out_path) -> None:
            path = Path(out_path) if out_path else req.output
            self.prediction_sources[path] = req.dataset
            if path in self.w.tree.summaries:  # overwritten: re-read it
                self.w.dataset_actions.refresh(path)
            else:
                self.w.dataset_actions.load(path)
            # Show the result at once: the first sample with its first prediction ticked.
            samples = self.w.tree.summaries[path].samples
            first = next(iter(samples), None)
            if first is not None:
                self.w.tree.select(path, first)
                for layer in samples[first][1]:
                    if layer.startswith("prediction_"):
                        self.w.tree.set_checked(path, first, layer, True)
                        break
        return self.w.tasks.run(_predict, entry, req, overwrite, title=f"Predicting {req.dataset.name}",
                                on_result=done)

    def evaluate(self, req: EvaluateRequest) -> Worker:
        """Control 11: score a segmentation against references; shows the table."""
        def done(report) -> None:
            title = f"{req.segmentation.name} vs {req.reference.name}"
            dialog = EvaluationResultDialog(report, title, self.w)
            self.result_dialogs.append(dialog)
            dialog.show()
        return self.w.tasks.run(_evaluate, req, title="Evaluating", on_result=done)

    def save(self, name: str, path: str | Path) -> Worker:
        """Control 12: write a model (.keras or .h5) with its metadata."""
        entry = self._entry(name, idle=True)
        path = Path(path)
        if path.suffix.lower() not in (".keras", ".h5"):
            raise ModelError(f"{path.name}: a model file ends in .keras or .h5")

        def done(saved_path) -> None:
            entry.path, entry.saved = Path(saved_path or path), True
            self.models.update_entry(entry)
        return self.w.tasks.run(_save_model, entry, path, title=f"Saving {path.name}", on_result=done)

    def forget(self, name: str) -> None:
        """Drop a model from memory (the list); its file, if any, is kept."""
        entry = self._entry(name, idle=True)
        self.models.remove_entry(entry.name)

    # --- slots: ask, then act ------------------------------------------------------------
    def forget_clicked(self) -> None:
        entry = self._entry(idle=True)
        if not entry.saved and QMessageBox.question(
                self.w, "Remove model", f"{entry.name} is not saved; remove it from memory anyway?",
                QMessageBox.Yes | QMessageBox.No, QMessageBox.No) != QMessageBox.Yes:
            return
        self.forget(entry.name)

    def info_clicked(self) -> None:
        entry = self._entry()
        params = entry.model.count_params() if hasattr(entry.model, "count_params") else "?"
        QMessageBox.information(self.w, f"Model {entry.name}",
                                f"{entry.describe()}\n{params:,} parameters" if isinstance(params, int)
                                else entry.describe())

    def load_clicked(self) -> None:
        paths = file_dialogs.open_files(self.w, "Load models", MODEL_FILTER, kind="model")
        for path in paths:
            self.load(path)

    def create_clicked(self) -> None:
        dialog = CreateModelDialog(self.w, locked_outputs=self.w.locked_outputs(),
                                   datasets=list(self.w.tree.summaries))
        config = dialog.ask()
        if config is not None:
            self.create(config, dialog.auto_data)

    def _names(self) -> list[str]:
        """The models a dialog may offer: not those being trained (their weights change)."""
        return [e.name for e in self.models.entries() if e.name not in self.training]

    def train_clicked(self) -> None:
        entry = self._entry(idle=True)
        dialog = TrainDialog(self._names(), list(self.w.tree.summaries.values()), entry.name,
                             self.w.tree.selection()[0], dim=_kind(entry)[0],
                             parent=self.w,
                             trained=frozenset(e.name for e in self.models.entries() if _trained(e)),
                             scale=_kind(entry)[1], kinds={e.name: _kind(e) for e in self.models.entries()},
                             contexts={e.name: _context(e) for e in self.models.entries()})
        req = dialog.ask()
        if req is not None:
            self.train(req, dialog.log_path())

    def predict_clicked(self) -> None:
        entry = self._entry(idle=True)  # refused now, not after the dialog's OK
        dialog = PredictDialog(self._names(), list(self.w.tree.summaries.values()), entry.name,
                               self.w.tree.selection()[0], self.w)
        req = dialog.ask()
        if req is not None:
            self.predict(req, overwrite=dialog.overwrite.isChecked())

    def evaluate_clicked(self) -> None:
        req = EvaluateDialog(list(self.w.tree.summaries.values()), self.w,
                             sources=self.prediction_sources).ask()
        if req is not None:
            self.evaluate(req)

    def export(self, name: str, path: str | Path) -> Worker:
        """Model > Export: a bioimage.io package (.zip) or an ONNX file (.onnx)."""
        entry = self._entry(name, idle=True)
        _keras_only(entry, "be exported")
        path = Path(path)
        if path.suffix.lower() not in (".zip", ".onnx"):
            raise ModelError(f"{path.name}: export to a .zip (bioimage.io package) or .onnx file")

        def done(written) -> None:
            self.w.statusBar().showMessage(f"exported {written}", 5000)
        return self.w.tasks.run(_export_model, entry, path, title=f"Exporting {path.name}",
                                on_result=done)

    def export_clicked(self) -> None:
        entry = self._entry()
        path = file_dialogs.save_file(self.w, f"Export {entry.name}", f"{entry.name}.zip",
                                      "bioimage.io package (*.zip);;ONNX (*.onnx)", kind="model")
        if path:
            self.export(entry.name, path)

    def save_clicked(self) -> None:
        entry = self._entry(idle=True)
        start = str(entry.path or f"{entry.name}.keras")
        path = file_dialogs.save_file(self.w, f"Save {entry.name}", start, MODEL_FILTER, kind="model")
        if path:
            self.save(entry.name, path if Path(path).suffix else path + ".keras")
