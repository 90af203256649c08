"""Per-patch data augmentation in NumPy: 90° rotations, flips, intensity jitter.

Geometric transforms act on the image (Z, Y, X) and its target (Z, Y, X, C) together;
they stay in the patch plane (Y, X) plus a Z flip for 3D patches, because EM volumes
are often anisotropic in Z. Intensity jitter touches the image only and keeps it in
[0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Augmentation:
    """Which augmentations to apply. ``dim`` 3 adds a Z flip to ``flip``.

    Intensity jitter: gamma in [1/gamma, gamma], contrast x[1 - c, 1 + c] around the patch
    mean, brightness +[-b, b]; each drawn independently per patch.
    """

    rotate: bool = False
    flip: bool = False
    intensity: bool = False
    dim: int = 2
    gamma: float = 1.25
    contrast: float = 0.2
    brightness: float = 0.1

    @property
    def active(self) -> bool:
        return self.rotate or self.flip or self.intensity


def augment(image: np.ndarray, target: np.ndarray, rng: np.random.Generator,
            aug: Augmentation) -> tuple[np.ndarray, np.ndarray]:
    """Augment one patch. image: (Z, Y, X) float32 in [0, 1]; target: (Z, Y, X, C).

    Returns arrays of the same shapes (contiguous). A non-square patch (Y != X) is only
    rotated by 0 or 180 degrees, so that every patch of a batch keeps its shape.
    """
    if aug.rotate:
        square = image.shape[1] == image.shape[2]
        k = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
        if k:
            image = np.rot90(image, k, axes=(1, 2))
            target = np.rot90(target, k, axes=(1, 2))
    if aug.flip:
        axes = [1, 2] + ([0] if aug.dim == 3 else [])
        flips = tuple(a for a in axes if rng.random() < 0.5)
        if flips:
            image = np.flip(image, flips)
            target = np.flip(target, flips)
    if aug.intensity:
        image = jitter_intensity(image, rng, aug)
    return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(target)


def jitter_intensity(image: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    """Random gamma, contrast and brightness of a [0, 1] image; result clipped to [0, 1]."""
    log_gamma = np.log(aug.gamma)
    out = np.power(np.clip(image, 0.0, 1.0), np.exp(rng.uniform(-log_gamma, log_gamma)))
    mean = float(out.mean())
    out = (out - mean) * rng.uniform(1.0 - aug.contrast, 1.0 + aug.contrast) + mean
    out = out + rng.uniform(-aug.brightness, aug.brightness)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)
