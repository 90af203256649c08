"""Hand edits of labels through deepscem.dataset.editing, checked in the HDF5 file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from deepscem.dataset import Dataset
from deepscem.dataset.editing import (
    EditHistory,
    Plane,
    copy_prediction,
    fill_region,
    mark_annotated,
    paint,
)
from deepscem.dataset.layers import ANNOTATED
from deepscem.errors import DatasetError

ROOT = Path(__file__).resolve().parents[2]


def _dataset(path: Path, labels=None, shape=(6, 40, 50)) -> Path:
    with Dataset.create(path, "edit", 1) as ds:
        image = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape)
        # no label file: a volume added to be painted (blank label, nothing annotated)
        ds.add_sample("s", image, [] if labels is None else [labels])
    return path


def _layer(path: Path, layer: str) -> np.ndarray:
    with Dataset.open(path) as ds:
        return ds.sample("s").read_layer(layer)


def test_paint_writes_only_the_box_and_marks_annotated(tmp_path):
    path = _dataset(tmp_path / "d.hdf5")
    mask = np.zeros((3, 4), bool)
    mask[1, 1:3] = True
    patch = paint(path, "s", "label_0000", Plane(0, 2), (10, 20), mask, 1)
    label = _layer(path, "label_0000")
    assert label.sum() == 2 and label[2, 11, 21] == 1 and label[2, 11, 22] == 1
    annotated = _layer(path, ANNOTATED)  # added without labels: the layer starts all "unknown"
    assert annotated.sum() == 2 and annotated[2, 11, 21] == 1
    assert patch.box == (slice(2, 3), slice(10, 13), slice(20, 24))
    # the eraser: value 0, still marked annotated (background checked)
    paint(path, "s", "label_0000", Plane(0, 2), (11, 21), np.ones((1, 1), bool), 0)
    assert _layer(path, "label_0000").sum() == 1


def test_paint_on_xz_and_yz_planes_and_over_the_edge(tmp_path):
    path = _dataset(tmp_path / "d.hdf5")
    paint(path, "s", "label_0000", Plane(1, 5), (0, 3), np.ones((2, 2), bool), 1)   # rows Z, cols X
    paint(path, "s", "label_0000", Plane(2, 7), (4, 30), np.ones((1, 1), bool), 1)  # rows Z, cols Y
    paint(path, "s", "label_0000", Plane(0, 0), (-1, 48), np.ones((3, 3), bool), 1)  # clipped
    label = _layer(path, "label_0000")
    assert label[0:2, 5, 3:5].all() and label[4, 30, 7] == 1
    assert label[0, 0:2, 48:50].all() and label.sum() == 4 + 1 + 4


def test_fully_labelled_sample_stays_annotated(tmp_path):
    labels = np.zeros((6, 40, 50), np.uint8)
    labels[:, 5:9, 5:9] = 1
    path = _dataset(tmp_path / "d.hdf5", labels)
    paint(path, "s", "label_0000", Plane(0, 1), (20, 20), np.ones((2, 2), bool), 1)
    assert _layer(path, ANNOTATED).all()


def test_undo_redo_over_sixty_strokes(tmp_path):
    path = _dataset(tmp_path / "d.hdf5")
    history = EditHistory(limit=60)
    for i in range(60):
        history.push(paint(path, "s", "label_0000", Plane(0, i % 6), (i % 40, 0), np.ones((1, 5), bool), 1))
    assert _layer(path, "label_0000").sum() == 300
    for _ in range(60):
        assert history.undo() is not None
    assert history.undo() is None
    assert _layer(path, "label_0000").sum() == 0 and _layer(path, ANNOTATED).sum() == 0
    history.redo()
    history.redo()
    assert _layer(path, "label_0000").sum() == 10
    history.push(paint(path, "s", "label_0000", Plane(0, 0), (0, 40), np.ones((1, 1), bool), 1))
    assert not history.can_redo  # a new edit drops what was undone


def test_fill_region_fills_the_inside_of_an_outline(tmp_path):
    path = _dataset(tmp_path / "d.hdf5")
    ring = np.zeros((10, 10), bool)
    ring[[0, -1], :] = ring[:, [0, -1]] = True
    paint(path, "s", "label_0000", Plane(0, 3), (5, 5), ring, 1)
    plane = _layer(path, "label_0000")[3]
    origin, mask = fill_region(plane, (9, 9))
    assert origin == (6, 6) and mask.shape == (8, 8) and mask.all()
    paint(path, "s", "label_0000", Plane(0, 3), origin, mask, 1, what="fill")
    assert _layer(path, "label_0000")[3, 5:15, 5:15].all() and _layer(path, "label_0000").sum() == 100


def test_mark_annotated_and_copy_prediction(tmp_path):
    path = _dataset(tmp_path / "d.hdf5")
    mark_annotated(path, "s", (slice(1, 2), slice(None), slice(None)))
    assert _layer(path, ANNOTATED)[1].all() and _layer(path, ANNOTATED).sum() == 40 * 50
    pred_path = tmp_path / "pred.hdf5"
    with Dataset.create(pred_path, "pred", 1) as ds, Dataset.open(path) as src:
        s = ds.add_empty_sample("s", (6, 40, 50), image_from=src.sample("s"))
        values = np.linspace(0, 1, 6 * 40 * 50, dtype=np.float32).reshape(6, 40, 50)
        s.create_layer("prediction_0000", np.float32)[...] = values
    box = (slice(4, 5), slice(0, 20), slice(None))
    history = EditHistory()
    history.push(copy_prediction(pred_path, "prediction_0000", path, "s", "label_0000", box, 0.7))
    label = _layer(path, "label_0000")
    np.testing.assert_array_equal(label[4, :20], values[4, :20] >= 0.7)
    assert label[:4].sum() == 0 and label[5].sum() == 0 and _layer(path, ANNOTATED)[4, :20].all()
    history.undo()
    assert _layer(path, "label_0000").sum() == 0 and _layer(path, ANNOTATED)[4].sum() == 0
    copy_prediction(pred_path, "prediction_0000", path, "s", "label_0000", None, 0.5)
    np.testing.assert_array_equal(_layer(path, "label_0000"), values >= 0.5)
    with pytest.raises(DatasetError, match="not a label"):
        copy_prediction(pred_path, "prediction_0000", path, "s", "image")


_PAINTER = """
import sys, numpy as np
sys.path.insert(0, {root!r})
from deepscem.dataset.editing import Plane, paint
i = 0
while True:
    paint({path!r}, "s", "label_0000", Plane(0, i % 6), ((i * 7) % 30, (i * 3) % 40),
          np.ones((8, 8), bool), i % 2)
    print(i, flush=True)
    i += 1
