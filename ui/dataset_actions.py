"""The dataset side of the main window: controls 1-6 and the Data menu.

Every method that takes a request runs the core call (in a worker when it may be long)
and refreshes the tree and the view when it is done. The ``*_clicked`` slots only ask
the user (dialogs) and call those methods, so tests call the methods directly.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PyQt5.QtCore import QObject
from PyQt5.QtWidgets import QInputDialog, QMessageBox

from deepscem import dataset as ds_core
from deepscem.dataset import Dataset
from deepscem.errors import DatasetError

from .dialogs import file_dialogs
from .dialogs.base import DATASET_FILTER
from .dialogs.dataset_dialogs import (
    AddSampleDialog,
    AddSampleRequest,
    AliasesDialog,
    CreateDatasetDialog,
    CreateDatasetRequest,
    CropDialog,
    CropRequest,
    DistanceDialog,
    DistanceRequest,
    SaveAsDialog,
    SaveAsRequest,
)
from .errors import guard, show_error
from .workers import Worker

IMAGE_SUFFIXES = (".tif", ".tiff", ".npy")
log = logging.getLogger("deepscem.gui")


# Core calls run in workers: each opens the file for writing only for its own duration.
def _add_sample(req: AddSampleRequest, *, progress=None, cancel=None):
    with Dataset.open(req.dataset, "r+") as ds:
        labels = [str(p) if p is not None else None for p in req.labels]
        if not any(labels):  # no label file at all: a volume to paint or predict (nothing annotated)
            labels = []
        ds.add_sample(req.name, str(req.image), labels, progress=progress, cancel=cancel)
    return req


def _crop(req: CropRequest, *, progress=None, cancel=None):
    with Dataset.open(req.dataset, "r+") as ds:
        sample = ds.crop_sample(req.sample, req.z, req.y, req.x, new_name=req.new_name,
                                progress=progress, cancel=cancel)
        return sample.name


def _distance(req: DistanceRequest, *, progress=None, cancel=None):
    with Dataset.open(req.dataset, "r+") as ds:
        return ds.distance_transform(req.sample, req.label, scale=req.scale, sampling=req.sampling,
                                     per_slice=req.per_slice, overwrite=True,
                                     progress=progress, cancel=cancel)


def _export(path: Path, sample: str, folder: Path, *, progress=None, cancel=None):
    with Dataset.open(path) as ds:
        return ds.export_sample(sample, folder, progress=progress, cancel=cancel)


class DatasetActions(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.w = window
        self.tree = window.tree
        self.view = window.view
        # Reading the file can fail (moved, changed by another program): message box, not a crash.
        self.tree.sampleSelected.connect(guard(window, self.show_sample, "Show sample"))
        self.tree.layersChanged.connect(guard(window, self._layers_changed, "Show layers"))

    # --- helpers -------------------------------------------------------------------------
    def _selected_dataset(self) -> Path:
        path, _, _ = self.tree.selection()
        if path is None:
            if len(self.tree.dataset_paths()) == 1:
                return self.tree.dataset_paths()[0]
            raise DatasetError("select a dataset in the dataset list first")
        return path

    def _selected_sample(self) -> tuple[Path, str]:
        path, sample, _ = self.tree.selection()
        if path is None or sample is None:
            raise DatasetError("select a sample in the dataset list first")
        return path, sample

    def refresh(self, path: Path, select_sample: str | None = None) -> None:
        self.tree.add_dataset(path)
        if select_sample is not None:
            self.tree.select(path, select_sample)
        if self.view.showing(path):
            sample = self.view.source.sample
            if sample in self.tree.summaries[Path(path)].samples:
                self.show_sample(str(path), sample)
            else:
                self.view.clear()
        else:
            self._sync_view()

    def show_sample(self, path: str, sample: str) -> None:
        self.view.show_sample(path, sample, self.tree.checked_layers(path, sample))

    def _layers_changed(self, path: str, sample: str) -> None:
        if self.view.showing(path, sample):
            self.view.set_layers(self.tree.checked_layers(path, sample))
        else:
            self.tree.select(path, sample)

    # --- actions (called by slots and tests) ---------------------------------------------
    def load(self, path: str | Path) -> Path:
        """Control 1: open a dataset file read-only into the list (DatasetError if not one)."""
        summary = self.tree.add_dataset(path)
        self.tree.select(summary.path, next(iter(summary.samples), None))
        self.w.statusBar().showMessage(f"loaded {summary.path}", 5000)
        log.info("dataset loaded: %s", summary.path)
        return summary.path

    def unload(self, path: str | Path) -> None:
        """Control 2: take a dataset out of the list; the view is cleared if it showed it."""
        if self.view.showing(path):
            self.view.clear()
        self.tree.remove_dataset(path)
        self._sync_view()  # the shown sample may have had this file's layers over it

    def _sync_view(self) -> None:
        """Draw what the tree has ticked for the shown sample (after links appeared or went)."""
        src = self.view.source
        if src is not None:
            self.view.set_layers(self.tree.checked_layers(src.path, src.sample))

    def create(self, req: CreateDatasetRequest) -> Path:
        with Dataset.create(req.path, req.name, req.n_labels):
            pass
        return self.load(req.path)

    def add_sample(self, req: AddSampleRequest, on_error=None) -> Worker:
        """Control 3: stream an image and its labels into the dataset, in a worker."""
        return self.w.tasks.run(_add_sample, req, title=f"Adding sample {req.name}",
                                on_result=lambda r: self.refresh(r.dataset, r.name), on_error=on_error)

    def remove_sample(self, path: Path, sample: str) -> None:
        """Control 4 (the file keeps its size until "save as", as in the original)."""
        if self.view.showing(path, sample):
            self.view.clear()
        with Dataset.open(path, "r+") as ds:
            ds.remove_sample(sample)
        self.refresh(path)

    def save_as(self, req: SaveAsRequest) -> Worker:
        """Control 5: a compact copy; the copy is loaded next to the original."""
        return self.w.tasks.run(ds_core.save_as, req.source, req.target, original=req.original,
                                title=f"Saving {req.target.name}",
                                on_result=lambda target: self.load(target))

    def rename_sample(self, path: Path, old: str, new: str) -> None:
        was_shown = self.view.showing(path, old)
        with Dataset.open(path, "r+") as ds:
            ds.rename_sample(old, new)
        if was_shown:
            self.view.clear()
        self.refresh(path, new)

    def set_aliases(self, path: Path, names: list[str]) -> None:
        with Dataset.open(path, "r+") as ds:
            ds.set_label_aliases(names)
        self.refresh(path)

    def crop(self, req: CropRequest) -> Worker:
        return self.w.tasks.run(_crop, req, title=f"Cropping {req.sample}",
                                on_result=lambda name: self.refresh(req.dataset, name))

    def distance_transform(self, req: DistanceRequest) -> Worker:
        def done(layer: str) -> None:
            self.refresh(req.dataset, req.sample)
            self.tree.set_checked(req.dataset, req.sample, layer, True)
        return self.w.tasks.run(_distance, req, title=f"Distance transform of {req.sample}", on_result=done)

    def export(self, path: Path, sample: str, folder: Path) -> Worker:
        return self.w.tasks.run(_export, path, sample, folder, title=f"Exporting {sample}",
                                on_result=lambda files: self.w.statusBar().showMessage(
                                    f"exported {len(files)} files to {folder}", 8000))

    # --- slots: ask, then act ------------------------------------------------------------
    def load_clicked(self) -> None:
        paths = file_dialogs.open_files(self.w, "Load datasets", DATASET_FILTER, kind="dataset")
        for path in paths:
            try:
                self.load(path)
            except Exception as err:  # noqa: BLE001 - one bad file must not stop the others
                show_error(self.w, err, "Load dataset")

    def load_or_report(self, path: str | Path) -> None:
        """Load ``path`` (given on the command line); a message box if it cannot be."""
        try:
            self.load(path)
        except Exception as err:  # noqa: BLE001 - one bad file must not stop the others
            show_error(self.w, err, "Load dataset")

    def open_zarr_clicked(self) -> None:
        """An OME-Zarr image is a folder: a folder picker, then the same read-only load."""
        folder = file_dialogs.folder(self.w, "Open OME-Zarr image (a .ome.zarr folder)", kind="dataset")
        if folder:
            self.load(folder)

    def unload_clicked(self) -> None:
        self.unload(self._selected_dataset())

    def new_clicked(self) -> None:
        req = CreateDatasetDialog(self.w).ask()
        if req is not None:
            self.create(req)

    def add_sample_clicked(self, image: str = "", labels: list[str] | None = None,
                           current: Path | None = None, name: str = "") -> None:
        summaries = list(self.tree.summaries.values())
        if not summaries:
            if QMessageBox.question(self.w, "Add sample", "No dataset is loaded. Create a new one?") \
                    != QMessageBox.Yes:
                return
            self.new_clicked()
            summaries = list(self.tree.summaries.values())
            if not summaries:
                return
        current = current or self.tree.selection()[0]
        dialog = AddSampleDialog(summaries, current, image, labels, self.w, name=name)
        req = dialog.ask()
        if req is not None:
            # A failure found while reading (after the form closed) opens it again as it was.
            preset = dialog.preset()
            self.add_sample(req, on_error=lambda _err: self.add_sample_clicked(**preset))

    def add_files_dropped(self, files: list[str]) -> None:
        """Dropped files: datasets are loaded; images open "Add sample" (image, then labels)."""
        images = [f for f in files if Path(f).suffix.lower() in IMAGE_SUFFIXES]
        for f in files:
            if Path(f).suffix.lower() in (".hdf5", ".h5"):
                try:
                    self.load(f)
                except Exception as err:  # noqa: BLE001
                    show_error(self.w, err, "Load dataset")
        if images:
            self.add_sample_clicked(images[0], images[1:])

    def remove_sample_clicked(self) -> None:
        path, sample = self._selected_sample()
        if QMessageBox.question(self.w, "Remove sample", f"Remove sample {sample!r} from {path.name}?") \
                == QMessageBox.Yes:
            self.remove_sample(path, sample)

    def save_as_clicked(self) -> None:
        req = SaveAsDialog(self._selected_dataset(), self.w).ask()
        if req is not None:
            self.save_as(req)

    def rename_clicked(self) -> None:
        path, sample = self._selected_sample()
        new, ok = QInputDialog.getText(self.w, "Rename sample", f"New name for {sample!r}", text=sample)
        if ok and new.strip() and new.strip() != sample:
            self.rename_sample(path, sample, new.strip())

    def aliases_clicked(self) -> None:
        summary = self.tree.summaries[self._selected_dataset()]
        names = AliasesDialog(summary, self.w).ask()
        if names is not None:
            self.set_aliases(summary.path, names)

    def crop_clicked(self) -> None:
        path, sample = self._selected_sample()
        shape = self.tree.summaries[path].samples[sample][0]
        req = CropDialog(path, sample, shape, self.w).ask()
        if req is not None:
            self.crop(req)

    def distance_clicked(self) -> None:
        path, sample = self._selected_sample()
        req = DistanceDialog(path, sample, self.tree.summaries[path].n_labels, self.w).ask()
        if req is not None:
            self.distance_transform(req)

    def export_clicked(self) -> None:
        path, sample = self._selected_sample()
        folder = file_dialogs.folder(self.w, f"Export {sample} as TIFF to")
        if folder:
            self.export(path, sample, Path(folder))
