"""Brush maths on a 2D plane (pure NumPy): round dabs and the segment between two mouse
positions, stamped into a stroke mask."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def disk(size: int) -> np.ndarray:
    """A round brush ``size`` pixels across, bool (size, size); its centre pixel is
    ``(size - 1) // 2``.

    >>> disk(3).astype(int).tolist()
    [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    """
    size = max(1, int(size))
    offsets = np.arange(size) - (size - 1) / 2
    # a radius a little under size / 2, so small brushes are round (3 -> a plus, not a square)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2) <= (size / 2 - 0.1) ** 2


def stamp(mask: np.ndarray, row: int, col: int, size: int) -> tuple[int, int, int, int] | None:
    """OR a dab centred on (row, col) into ``mask`` (rows, cols bool); the box it covers
    inside the mask as (r0, r1, c0, c1), or None when it is all outside."""
    brush = disk(size)
    top, left = row - (size - 1) // 2, col - (size - 1) // 2
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + brush.shape[0], mask.shape[0]), min(left + brush.shape[1], mask.shape[1])
    if r1 <= r0 or c1 <= c0:
        return None
    mask[r0:r1, c0:c1] |= brush[r0 - top:r1 - top, c0 - left:c1 - left]
    return r0, r1, c0, c1


def stamp_segment(mask: np.ndarray, start: tuple[int, int], end: tuple[int, int], size: int
                  ) -> tuple[int, int, int, int] | None:
    """Dabs every ``size / 4`` pixels (at least 1) from ``start`` to ``end``, so a fast mouse
    leaves a continuous line; the union of their boxes, or None."""
    (r0, c0), (r1, c1) = start, end
    steps = max(1, int(np.ceil(max(abs(r1 - r0), abs(c1 - c0)) / max(1.0, size / 4))))
    box = None
    for t in np.linspace(0.0, 1.0, steps + 1):
        dab = stamp(mask, int(round(r0 + t * (r1 - r0))), int(round(c0 + t * (c1 - c0))), size)
        if dab is not None:
            box = dab if box is None else (min(box[0], dab[0]), max(box[1], dab[1]),
                                           min(box[2], dab[2]), max(box[3], dab[3]))
    return box
