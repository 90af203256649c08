"""Neighbouring slices as context for 2.5D models (CDeep3M's "3fm"/"5fm" idea).

A 2D model with ``context`` c sees 1 + 2c slices as input channels, (Y, X, 1 + 2c), slice z
in the middle, and predicts slice z only. Training (the sampler) and prediction (the
predictor, through any tiling) read the slices the same way, with this module: slices
beyond the ends of the volume are mirrored without repeating the edge slice, as
``np.pad(mode="reflect")`` does, so the first slice of a volume gets its second slice on
both sides. Example: depth 5, context 2: slice 0 reads [2, 1, 0, 1, 2], slice 4 reads
[2, 3, 4, 3, 2]. A volume of one slice reads that slice 1 + 2c times.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Region = tuple[slice, slice, slice]
Reader = Callable[[Region], np.ndarray]


def reflect_index(z: int, depth: int) -> int:
    """Mirror a slice index into [0, depth) (reflect without repeating the edge; periodic, so
    any index maps). Examples for depth 5: -1 -> 1, -2 -> 2, 5 -> 3, 6 -> 2; depth 1: any -> 0."""
    if depth == 1:
        return 0
    period = 2 * (depth - 1)
    z = z % period
    return z if z < depth else period - z


def context_indices(z: int, context: int, depth: int) -> list[int]:
    """The 1 + 2 * context slice indices a 2.5D input centred on slice ``z`` reads."""
    return [reflect_index(z + d, depth) for d in range(-context, context + 1)]


def read_with_context(read: Reader, region: Region, context: int, depth: int) -> np.ndarray:
    """Read ``region`` (Z extent 1) with ``context`` slices on either side, mirrored at the ends
    of a volume ``depth`` slices deep: returns (1 + 2 * context, y, x) in the reader's dtype.

    The contiguous range of slices needed is read at once (one reader call), then indexed.
    """
    z = int(region[0].start or 0)
    if region[0].stop is not None and int(region[0].stop) - z != 1:
        raise ValueError(f"a 2.5D read is centred on one slice; got Z range {region[0]}")
    wanted = context_indices(z, context, depth)
    lo, hi = min(wanted), max(wanted) + 1
    block = np.asarray(read((slice(lo, hi), region[1], region[2])))
    return block[[w - lo for w in wanted]]


def context_reader(read: Reader, context: int, depth: int) -> Reader:
    """``read`` turned into a reader of 2.5D stacks (identity for context 0): every region of
    Z extent 1 returns (1 + 2 * context, y, x)."""
    if context <= 0:
        return read

    def reader(region: Region) -> np.ndarray:
        return read_with_context(read, region, context, depth)

    return reader


def model_context(model) -> int:
    """Context slices per side a 2D model expects, from its input channels (1 + 2c);
    0 for a 3D model or a one-channel input."""
    shape = tuple(model.inputs[0].shape)
    channels = shape[-1]
    if len(shape) != 4 or channels in (None, 1):
        return 0
    return (int(channels) - 1) // 2
