"""The shared shape of the action dialogs and a file-path field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt5.QtCore import QTimer, pyqtSignal
from PyQt5.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from deepscem.errors import ConfigError, DeepScemError

DATASET_FILTER = "DeepSCEM datasets (*.hdf5 *.h5);;All files (*)"
IMAGE_FILTER = "Images (*.tif *.tiff *.npy);;All files (*)"
MODEL_FILTER = "Models (*.keras *.h5 *.zip);;All files (*)"  # .zip: bioimage.io package
# Share of the screen's available height a dialog may take before its form scrolls.
SCREEN_SHARE = 0.85


def _tallest(screen) -> int:
    """The height a dialog may take on ``screen`` (a QScreen) before its form scrolls."""
    return int(screen.availableGeometry().height() * SCREEN_SHARE)


class PathEdit(QWidget):
    """A line edit with a browse button; ``mode`` is "open", "save" or "folder"."""

    changed = pyqtSignal(str)

    def __init__(self, mode: str = "open", file_filter: str = "", placeholder: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode, self.file_filter = mode, file_filter
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.textChanged.connect(self.changed)
        button = QToolButton()
        button.setText("...")
        button.setToolTip("Browse")
        button.clicked.connect(self.browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(button)

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:
        self.edit.setText(str(text))

    def browse(self) -> None:
        from . import file_dialogs

        start = self.text()
        if self.mode == "folder":
            chosen = file_dialogs.folder(self, "Choose a folder", start)
        elif self.mode == "save":
            chosen = file_dialogs.save_file(self, "Save as", start, self.file_filter)
        else:
            chosen = file_dialogs.open_file(self, "Open", self.file_filter, start)
        if chosen:
            self.setText(chosen)


class ConfigDialog(QDialog):
    """A form whose OK builds ``self.value`` with :meth:`build`; invalid input keeps it open
    and says what is wrong under the form."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(460)  # room for file paths
        self.value: Any = None
        # The form scrolls when it is taller than the screen (the Train dialog's ~1000 px on a
        # laptop's 768); otherwise it shows whole, as a plain layout would (fit_to_screen).
        inner = QWidget()
        self.form = QFormLayout(inner)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        self.scroll.setWidget(inner)
        self.error_label = QLabel("")
        self.error_label.setStyleSheet("color: #c0392b")
        self.error_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.body = QVBoxLayout(self)
        self.body.addWidget(self.scroll)
        self.body.addWidget(self.error_label)
        self.body.addWidget(self.buttons)

    def fit_to_screen(self) -> None:
        """Size the form's scroll area to the whole form, or to the screen's height less room
        for the notes and buttons (then it scrolls). Called when shown and when the form grows."""
        inner = self.scroll.widget()
        screen = self.screen() if self.isVisible() else QApplication.primaryScreen()
        hint = inner.sizeHint()
        width = max(self.width(), hint.width())
        margins = self.body.contentsMargins()
        others = margins.top() + margins.bottom()  # the notes and buttons under the form
        for i in range(self.body.count()):
            widget = self.body.itemAt(i).widget()
            if widget is not None and widget is not self.scroll and not widget.isHidden():
                high = (widget.heightForWidth(width) if widget.hasHeightForWidth()
                        else widget.sizeHint().height())
                others += max(high, widget.sizeHint().height()) + self.body.spacing()
        # Qt would size a new window to at most 2/3 of the screen (QWidget::adjustSize): on a
        # 720-px-high screen (1080p at 150 %) the Train form then showed 44 % of its rows; the
        # scroll area's minimum takes the dialog to SCREEN_SHARE, leaving room for a title bar
        room = (_tallest(screen) if screen is not None else 10_000) - others
        height = min(hint.height(), max(240, room))
        bar = 0 if height >= hint.height() else self.scroll.verticalScrollBar().sizeHint().width()
        self.scroll.setMinimumSize(hint.width() + bar, height)

    def form_changed(self) -> None:
        """After rows were added, removed or grew: fit the form again and, when shown, the
        dialog around it, once the event loop has shown the new rows (until then they are
        hidden and count for nothing)."""
        QTimer.singleShot(0, self._refit)

    def _refit(self) -> None:
        self.fit_to_screen()
        if self.isVisible():
            self.adjustSize()
            self._grow_to_hint()

    def _grow_to_hint(self) -> None:
        """Qt's adjustSize stops at 2/3 of the screen, and the layout's minimum undercounts
        wrapped notes: grow to the height the dialog asks for at its width, up to SCREEN_SHARE
        (else a long note was drawn over the form at 1080p and 150 %)."""
        screen = self.screen()
        if screen is None:
            return
        layout = self.layout()
        want = (layout.totalHeightForWidth(self.width()) if layout.hasHeightForWidth()
                else self.sizeHint().height())
        want = min(want, _tallest(screen))
        if self.height() < want:
            self.resize(self.width(), want)

    def showEvent(self, event) -> None:
        self.fit_to_screen()
        super().showEvent(event)
        self._grow_to_hint()

    def build(self) -> Any:
        """Read the widgets into a config object; raise ConfigError/DeepScemError if invalid."""
        raise NotImplementedError

    def accept(self) -> None:
        try:
            self.value = self.build()
        except (DeepScemError, ValueError, TypeError) as err:
            self.error_label.setText(str(err))
            return
        self.error_label.setText("")
        super().accept()

    def ask(self) -> Any:
        """Run the dialog modally; the built value, or None if cancelled."""
        return self.value if self.exec_() == QDialog.Accepted else None


def require_file(text: str, what: str) -> Path:
    if not text:
        raise ConfigError(f"choose the {what}")
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigError(f"the {what} {path} does not exist")
    return path


def require_new_file(text: str, what: str, suffixes: tuple[str, ...], overwrite: bool = False) -> Path:
    if not text:
        raise ConfigError(f"choose where to write the {what}")
    path = Path(text).expanduser()
    if path.suffix.lower() not in suffixes:
        path = path.with_suffix(suffixes[0]) if not path.suffix else path
        if path.suffix.lower() not in suffixes:
            raise ConfigError(f"the {what} must end in {' or '.join(suffixes)}")
    if not path.parent.is_dir():
        raise ConfigError(f"the folder {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} already exists; choose another name")
    return path


def spin_box(low: int, high: int, value: int, tip: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


def combo_box(items: list[str], current: str, tip: str = "") -> QComboBox:
    combo = QComboBox()
    combo.addItems(items)
    combo.setCurrentText(current)
    combo.setToolTip(tip)
    return combo
