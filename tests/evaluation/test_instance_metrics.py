"""Instance scores on hand-worked cases: AP-50/75, matched/split/merged/missed/false."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepscem.cli import main
from deepscem.dataset import Dataset
from deepscem.evaluation.instance_metrics import score_ids


def boxes(*specs, shape=(1, 10, 40)):
    ids = np.zeros(shape, np.uint32)
    for value, x0, x1 in specs:
        ids[0, :, x0:x1] = value
    return ids


def test_perfect_and_shifted_objects():
    ref = boxes((1, 0, 10), (2, 20, 30))
    assert score_ids(ref, ref).as_dict()["ap50"] == 1.0
    # object 2 shifted by 4 of 10 columns: IoU 6/14 = 0.43 -> unmatched at both thresholds;
    # object 1 shifted by 2: IoU 8/12 = 0.67 -> matched at 0.5, not at 0.75
    seg = boxes((7, 2, 12), (8, 24, 34))
    s = score_ids(ref, seg)
    # ranked by size (equal: stable order): precision 1 at recall 0.5, then 0.5 -> AP50 0.5
    assert s.average_precision(0.5) == pytest.approx(0.5, abs=0.01)
    assert s.average_precision(0.75) == 0.0
    assert s.counts == {"matched": 1, "split": 0, "merged": 0, "missed": 1, "false": 1}


def test_ranking_by_size_decides_ap():
    ref = boxes((1, 0, 10))
    big_false = boxes((1, 0, 10), (2, 15, 35))   # a false object larger than the match
    small_false = boxes((1, 0, 10), (2, 15, 17))
    assert score_ids(ref, small_false).average_precision(0.5) == 1.0
    assert score_ids(ref, big_false).average_precision(0.5) == pytest.approx(0.5, abs=0.01)


def test_split_merged_missed_false():
    ref = boxes((1, 0, 10), (2, 12, 17), (3, 17, 22), (5, 22, 27), (4, 35, 38))
    # ref 1 cut in three (split: best IoU 0.4); refs 2, 3, 5 in one object (merged: IoU 1/3
    # each); ref 4 missed; a false object at 30-33
    seg = boxes((1, 0, 4), (2, 4, 7), (6, 7, 10), (3, 12, 27), (4, 30, 33))
    s = score_ids(ref, seg)
    assert s.counts == {"matched": 0, "split": 1, "merged": 1, "missed": 1, "false": 1}
    assert s.as_dict()["ap50"] == 0.0


def test_empty_sides():
    empty = np.zeros((1, 4, 4), np.uint32)
    one = empty.copy()
    one[0, 1, 1] = 3
    assert score_ids(empty, empty).average_precision(0.5) == 1.0
    assert score_ids(one, empty).average_precision(0.5) == 0.0
    assert score_ids(empty, one).counts["false"] == 1


def test_evaluate_json_has_ap(tmp_path):
    ref_ids = boxes((1, 0, 10), (2, 20, 30), shape=(2, 10, 40))
    ref, seg = tmp_path / "ref.hdf5", tmp_path / "seg.hdf5"
    with Dataset.create(ref, "r", 1) as ds:
        ds.add_sample("s", np.ones(ref_ids.shape, np.uint8), [(ref_ids > 0).astype(np.uint8)])
    with Dataset.create(seg, "p", 1) as ds:
        sample = ds.add_empty_sample("s", ref_ids.shape)
        # touching objects merged in the mask but separated in an instance layer
        sample.create_layer("prediction_0000", np.uint8)[...] = ref_ids[:, :, :] > 0
        sample.create_layer("instance_0000", np.uint32)[...] = ref_ids
    assert main(["evaluate", str(ref), str(seg), "--json", str(tmp_path / "e.json")]) == 0
    data = json.loads((tmp_path / "e.json").read_text())
    row = data["rows"][0]
    assert row["ap50"] == 1.0 and row["ap75"] == 1.0 and row["instances_matched"] == 2
    assert data["overall"][0]["ap50"] == 1.0
