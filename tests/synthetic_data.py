"""Small synthetic volumes the tests generate themselves (no third-party data)."""

from __future__ import annotations

import numpy as np


def synthetic_volume(shape=(4, 32, 40), dtype=np.uint8, seed=0):
    """A grey volume with bright blobs, and the blobs' binary mask (uint8 {0,1})."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    mask = np.zeros(shape, bool)
    for _ in range(3):
        c = [rng.uniform(0, s) for s in shape]
        r = rng.uniform(3, max(4, min(shape[1:]) / 4))
        mask |= ((z - c[0]) ** 2 * 4 + (y - c[1]) ** 2 + (x - c[2]) ** 2) < r**2
    image = 60 + 120 * mask + rng.normal(0, 10, shape)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        image = np.clip(image, info.min, info.max)
    return image.astype(dtype), mask.astype(np.uint8)
