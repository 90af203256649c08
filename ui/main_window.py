"""The main window: the original DeepSCEM's 15 numbered controls, menus with shortcuts, drag and drop.

    1 Load dataset   2 Unload dataset   3 Add sample   4 Remove sample   5 Save dataset as
    6 dataset list (tree)
    7 Load model   8 New model   9 Train   10 Predict   11 Evaluate   12 Save model
    13 model list   14 Z selector   15 main view

The window only lays things out and routes: dataset actions live in
:mod:`ui.dataset_actions`, model actions in :mod:`ui.model_actions`, long work in workers.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PyQt5.QtCore import QEvent, QObject, Qt, QTimer
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import (
    QAction,
    QDockWidget,
    QGraphicsView,
    QGridLayout,
    QGroupBox,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from deepscem.errors import DatasetError

from .about import detect_device, show_about
from .annotation.toolbar import install as install_painting
from .dataset_actions import IMAGE_SUFFIXES, DatasetActions
from .dataset_tree import DatasetTree
from .dialogs import file_dialogs
from .errors import guard
from .model_actions import ModelActions
from .model_list import ModelList
from .objects import ObjectPanel
from .render import to_qimage
from .task_runner import TaskRunner
from .volume_view import VolumeView

log = logging.getLogger("deepscem.gui")
# Closing while tasks run: the window hides at once and closes when they have stopped;
# a task that does not stop within this time (ms) is left behind and the app quits anyway.
CLOSE_GRACE_MS = 20000

class MainWindow(QMainWindow):
    def __init__(self, safe: bool = True) -> None:
        super().__init__()
        self.safe = safe
        self.device: str | None = None
        self.setWindowTitle("DeepSCEM" + ("" if safe else "  (safe mode off)"))
        self._fit_to_screen(1280, 800)
        self.setAcceptDrops(True)
        self.tasks = TaskRunner(self)
        self.tree = DatasetTree()
        self.models = ModelList()
        self.view = VolumeView()
        self.dataset_actions = DatasetActions(self)
        self.model_actions = ModelActions(self)
        self.buttons: dict[str, QPushButton] = {}
        self._build_central()
        self.objects = ObjectPanel(self)  # instance layers: object table and proofreading
        self.objects_dock = QDockWidget("Objects", self)
        self.objects_dock.setWidget(self.objects)
        self.addDockWidget(Qt.RightDockWidgetArea, self.objects_dock)
        self.objects_dock.hide()
        self._build_menus()
        install_painting(self)  # toolbar, Label menu, shortcut help (ui/annotation)
        self._closing = False   # closing, waiting for cancelled tasks to stop
        self._give_up = False   # ... and no longer waiting (CLOSE_GRACE_MS passed)
        self._watch_view()
        self.view.z_slider.valueChanged.connect(lambda z: log.debug("slice z %d shown", z))
        self.tasks.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.view.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.statusBar().showMessage("Load or create a dataset to begin (drop .tif or .hdf5 files here)")

    # --- layout --------------------------------------------------------------------------
    def _button(self, key: str, text: str, tip: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(guard(self, slot, text))
        self.buttons[key] = button
        return button

    def _build_central(self) -> None:
        d, m = self.dataset_actions, self.model_actions
        data_box = QGroupBox("Datasets")
        grid = QGridLayout()
        for i, (key, text, tip, slot) in enumerate((
                ("load_dataset", "Load", "1. Load dataset files (.hdf5) into the list (Ctrl+O)",
                 d.load_clicked),
                ("unload_dataset", "Unload", "2. Unload the selected dataset from the list "
                                             "(the file is kept)", d.unload_clicked),
                ("add_sample", "Add sample", "3. Add a sample (image and labels) to a dataset (Ctrl+B); "
                                             "you can also drop .tif files on the window",
                 d.add_sample_clicked),
                ("remove_sample", "Remove sample", "4. Remove the selected sample from its dataset (Ctrl+W)",
                 d.remove_sample_clicked),
                ("save_dataset", "Save as", "5. Save the selected dataset as a compact copy (Ctrl+S); "
                                            "do it after removing samples", d.save_as_clicked))):
            grid.addWidget(self._button(key, text, tip, slot), i // 3, i % 3)
        data_layout = QVBoxLayout(data_box)
        data_layout.addLayout(grid)
        data_layout.addWidget(self.tree)

        model_box = QGroupBox("Models")
        grid = QGridLayout()
        for i, (key, text, tip, slot) in enumerate((
                ("load_model", "Load", "7. Load models (.keras, .h5; also the original DeepSCEM's)",
                 m.load_clicked),
                ("create_model", "New", "8. Create a new U-Net model", m.create_clicked),
                ("train_model", "Train", "9. Train the selected model on datasets", m.train_clicked),
                ("predict_model", "Predict", "10. Segment a dataset with the selected model",
                 m.predict_clicked),
                ("evaluate_model", "Evaluate", "11. Compare a segmentation with reference labels (F1, IoU)",
                 m.evaluate_clicked),
                ("save_model", "Save", "12. Save the selected model as .keras or .h5 "
                                       "(models live in memory until saved)", m.save_clicked))):
            grid.addWidget(self._button(key, text, tip, slot), i // 3, i % 3)
        model_layout = QVBoxLayout(model_box)
        model_layout.addLayout(grid)
        model_layout.addWidget(self.models)

        left = QSplitter(Qt.Vertical)
        left.addWidget(data_box)
        left.addWidget(model_box)
        left.setStretchFactor(0, 3)
        left.setStretchFactor(1, 2)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(left)
        split.addWidget(self.view)
        split.setStretchFactor(1, 4)
        split.setSizes([340, 940])
        self.setCentralWidget(split)

    def _action(self, menu, text: str, slot, shortcut: str | QKeySequence | None = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip or text)
        action.triggered.connect(guard(self, slot, text.replace("...", "")))
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        d, m, v = self.dataset_actions, self.model_actions, self.view
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "&New dataset...", d.new_clicked, "Ctrl+N")
        self._action(file, "&Load dataset...", d.load_clicked, "Ctrl+O")
        self._action(file, "Open OME-&Zarr image...", d.open_zarr_clicked, "Ctrl+Shift+O",
                     "Open an OME-Zarr image folder read-only, to view and predict it")
        self._action(file, "&Save dataset as...", d.save_as_clicked, "Ctrl+S")
        self._action(file, "&Unload dataset", d.unload_clicked)
        file.addSeparator()
        self._action(file, "Save screens&hot...", self.screenshot_clicked, "Ctrl+Shift+P",
                     "Save the main view as it is shown (PNG)")
        self._action(file, "Export &slice as PNG...", self.export_slice_clicked, None,
                     "Save the current slice with its overlays at full resolution")
        file.addSeparator()
        self._action(file, "&Quit", self.close, "Ctrl+Q")  # QKeySequence.Quit is empty on Windows
        data = bar.addMenu("&Data")
        self._action(data, "&Add sample...", d.add_sample_clicked, "Ctrl+B")
        self._action(data, "&Remove sample", d.remove_sample_clicked, "Ctrl+W")
        self._action(data, "Re&name sample...", d.rename_clicked, "Ctrl+R")
        self._action(data, "&Crop sample...", d.crop_clicked)
        self._action(data, "&Export sample as TIFF...", d.export_clicked)
        self._action(data, "&Label names...", d.aliases_clicked)
        self._action(data, "&Distance transform...", d.distance_clicked)
        model = bar.addMenu("&Model")
        self._action(model, "&Load model...", m.load_clicked, "Ctrl+L")
        self._action(model, "&New model...", m.create_clicked, "Ctrl+M")
        self._action(model, "&Train...", m.train_clicked, "Ctrl+T")
        self._action(model, "&Predict...", m.predict_clicked, "Ctrl+P")
        self._action(model, "&Evaluate...", m.evaluate_clicked, "Ctrl+E")
        self._action(model, "&Save model as...", m.save_clicked, "Ctrl+Shift+S")
        self._action(model, "E&xport (bioimage.io / ONNX)...", m.export_clicked)
        model.addSeparator()
        self._action(model, "Model &info", m.info_clicked, "Ctrl+I")
        self._action(model, "&Remove model from memory", m.forget_clicked)
        view = bar.addMenu("&View")
        self._action(view, "Next slice", lambda: v.set_z(v.z + 1), "PgUp")
        self._action(view, "Previous slice", lambda: v.set_z(v.z - 1), "PgDown")
        self._action(view, "&Fit to window", v.canvas.fit, "Ctrl+0")
        self._action(view, "&Auto contrast", v.auto_contrast, "Ctrl+Shift+C")
        ortho = self._action(view, "&Orthogonal views (XZ / YZ)", v.ortho_box.toggle, "Ctrl+Shift+V")
        ortho.setCheckable(True)
        v.ortho_box.toggled.connect(ortho.setChecked)
        view.addAction(self.objects_dock.toggleViewAction())
        self.objects_dock.toggleViewAction().setShortcut(QKeySequence("Ctrl+Shift+O"))
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About DeepSCEM", self.about_clicked, "F1")

    # --- window-wide actions -------------------------------------------------------------
    def locked_outputs(self) -> int | None:
        """Safe mode: a new model's outputs follow the selected (or only) dataset's labels."""
        if not self.safe or not self.tree.summaries:
            return None
        path = self.tree.selection()[0] or next(iter(self.tree.summaries))
        return self.tree.summaries[path].n_labels

    def about_clicked(self) -> None:
        show_about(self, self.device)

    def _fit_to_screen(self, width: int, height: int) -> None:
        """Open at ``width`` x ``height``, or the screen's free area when that is smaller
        (a 1366 x 768 laptop): never with the status bar and buttons off the screen."""
        from PyQt5.QtWidgets import QApplication

        screen = QApplication.primaryScreen()
        if screen is not None:
            free = screen.availableGeometry()
            width, height = min(width, free.width()), min(height, free.height())
        self.resize(width, height)

    def detect_device(self):
        """Find the compute device in the background (imports TensorFlow).

        When it is done the status bar and the log (``DEEPSCEM_LOG=info``) say
        ``TensorFlow loaded: <device>``: from then on model actions start without delay.
        """
        def done(text: str) -> None:
            self.device = text
            self.statusBar().showMessage(f"TensorFlow loaded: {text}", 8000)
            log.info("TensorFlow loaded: %s", text)
        # its own thread, never the pool: see workers.start_worker
        return self.tasks.run(detect_device, title="Loading TensorFlow", on_result=done,
                              dialog=False, own_thread=True)

    def save_screenshot(self, path: str | Path) -> Path:
        """The main view (slice, overlays, orthogonal planes) as shown, as PNG."""
        path = Path(path)
        if not self.view.grab().save(str(path), "PNG"):
            raise OSError(f"cannot write {path}")
        return path

    def screenshot_clicked(self) -> None:
        path = file_dialogs.save_file(self, "Save screenshot", "deepscem_view.png", "PNG (*.png)")
        if path:
            self.save_screenshot(path if path.lower().endswith(".png") else path + ".png")

    def export_slice_clicked(self) -> None:
        rgb = self.view.current_rgb()
        if rgb is None:
            raise DatasetError("select a sample to show first")
        path = file_dialogs.save_file(self, "Export slice", "slice.png", "PNG (*.png)")
        if path:
            to_qimage(rgb).save(path, "PNG")

    # --- drag and drop, keys on the image, closing ------------------------------------------
    def _watch_view(self) -> None:
        """Route drops and Up/Down keys on the image view's canvases to the window.

        The canvases are QGraphicsViews: their viewports accept drops themselves (and then
        refuse files), and they use the arrow keys to scroll, so without this filter the
        window's drop handling and the Z keys the docs promise never see those events.
        """
        for widget in [self.view, *self.view.findChildren(QWidget)]:
            if isinstance(widget, QGraphicsView) or widget.acceptDrops():
                widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.DragEnter, QEvent.DragMove) and event.mimeData().hasUrls():
            # Files: the window decides, as on the dataset list (the canvas' scene refused them).
            if _dropped_files(event):
                event.acceptProposedAction()
            else:
                event.ignore()
            return True
        elif kind == QEvent.Drop and _dropped_files(event):
            self.dropEvent(event)
            return True
        elif kind == QEvent.KeyPress and isinstance(watched, QGraphicsView) \
                and event.key() in (Qt.Key_Up, Qt.Key_Down) and event.modifiers() == Qt.NoModifier:
            self.view.set_z(self.view.z + (1 if event.key() == Qt.Key_Up else -1))
            return True
        return super().eventFilter(watched, event)

    def dragEnterEvent(self, event) -> None:
        if _dropped_files(event):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        files = [u.toLocalFile() for u in event.mimeData().urls()]
        event.acceptProposedAction()
        guard(self, self.dataset_actions.add_files_dropped, "Drop files")(files)

    def closeEvent(self, event) -> None:
        if self._closing:
            if self.tasks.active and not self._give_up:  # still stopping: wait for them, hidden
                event.ignore()
                return
            self.view.shutdown()
            event.accept()
            return
        if not self._confirm_close():
            event.ignore()
            return
        if self.tasks.active:
            self._close_when_idle()
            event.ignore()
            return
        self.view.shutdown()
        event.accept()

    def _confirm_close(self) -> bool:
        """Ask before losing a running training or unsaved models; True = close."""
        training = sorted(self.model_actions.training)
        if training and QMessageBox.question(
                self, "Training is running",
                f"Training of {', '.join(training)} is running; quitting stops it and this run's "
                "training is lost.\nQuit anyway?",
                QMessageBox.Yes | QMessageBox.No, QMessageBox.No) != QMessageBox.Yes:
            return False
        unsaved = [e.name for e in self.models.unsaved()]
        if unsaved and QMessageBox.question(
                self, "Unsaved models",
                f"These models are not saved and will be lost: {', '.join(unsaved)}.\nQuit anyway?",
                QMessageBox.Yes | QMessageBox.No, QMessageBox.No) != QMessageBox.Yes:
            return False
        return True

    def _close_when_idle(self) -> None:
        """Cancel the running tasks and close once they have stopped, without blocking the
        GUI thread (a training batch can take seconds to end: waiting here froze the window)."""
        self._closing = True
        log.info("closing: cancelling %d running task(s)", len(self.tasks.active))
        for worker in list(self.tasks.active):
            worker.cancel()
            if getattr(worker, "dialog", None) is not None:
                worker.dialog.hide()
        self.hide()
        self.tasks.busyChanged.connect(lambda busy: busy or self.close())
        QTimer.singleShot(CLOSE_GRACE_MS, self._close_anyway)

    def _close_anyway(self) -> None:
        if self.isHidden() and self.tasks.active:
            log.warning("closing with %d task(s) still running", len(self.tasks.active))
            self._give_up = True
            self.close()


def _dropped_files(event) -> list[str]:
    """Local dataset or image files carried by a drag event (empty if none)."""
    urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
    return [u.toLocalFile() for u in urls
            if Path(u.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES + (".hdf5", ".h5")]
