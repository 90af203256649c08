"""File choosers that open in the folder used last (remembered across sessions).

Every open/save/folder question of the GUI goes through these four functions, so a user
who loaded ``/data/run3/a.hdf5`` finds ``/data/run3`` again when saving a model or adding
a sample, also after a restart (QSettings, an INI file in the user's config folder).
"""

from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import QSettings
from PyQt5.QtWidgets import QFileDialog, QWidget

FOLDER_KEY = "folders/last"


def settings() -> QSettings:
    """The user's DeepSCEM settings (``~/.config/DeepSCEM/deepscem.ini`` on Linux)."""
    return QSettings(QSettings.IniFormat, QSettings.UserScope, "DeepSCEM", "deepscem")


def last_folder() -> str:
    """The folder of the file chosen last ("" before the first choice or if it is gone)."""
    folder = str(settings().value(FOLDER_KEY, "") or "")
    return folder if folder and Path(folder).is_dir() else ""


def remember(path: str | Path, is_folder: bool = False) -> None:
    """Store the folder of ``path`` (or ``path`` itself when it is a folder)."""
    if path:
        path = Path(path)
        settings().setValue(FOLDER_KEY, str(path if is_folder else path.parent))


def start_path(suggestion: str | Path = "") -> str:
    """Where a dialog opens: ``suggestion`` if it has a folder, else it inside the last folder."""
    suggestion = str(suggestion or "")
    if suggestion and Path(suggestion).is_absolute():
        return suggestion
    folder = last_folder()
    if not folder:
        return suggestion
    return str(Path(folder) / suggestion) if suggestion else folder


def open_files(parent: QWidget | None, title: str, file_filter: str) -> list[str]:
    paths, _ = QFileDialog.getOpenFileNames(parent, title, start_path(), file_filter)
    if paths:
        remember(paths[0])
    return list(paths)


def open_file(parent: QWidget | None, title: str, file_filter: str, suggestion: str = "") -> str:
    path, _ = QFileDialog.getOpenFileName(parent, title, start_path(suggestion), file_filter)
    remember(path)
    return path


def save_file(parent: QWidget | None, title: str, suggestion: str | Path, file_filter: str) -> str:
    """A path to write (``suggestion`` is a file name or a full path); "" if cancelled."""
    path, _ = QFileDialog.getSaveFileName(parent, title, start_path(suggestion), file_filter)
    remember(path)
    return path


def folder(parent: QWidget | None, title: str, suggestion: str = "") -> str:
    chosen = QFileDialog.getExistingDirectory(parent, title, start_path(suggestion))
    remember(chosen, is_folder=True)
    return chosen
