"""Tile size and overlap chosen from the volume, the memory budget and the network.

The prediction default (``PredictConfig.overlap`` None): tiles as large as the memory budget
allows (a whole slice when it fits) and seams that overlap by what the network's border
effect needs, not by a fixed quarter of the tile. On a 10 x 1024 x 1024 volume with the
default 2D U-Net this computes each voxel once (whole slices, two per batch) instead of ~2.25
times (512 x 512 tiles overlapping by 0.25); bench/predict.py measures the speed and the
Lucchi++ IoU of both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from deepscem.inference.tiling import Shape3, round_up

#: Activation memory the predictor may spend on one batch of tiles.
BATCH_BYTES = 1 << 30
#: Activation bytes per tile voxel and first-level filter, measured as peak RSS growth of
#: TensorFlow predicting batches of 1024 x 1024 tiles with the default U-Net (~500 B/voxel at
#: 16 filters); ONNX Runtime and OpenVINO reuse buffers and need less.
BYTES_PER_VOXEL_PER_FILTER = 32


def seam_margin(multiple: int, kernel_size: int = 3) -> int:
    """Voxels next to a tile border whose output differs from what the network gives with full
    context (zero padding of the convolutions, pooling windows cut by the border): the
    *effective* border effect, far smaller than the theoretical receptive field (about 400
    voxels for the default U-Net). Measured on a U-Net trained on Lucchi++ (depth 4, kernel 3;
    a 512 x 640 slice cut at x = 320 vs predicted whole): largest probability difference 0.84 at
    the cut, 0.17 at 48 voxels, 0.005 at 64, 0 from 96 on; so 4 multiples (the bottom level's
    3 x 3 convolutions reach ~4 of its voxels, each 2**depth wide).
    Example: depth 4 (multiple 16), kernel 3 -> 64 voxels on each side of a seam.
    """
    return int(4 * multiple * max(1, (int(kernel_size) - 1) // 2))


def auto_tile(volume_shape: Shape3, multiple: Shape3, margin: int,
              max_voxels: int) -> tuple[Shape3, float]:
    """The largest tile of at most ``max_voxels`` voxels covering ``volume_shape`` (Z, Y, X) in
    as few pieces as possible, and the overlap fraction that gives each seam ``2 * margin``
    voxels of overlap (so every voxel is predicted at least ``margin`` from a cut).

    An axis whose multiple is 1 and whose volume size is 1 per tile (Z of a 2D model: pass
    multiple (1, m, m) and a volume Z of 1) stays 1. Worked example (multiple 16, margin 32,
    max 600k voxels): slice 1024 x 1024 -> one tile would be 1.05 M voxels, too many; split Y in
    2: (1024 + 64) / 2 = 544 -> tile (1, 544, 1024) = 557k voxels, fits; overlap 64 / 544 of
    the tile on Y (X is one tile: no overlap). Voxels computed: 1.06x the volume, against 2.25x
    for 512 x 512 tiles overlapping by a quarter.
    """
    pieces = [1, 1, 1]

    def tile_for() -> list[int]:
        return [round_up(max(1, -(-(s + (n - 1) * 2 * margin) // n)), m)
                for s, n, m in zip(volume_shape, pieces, multiple)]

    tile = tile_for()
    while math.prod(tile) > max_voxels:
        # split the axis with the largest tile, while a tile stays longer than its seams
        splittable = [a for a in range(3) if tile[a] > 2 * margin + multiple[a]]
        if not splittable:
            break  # the budget is smaller than two seams: take the smallest sensible tile
        axis = max(splittable, key=lambda a: tile[a])
        pieces[axis] += 1
        tile = tile_for()
    overlaps = [2 * margin / t for t, n in zip(tile, pieces) if n > 1]
    overlap = min(0.9, max(overlaps)) if overlaps else 0.0
    return tuple(tile), overlap  # type: ignore[return-value]


def auto_grid(shape_zyx: Sequence[int], default_tile: Shape3, multiple: Shape3, config: Any,
              filters: int = 16) -> tuple[Shape3, float]:
    """(tile shape, overlap fraction) for a volume when the overlap is left to DeepSCEM.

    With a tile given (``config.patch``) only the overlap is chosen (2 seam margins); without,
    the tile too (:func:`auto_tile`), never smaller than ``default_tile``, as large as the
    budget allows at batch 1: one big tile computes fewer seam voxels than a batch of small
    ones, at the same speed per voxel (:func:`auto_batch` then fills the budget).
    """
    shape = tuple(int(s) for s in shape_zyx)
    m = max(multiple)
    margin = seam_margin(m)
    if config.patch is not None:
        cut = [t for t, s in zip(default_tile, shape) if 1 < t < s]
        return default_tile, (min(0.9, 2 * margin / min(cut)) if cut else 0.0)
    # the largest tile that fits the budget alone (batch 1): see auto_batch
    max_voxels = max(math.prod(default_tile),
                     BATCH_BYTES // (BYTES_PER_VOXEL_PER_FILTER * max(1, int(filters))))
    volume = (1, *shape[1:]) if multiple[0] == 1 and default_tile[0] == 1 else shape
    return auto_tile(volume, multiple, margin, max_voxels)  # type: ignore[arg-type]


def auto_batch(tile_shape: Shape3, config: Any, filters: int = 16) -> int:
    """Tiles per forward pass for the default tiling: ``config.batch_size`` at most, fewer when
    a batch of such tiles would pass :data:`BATCH_BYTES` (at least 1). Example: 1024 x 1280
    slices (one tile each), 16 filters -> 1.3 M voxels x 512 B = 671 MB -> batch 1."""
    per_tile = BYTES_PER_VOXEL_PER_FILTER * max(1, int(filters)) * math.prod(tile_shape)
    return max(1, min(int(config.batch_size), BATCH_BYTES // per_tile))
