"""Writing blended Z slabs into caller-supplied output arrays (h5py datasets, NumPy arrays).

:class:`SlabWriter` gathers finished slabs into whole chunk depths (a compressed HDF5 chunk is
then written once) and thresholds them for integer outputs; :class:`RowWindow` is a Y band's
view of an output array (its halo rows are dropped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deepscem.evaluation.metrics import binarize


class RowWindow:
    """A band's view of an output array: rows [core_start, core_stop) of the volume, given as
    blocks of the band's rows [read_start, ...); rows outside the core (the halo) are dropped."""

    def __init__(self, out: Any, read_start: int, core_start: int, core_stop: int) -> None:
        self.out, self.offset = out, read_start
        self.core = slice(core_start, core_stop)
        self.band_core = slice(core_start - read_start, core_stop - read_start)
        self.dtype = out.dtype
        self.chunks = getattr(out, "chunks", None)

    def __setitem__(self, z: slice, values: np.ndarray) -> None:
        self.out[z, self.core] = values[:, self.band_core]


class SlabWriter:
    """Writes finished (z0, (dz, Y, X, C)) blocks into the output arrays, gathering consecutive
    blocks until they span a whole chunk depth: a compressed HDF5 chunk is then written once
    instead of being decompressed and recompressed for every slice of a 2D prediction."""

    def __init__(self, outputs: Sequence[Any], threshold: float) -> None:
        self.outputs = outputs
        self.threshold = threshold
        chunks = [getattr(out, "chunks", None) for out in outputs]
        self.depth = max([c[0] for c in chunks if c] or [1])
        self.pending: list[np.ndarray] = []
        self.start = 0

    def add(self, z0: int, block: np.ndarray) -> None:
        if not self.pending:
            self.start = z0
        self.pending.append(block)
        if (z0 + len(block)) % self.depth == 0:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        block = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        self.pending = []
        for c, out in enumerate(self.outputs):
            values = block[..., c]
            if np.issubdtype(out.dtype, np.integer):
                values = binarize(values, self.threshold).astype(out.dtype)
            out[self.start:self.start + len(block)] = values
