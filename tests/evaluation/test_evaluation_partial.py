"""Evaluation against partially annotated references: only annotated voxels count; a sample with
nothing annotated (added without labels) is reported, not scored as "background everywhere"."""

import numpy as np
import pytest
from test_evaluation import make_dataset

from deepscem.dataset import Dataset
from deepscem.evaluation import evaluate


def test_only_annotated_voxels_are_scored(tmp_path):
    image = np.zeros((2, 4, 4), np.uint8)
    ref = np.zeros((2, 4, 4), np.uint8)
    ref[0, :2, :2] = 1                # 4 voxels on slice 0
    pred = np.zeros((2, 4, 4), np.float32)
    pred[0, :2, 1:3] = 0.9            # slice 0: 2 correct, 2 false positives
    pred[1] = 0.9                     # slice 1: 16 "false positives", but slice 1 is unknown
    reference = make_dataset(tmp_path / "ref.hdf5", {"a": (image, [ref])})
    with Dataset.open(reference, "r+") as ds:
        ds.sample("a").set_annotated_slices([0])
        ds.add_sample("todo", image)  # no labels: nothing annotated
    segmentation = make_dataset(tmp_path / "seg.hdf5", {"a": (image, [pred]), "todo": (image, [pred])},
                                kind="prediction")
    report = evaluate(reference, segmentation)
    rows = {(r["sample"], r["label"]): r for r in report.records()}
    a = rows[("a", 0)]
    assert (a["tp"], a["fp"], a["fn"], a["voxels"]) == (2, 2, 2, 16)
    assert a["f1"] == pytest.approx(0.5) and "object_f1" not in a and "ap50" not in a
    assert ("todo", 0) not in rows and rows[("(all)", 0)]["fp"] == 2
    assert any("'todo' has nothing annotated" in p for p in report.problems)
    assert any("'a': only its annotated voxels (50.0 %)" in p for p in report.problems)
    assert not any("more than" in p for p in report.problems)  # not mistaken for a huge sample
