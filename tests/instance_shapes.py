"""Synthetic objects for the instance, measurement and proofreading tests."""

from __future__ import annotations

import numpy as np


def two_touching_spheres(shape=(40, 48, 64), radius=11, gap=21) -> np.ndarray:
    """uint32 ids: two spheres of ``radius`` whose centres are ``gap`` voxels apart along X
    (gap < 2 * radius: they touch over a disc), ids 1 and 2."""
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    cz, cy, cx = shape[0] // 2, shape[1] // 2, shape[2] // 2 - gap // 2
    ids = np.zeros(shape, np.uint32)
    ids[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= radius ** 2] = 1
    ids[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx - gap) ** 2 <= radius ** 2] = 2
    return ids


def ellipsoid(spacing, semi_axes, margin=4) -> np.ndarray:
    """bool (Z, Y, X) ellipsoid of ``semi_axes`` (nm) sampled at ``spacing`` (nm), centred."""
    spacing = np.asarray(spacing, float)
    shape = [int(2 * a / s) + 2 * margin for a, s in zip(semi_axes, spacing)]
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing)]
    z, y, x = np.meshgrid(*axes, indexing="ij", sparse=True)
    a, b, c = semi_axes
    return (z / a) ** 2 + (y / b) ** 2 + (x / c) ** 2 <= 1
