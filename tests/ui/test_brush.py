"""ui.annotation.brush: round dabs and continuous segments (pure NumPy)."""

import numpy as np

from ui.annotation.brush import disk, stamp, stamp_segment


def test_disk_is_round_and_centred():
    assert disk(1).tolist() == [[True]]
    assert disk(3).astype(int).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    d = disk(9)
    assert d.shape == (9, 9) and d[4].all() and d[:, 4].all() and not d[0, 0]
    np.testing.assert_array_equal(d, d.T)
    np.testing.assert_array_equal(d, d[::-1])


def test_stamp_clips_at_the_edges():
    mask = np.zeros((5, 6), bool)
    assert stamp(mask, 0, 0, 3) == (0, 2, 0, 2) and mask.sum() == 3
    assert stamp(mask, -10, -10, 3) is None


def test_a_fast_drag_leaves_a_continuous_line():
    mask = np.zeros((20, 100), bool)
    box = stamp_segment(mask, (10, 2), (10, 97), 1)
    assert box == (10, 11, 2, 98) and mask[10, 2:98].all() and mask.sum() == 96
    diagonal = np.zeros((50, 50), bool)
    stamp_segment(diagonal, (0, 0), (49, 49), 5)
    assert all(diagonal[i, i] for i in range(50))
