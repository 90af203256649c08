"""File choosers that open in the folder used last (remembered across sessions).

Every open/save/folder question of the GUI goes through these functions. Each remembers
the folder per ``kind`` ("dataset", "model", "image"...) in :mod:`ui.view_settings`, and
also as the last folder of any kind: a user who loaded ``/data/run3/a.hdf5`` finds
``/data/run3`` again when first saving a model or adding a sample, also after a restart.
"""

from __future__ import annotations

from pathlib import Path

from PyQt5.QtWidgets import QFileDialog, QWidget

from .. import view_settings

ANY = "last"  # the folder of the last choice of any kind


def last_folder(kind: str = "") -> str:
    """The folder of the last file chosen for ``kind``, else of any kind ("" before any)."""
    return (kind and view_settings.last_folder(kind)) or view_settings.last_folder(ANY)


def remember(path: str | Path, kind: str = "") -> None:
    """Store the folder of ``path`` (``path`` itself when it is a folder) for ``kind``."""
    if path:
        for key in {kind or ANY, ANY}:
            view_settings.remember_folder(key, path)


def start_path(suggestion: str | Path = "", kind: str = "") -> str:
    """Where a dialog opens: ``suggestion`` if it has a folder, else it inside the last folder."""
    suggestion = str(suggestion or "")
    if suggestion and Path(suggestion).is_absolute():
        return suggestion
    folder = last_folder(kind)
    if not folder:
        return suggestion
    return str(Path(folder) / suggestion) if suggestion else folder


def open_files(parent: QWidget | None, title: str, file_filter: str, kind: str = "") -> list[str]:
    paths, _ = QFileDialog.getOpenFileNames(parent, title, start_path("", kind), file_filter)
    if paths:
        remember(paths[0], kind)
    return list(paths)


def open_file(parent: QWidget | None, title: str, file_filter: str, suggestion: str = "",
              kind: str = "") -> str:
    path, _ = QFileDialog.getOpenFileName(parent, title, start_path(suggestion, kind), file_filter)
    remember(path, kind)
    return path


def save_file(parent: QWidget | None, title: str, suggestion: str | Path, file_filter: str,
              kind: str = "") -> str:
    """A path to write (``suggestion`` is a file name or a full path); "" if cancelled."""
    path, _ = QFileDialog.getSaveFileName(parent, title, start_path(suggestion, kind), file_filter)
    remember(path, kind)
    return path


def folder(parent: QWidget | None, title: str, suggestion: str = "", kind: str = "") -> str:
    chosen = QFileDialog.getExistingDirectory(parent, title, start_path(suggestion, kind))
    remember(chosen, kind)
    return chosen
