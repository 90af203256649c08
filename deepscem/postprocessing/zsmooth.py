"""Smoothing predictions along Z, streamed slab by slab (``predict --z-smooth SIGMA``).

A 2D model predicts each slice on its own, so neighbouring slices of one object can disagree;
a Gaussian along Z before the threshold makes them agree. Streamed: the result equals a
whole-volume ``gaussian_filter1d`` while only a few slabs are held.
"""

from __future__ import annotations

import numpy as np


def z_radius(sigma: float) -> int:
    """Slices each side a Z smoothing of ``sigma`` reads (scipy's Gaussian kernel, truncate 4)."""
    return int(4.0 * float(sigma) + 0.5) if sigma > 0 else 0


class ZSmoother:
    """Gaussian smoothing along Z of a stream of (z0, (dz, Y, X, C)) blocks in Z order.

    A slice is passed on to ``sink`` once the ``radius`` slices after it have arrived (or the
    volume ends), smoothed from a window that includes the ``radius`` slices on either side:
    the result equals ``scipy.ndimage.gaussian_filter1d(volume, sigma, axis=0)`` on the whole
    volume (reflected at its first and last slice), while at most a block + 4 x radius
    slices are held. Example: sigma 2 -> radius 8, 17 slices around each one.
    """

    def __init__(self, sigma: float, depth: int, sink) -> None:
        self.sigma, self.radius, self.depth, self.sink = sigma, z_radius(sigma), int(depth), sink
        self.raw: np.ndarray | None = None  # slices [self.start, self.start + len(self.raw))
        self.start = 0
        self.sent = 0  # slices [0, sent) are passed on

    def add(self, z0: int, block: np.ndarray) -> None:
        from scipy.ndimage import gaussian_filter1d

        if self.raw is None:
            self.raw, self.start = block, z0
        else:
            if z0 != self.start + len(self.raw):
                raise ValueError(f"blocks must come in Z order: got slice {z0}, expected "
                                 f"{self.start + len(self.raw)}")
            self.raw = np.concatenate([self.raw, block])
        end = self.start + len(self.raw)
        ready = self.depth if end >= self.depth else end - self.radius
        # Smooth at least 2 x radius slices at once (the window's overhead is its 2 x radius
        # extra slices: one slice at a time would filter each slice 2 x radius + 1 times).
        if ready <= self.sent or (ready < self.depth and ready - self.sent < 2 * self.radius):
            return
        lo = max(0, self.sent - self.radius)
        window = self.raw[lo - self.start:min(end, ready + self.radius) - self.start]
        smooth = gaussian_filter1d(window, self.sigma, axis=0, mode="reflect", truncate=4.0)
        self.sink(self.sent, smooth[self.sent - lo:ready - lo])
        self.sent = ready
        keep = max(self.start, self.sent - self.radius)  # what the next slices still need
        self.raw, self.start = self.raw[keep - self.start:].copy(), keep
