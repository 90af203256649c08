import numpy as np
import pytest

from deepscem.evaluation.metrics import (
    ObjectCounts,
    VoxelCounts,
    binarize,
    object_counts,
    ratio_scores,
)


def test_voxel_scores_against_hand_computed_values():
    ref = np.zeros((1, 4, 4), bool)
    seg = np.zeros((1, 4, 4), bool)
    ref[0, :2, :2] = True          # 4 reference voxels
    seg[0, :2, 1:3] = True         # 4 predicted, 2 of them correct
    c = VoxelCounts.of(ref, seg)
    assert (c.tp, c.fp, c.fn, c.total) == (2, 2, 2, 16)
    s = c.scores()
    assert s["f1"] == pytest.approx(2 * 2 / (2 * 2 + 2 + 2))  # 0.5
    assert s["iou"] == pytest.approx(2 / 6)
    assert s["precision"] == pytest.approx(0.5) and s["recall"] == pytest.approx(0.5)


def test_empty_masks_have_defined_scores():
    empty = np.zeros((2, 3, 3), bool)
    full = np.ones((2, 3, 3), bool)
    assert VoxelCounts.of(empty, empty).scores() == {"f1": 1.0, "iou": 1.0, "precision": 1.0,
                                                     "recall": 1.0}
    missed = VoxelCounts.of(full, empty).scores()   # nothing predicted
    assert missed == {"f1": 0.0, "iou": 0.0, "precision": 0.0, "recall": 0.0}
    spurious = VoxelCounts.of(empty, full).scores()  # nothing to find
    assert spurious == {"f1": 0.0, "iou": 0.0, "precision": 0.0, "recall": 0.0}
    assert not any(np.isnan(v) for v in ratio_scores(0, 0, 0).values())


def test_pooled_counts_add_up():
    a, b = VoxelCounts(1, 2, 3, 10), VoxelCounts(4, 0, 1, 20)
    assert a + b == VoxelCounts(5, 2, 4, 30)
    assert (a + b).scores()["f1"] == pytest.approx(10 / (10 + 2 + 4))


def test_binarize_rules():
    floats = np.array([0.0, 0.2, 0.5, 0.51, 1.0], np.float32)
    assert binarize(floats).tolist() == [False, False, False, True, True]
    assert binarize(floats, 0.0).tolist() == [False, True, True, True, True]
    assert binarize(np.array([0, 1, 255], np.uint8), 0.9).tolist() == [False, True, True]


def test_object_counts_hand_computed():
    ref = np.zeros((1, 10, 10), bool)
    seg = np.zeros((1, 10, 10), bool)
    ref[0, 0:2, 0:2] = True        # object A, 4 voxels: seg matches it exactly
    seg[0, 0:2, 0:2] = True
    ref[0, 5:7, 5:9] = True        # object B, 8 voxels: seg covers 2 of them (IoU 0.25)
    seg[0, 5:7, 5:6] = True
    seg[0, 9, 9] = True            # a spurious 1-voxel object
    c = object_counts(ref, seg)
    assert c == ObjectCounts(reference_objects=2, segmentation_objects=3, reference_voxels=12,
                             segmentation_voxels=7, matched=1)
    s = c.scores()
    assert s["object_f1"] == pytest.approx(2 * 1 / (2 + 3))
    assert s["reference_mean_volume"] == pytest.approx(6.0)
    assert s["segmentation_mean_volume"] == pytest.approx(7 / 3)


def test_objects_connect_across_slices_and_empty_objects_score_one():
    ref = np.zeros((3, 4, 4), bool)
    ref[:, 1, 1] = True            # one object through three slices (face connectivity in Z)
    c = object_counts(ref, ref)
    assert (c.reference_objects, c.matched) == (1, 1)
    empty = object_counts(np.zeros((2, 2, 2), bool), np.zeros((2, 2, 2), bool)).scores()
    assert empty["object_f1"] == 1.0 and empty["reference_mean_volume"] is None


def test_object_matching_is_one_to_one():
    ref = np.zeros((1, 1, 4), bool)
    ref[0, 0, :] = True            # one reference object of 4 voxels
    seg = np.zeros((1, 1, 4), bool)
    seg[0, 0, [0, 1, 3]] = True    # two objects: IoU 0.5 and 0.25
    c = object_counts(ref, seg)
    assert (c.segmentation_objects, c.matched) == (2, 1)
