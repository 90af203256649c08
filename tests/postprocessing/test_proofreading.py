"""Proofreading operations on an id layer: delete, merge, relabel, split, undo."""

from __future__ import annotations

import numpy as np
import pytest
from instance_shapes import two_touching_spheres

from deepscem.errors import DatasetError
from deepscem.postprocessing import proofreading as pr


def test_delete_merge_relabel_and_undo():
    ids = np.zeros((4, 10, 30), np.uint32)
    ids[1:3, 2:8, 0:5] = 1
    ids[1:3, 2:8, 10:15] = 2
    ids[0, 0, 25:30] = 3
    original = ids.copy()
    e1 = pr.delete(ids, 3)
    assert not (ids == 3).any() and e1.box == (slice(0, 1), slice(0, 1), slice(25, 30))
    e2 = pr.merge(ids, [1, 2])
    assert set(np.unique(ids)) == {0, 1}
    e3 = pr.relabel(ids, 1, 40)
    assert set(np.unique(ids)) == {0, 40}
    for edit in (e3, e2, e1):
        pr.undo(ids, edit)
    assert np.array_equal(ids, original)
    with pytest.raises(DatasetError, match="no object"):
        pr.delete(ids, 9)
    with pytest.raises(DatasetError, match="two different"):
        pr.merge(ids, [1, 1])


def test_split_two_touching_spheres_by_two_clicks():
    truth = two_touching_spheres()
    ids = (truth > 0).astype(np.uint32) * 5  # the spheres merged into one object, id 5
    centre_z, centre_y = truth.shape[0] // 2, truth.shape[1] // 2
    xs = [int(np.flatnonzero(truth[centre_z, centre_y] == k).mean()) for k in (1, 2)]
    edit = pr.split(ids, 5, [(centre_z, centre_y, xs[0]), (centre_z, centre_y, xs[1])],
                    voxel_size=(5, 5, 5))
    assert edit.new_ids == (6,)
    agree = max(np.mean(ids[truth == 1] == 5), np.mean(ids[truth == 1] == 6))
    assert agree > 0.97 and set(np.unique(ids)) == {0, 5, 6}
    pr.undo(ids, edit)
    assert set(np.unique(ids)) == {0, 5}
    with pytest.raises(DatasetError, match="inside object 5"):
        pr.split(ids, 5, [(0, 0, 0), (centre_z, centre_y, xs[0])])