"""


def test_a_kill_while_painting_leaves_a_valid_dataset(tmp_path):
    path = _dataset(tmp_path / "d.hdf5")
    proc = subprocess.Popen([sys.executable, "-c", _PAINTER.format(root=str(ROOT), path=str(path))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    strokes = 0
    deadline = time.monotonic() + 60  # generous: the subprocess imports numpy and h5py first
    while strokes < 20 and time.monotonic() < deadline:  # kill it in the middle of its strokes
        if not proc.stdout.readline():
            break  # it stopped by itself: its stderr says why
        strokes += 1
    os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    assert strokes >= 20, err[-2000:]
    with Dataset.open(path) as ds:  # opens, validates; every layer reads
        s = ds.sample("s")
        label, annotated = s.read_layer("label_0000"), s.read_layer(ANNOTATED)
    assert set(np.unique(label)) <= {0, 1} and annotated.sum() >= 64
    with h5py.File(path, "r+"):  # and it can be written again
        pass


def test_painting_blank_labels_given_on_purpose_keeps_everything_annotated(tmp_path):
    """Blank labels given on purpose ("" / -) mean "annotated, nothing here" (the original's
    meaning): the first stroke creates the annotated layer all 1, not all "unknown"."""
    path = tmp_path / "d.hdf5"
    with Dataset.create(path, "edit", 1) as ds:
        ds.add_sample("s", np.zeros((2, 8, 8), np.uint8), [None])
    paint(path, "s", "label_0000", Plane(0, 0), (1, 1), np.ones((2, 2), bool), 1)
    assert _layer(path, ANNOTATED).all()
