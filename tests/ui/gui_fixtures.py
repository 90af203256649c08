"""Fixtures shared by the GUI tests (imported by each tests/ui module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PyQt5.QtWidgets import QMessageBox
from synthetic_data import synthetic_volume

from deepscem.dataset import Dataset


class MessageLog:
    """Records the message boxes the GUI would show (instead of blocking on them)."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, str, str]] = []   # (kind, title, text)
        self.answer = QMessageBox.Yes

    def kinds(self) -> list[str]:
        return [k for k, _, _ in self.shown]

    def texts(self) -> str:
        return "\n".join(t for _, _, t in self.shown)


@pytest.fixture
def messages(monkeypatch) -> MessageLog:
    log = MessageLog()
    for kind in ("warning", "critical", "information", "about"):
        def record(parent, title, text, *args, _kind=kind, **kwargs):
            log.shown.append((_kind, title, text))
            return QMessageBox.Ok
        monkeypatch.setattr(QMessageBox, kind, staticmethod(record))

    def question(parent, title, text, *args, **kwargs):
        log.shown.append(("question", title, text))
        return log.answer
    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return log


@pytest.fixture
def window(qtbot, messages):
    from ui.main_window import MainWindow

    win = MainWindow(safe=True)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    for entry in win.models.entries():
        entry.saved = True  # no "unsaved models" question while tearing down
    win.tasks.cancel_all(60000)


@pytest.fixture
def tiffs(tmp_path) -> tuple[Path, Path]:
    """A (4, 32, 40) uint8 image with bright blobs and its mask, as TIFF files."""
    image, mask = synthetic_volume((4, 32, 40))
    tifffile.imwrite(tmp_path / "image.tif", image)
    tifffile.imwrite(tmp_path / "label.tif", mask * 255)
    return tmp_path / "image.tif", tmp_path / "label.tif"


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    """A dataset with two samples of (4, 32, 32) and one label, written by the core."""
    path = tmp_path / "tiny.hdf5"
    with Dataset.create(path, "tiny", 1) as ds:
        for i in range(2):
            image, mask = synthetic_volume((4, 32, 32), seed=i)
            ds.add_sample(f"s{i}", image, [mask])
    return path


def layer_pixels(path: Path, sample: str, layer: str) -> np.ndarray:
    with Dataset.open(path) as ds:
        return ds.sample(sample).read_layer(layer)
