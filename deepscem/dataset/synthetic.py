"""EM-like synthetic volumes with known mitochondria masks, for the demo and tests.

The volume imitates a FIB-SEM stack of cytoplasm: a smooth grainy background, dark cell
membranes (the faces of a 3D Voronoi partition), mitochondria-like bodies (elongated
ellipsoids with a dark double membrane, a darker matrix and striped cristae), dark
vesicles that are *not* mitochondria (so a model must learn shape and texture, not just
darkness), then blur and shot-like noise. Everything is seeded: the same seed gives the
same voxels on every machine.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree


def em_like_volume(shape: tuple[int, int, int] = (24, 256, 256), *, seed: int = 0,
                   n_mito: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Make an EM-like grey volume and its mitochondria mask.

    Args:
        shape: (Z, Y, X) in voxels; voxels are treated as isotropic in Y/X and 2x thicker in Z.
        seed: random seed.
        n_mito: number of mitochondria; default scales with the XY area (about 1 per 52² voxels).

    Returns:
        image: (Z, Y, X) uint8, membranes and organelles dark on a light cytoplasm.
        label: (Z, Y, X) uint8 {0, 1}, 1 inside a mitochondrion.
    """
    rng = np.random.default_rng(seed)
    z, y, x = (int(s) for s in shape)
    zz, yy, xx = np.meshgrid(np.arange(z) * 2.0, np.arange(y, dtype=float), np.arange(x, dtype=float),
                             indexing="ij", sparse=True)

    # Cytoplasm: grainy texture at two scales.
    image = 165 + 10 * _smooth_noise(rng, shape, 3.0) + 6 * _smooth_noise(rng, shape, 0.8)

    # Cell membranes: voxels almost equidistant to their two nearest Voronoi seeds.
    n_cells = max(2, y * x // (110 * 110))
    seeds = rng.uniform(0, 1, (n_cells, 3)) * np.array([2 * z, y, x])
    points = np.stack(np.broadcast_arrays(zz, yy, xx), axis=-1).reshape(-1, 3)
    dist, _ = cKDTree(seeds).query(points, k=2)
    gap = (dist[:, 1] - dist[:, 0]).reshape(shape)
    image -= 70 * np.exp(-((gap / 1.6) ** 2))

    label = np.zeros(shape, bool)
    n_mito = n_mito if n_mito is not None else max(2, y * x // (52 * 52))
    for _ in range(n_mito):
        _draw_mitochondrion(rng, image, label, zz, yy, xx, shape)

    # Vesicles: small dark rings with a light core (distractors, not labelled).
    for _ in range(max(2, y * x // (48 * 48))):
        c = rng.uniform(0, 1, 3) * np.array([2 * z, y, x])
        r = rng.uniform(3, 6)
        d = np.sqrt((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2)
        image -= 60 * np.exp(-(((d - r) / 1.0) ** 2)) * ~label

    image = ndimage.gaussian_filter(image, sigma=(0.5, 0.8, 0.8))
    image += rng.normal(0, 9, shape)
    return np.clip(image, 0, 255).astype(np.uint8), label.astype(np.uint8)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.normal(0, 1, shape), sigma=(sigma / 2, sigma, sigma))
    return noise / (noise.std() + 1e-8)


def _draw_mitochondrion(rng, image, label, zz, yy, xx, shape) -> None:
    """One elongated ellipsoid: dark double membrane, darker matrix, cristae across its long axis."""
    z, y, x = shape
    centre = rng.uniform(0, 1, 3) * np.array([2 * z, y, x])
    a = rng.uniform(18, 34)                   # half-length along its long axis (XY plane)
    b = rng.uniform(8, 13)                    # half-width
    c = rng.uniform(6, 12)                    # half-height (Z, in Y/X voxel units)
    angle = rng.uniform(0, np.pi)
    u = (xx - centre[2]) * np.cos(angle) + (yy - centre[1]) * np.sin(angle)
    v = -(xx - centre[2]) * np.sin(angle) + (yy - centre[1]) * np.cos(angle)
    w = zz - centre[0]
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2 + (w / c) ** 2)   # 1 on the surface
    inside = r < 1.0
    if not inside.any():
        return
    membrane = np.exp(-(((r - 1.0) * b / 1.2) ** 2))             # ~1.2 voxel thick
    cristae = (np.cos(2 * np.pi * u / rng.uniform(5, 8)) > 0.55) & (r < 0.85)
    image -= 75 * membrane
    image -= np.where(inside, 35.0, 0.0)
    image -= np.where(cristae, 35.0, 0.0)
    label |= inside
