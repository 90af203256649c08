"""A volume cut into blocks that are predicted independently yet blend exactly as one pass.

Blocks are boxes of whole output chunks (so no two blocks ever write the same chunk: each
block is written by one process, with no locks). Every block is predicted from the tiles of
the *whole volume's* tile grid that touch it (plus, with Z smoothing, the smoothing radius
above and below): the tiles straddling a block border are run by both neighbours, and
each block divides by the whole grid's summed window. A voxel therefore receives exactly
the tiles, weights and normalisation it gets in a single pass over the volume, in the same
order: the result equals :meth:`Predictor.predict_volume` to float rounding, whatever the
block shape (the halo a block reads is its border tiles: at least the tile overlap).

Worked example, 2D model, tile (1, 512, 512), chunks (8, 256, 256): a (1000, 1024, 1024)
volume gives blocks of (16, 1024, 1024) whole slices (16 M voxels, 64 MB of float32 blending
buffer), no tile is run twice; a (1000, 4096, 4096) volume gives (8, 1536, 1536) pieces, and
the tiles across a Y/X border run twice (about 1.6x the work of one pass). A 3D model with
(32, 256, 256) tiles gets (64, 512, 512) blocks, whose border tiles run twice in all three
axes (up to about 3x the work of one pass at the default overlap): give 3D models a larger
``--block`` when memory allows (the duplicated work falls as the block grows).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepscem import progress as prog
from deepscem.inference.tiling import TileGrid, batched, read_tile
from deepscem.postprocessing.zsmooth import z_radius

Region = tuple[slice, slice, slice]

#: Output voxels per block by default: 16 M (64 MB of float32 per model output while blending,
#: 64 MB of normalised input, and the halo).
BLOCK_VOXELS = 2**24
#: Output chunk (Z, Y, X) before clipping to the volume: 1 MB (uint8) to 4 MB (float32).
CHUNK_ZYX = (8, 256, 256)


@dataclass(frozen=True)
class Block:
    """Block ``index`` of a plan: the output box ``core`` (Z, Y, X slices) it writes."""

    index: int
    core: Region

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(s.stop - s.start for s in self.core)  # type: ignore[return-value]


def output_chunks(shape: Sequence[int], tile: Sequence[int]) -> tuple[int, int, int]:
    """The chunk shape of the outputs: :data:`CHUNK_ZYX` (Z no deeper than a 3D tile, so a
    block can stay one tile deep), clipped to the volume."""
    cz = CHUNK_ZYX[0] if tile[0] == 1 else max(1, min(CHUNK_ZYX[0], int(tile[0])))
    return tuple(max(1, min(int(s), c)) for s, c in zip(shape, (cz, *CHUNK_ZYX[1:])))  # type: ignore


def plan_blocks(shape: Sequence[int], chunks: Sequence[int], tile: Sequence[int], *,
                voxels: int = BLOCK_VOXELS, min_blocks: int = 1,
                block: Sequence[int] | None = None) -> list[Block]:
    """Blocks of whole chunks covering ``shape`` (Z, Y, X), in Z, Y, X order.

    Whole slices when a chunk-deep slab of them fits in ``voxels``, else square Y/X pieces
    at least two tiles wide; then as many slices as fit, at least two tiles deep for a 3D
    model (fewer duplicated tiles). ``min_blocks`` shrinks the depth so that many workers
    each get several blocks (never below the minimum depth). ``block``: a block shape asked
    for, rounded up to whole chunks.
    """
    shape = [int(s) for s in shape]
    cz, cy, cx = (int(c) for c in chunks)
    if block is not None:
        bz, by, bx = (_round_up(min(int(b), s), c) for b, s, c in zip(block, shape, chunks))
        return _boxes(shape, bz, by, bx)
    z_min = _round_up(max(cz, 2 * int(tile[0]) if tile[0] > 1 else cz), cz)
    if z_min * shape[1] * shape[2] <= voxels:
        by, bx = shape[1], shape[2]
    else:
        side = int(math.sqrt(voxels / z_min))
        by = min(shape[1], _round_up(max(side, 2 * int(tile[1])), cy))
        bx = min(shape[2], _round_up(max(side, 2 * int(tile[2])), cx))
    pieces = math.ceil(shape[1] / by) * math.ceil(shape[2] / bx)
    bz = max(z_min, (voxels // (by * bx)) // cz * cz)
    if min_blocks > 1:
        per_slab = max(1, math.ceil(min_blocks / pieces))
        bz = min(bz, max(z_min, _round_up(math.ceil(shape[0] / per_slab), cz)))
    return _boxes(shape, bz, by, bx)


def _boxes(shape: Sequence[int], bz: int, by: int, bx: int) -> list[Block]:
    blocks = []
    for z0 in range(0, shape[0], bz):
        for y0 in range(0, shape[1], by):
            for x0 in range(0, shape[2], bx):
                core = (slice(z0, min(shape[0], z0 + bz)), slice(y0, min(shape[1], y0 + by)),
                        slice(x0, min(shape[2], x0 + bx)))
                blocks.append(Block(len(blocks), core))
    return blocks


def _round_up(n: int, m: int) -> int:
    return -(-int(n) // int(m)) * int(m)


def predict_block(predictor: Any, read: Callable[[Region], np.ndarray], grid: TileGrid,
                  core: Region, *, cancel: prog.CancelToken | None = None) -> np.ndarray:
    """The blended model output on ``core`` as (dz, dy, dx, outputs) float32, equal to the
    same box of a single pass of ``predictor`` over the whole volume with ``grid`` (its
    Z smoothing included).

    read: ``region -> float32 (z, y, x)`` normalised image of the whole volume.
    """
    shape = grid.volume_shape
    radius = min(z_radius(predictor.config.z_smooth), shape[0])
    # the box whose blended values are needed: the core, plus the smoothing radius in Z
    need = (slice(max(0, core[0].start - radius), min(shape[0], core[0].stop + radius)),
            core[1], core[2])
    axes = [[o for o in origins if o < n.stop and o + t > n.start]
            for origins, t, n in zip(grid.origins, grid.tile_shape, need)]
    box = tuple(slice(a[0], min(s, a[-1] + t)) for a, t, s in zip(axes, grid.tile_shape, shape))
    context = int(getattr(predictor, "context", 0) or 0)
    if context:  # 2.5D: each tile reads its neighbour slices too, as in one pass
        from deepscem.dataset.context import context_reader

        read_local = context_reader(read, context, shape[0])
    else:
        image = read(box)  # every tile below lies in this box: one read, the halo included

        def read_local(region: Region) -> np.ndarray:
            return image[tuple(slice(r.start - b.start, r.stop - b.start)
                               for r, b in zip(region, box))]

    # the whole grid's tiles that touch the box, in its order (z, y, x), with its pads
    tiles = list(TileGrid(shape, grid.tile_shape, tuple(tuple(a) for a in axes),  # type: ignore
                          grid.window_kind))
    acc = np.zeros(tuple(n.stop - n.start for n in need) + (predictor.outputs,), np.float32)
    window = grid.window()[..., None]
    for batch in batched(tiles, predictor.batch_size(grid)):
        prog.check(cancel)
        out = predictor.forward(np.stack([read_tile(read_local, t) for t in batch])
                                .astype(np.float32, copy=False))
        for tile, y in zip(batch, out):
            _add_tile(acc, need, tile, y, window)
    sz, sy, sx = grid.weight_sums()
    # the same float64 product (sz * sy) * sx cast to float32 as BlendingAccumulator, so values
    # match bit for bit up to the order of additions; slice by slice and in place, so the
    # block's memory is its accumulator (not 3 more copies of it)
    for k, z in enumerate(range(need[0].start, need[0].stop)):
        acc[k] /= ((sz[z] * sy[need[1], None]) * sx[None, need[2]]).astype(np.float32)[..., None]
    blended = acc
    if radius:
        from scipy.ndimage import gaussian_filter1d

        blended = gaussian_filter1d(blended, float(predictor.config.z_smooth), axis=0,
                                    mode="reflect", truncate=4.0)
    top = core[0].start - need[0].start
    return blended[top:top + core[0].stop - core[0].start]


def _add_tile(acc: np.ndarray, need: Region, tile: Any, output: np.ndarray,
              window: np.ndarray) -> None:
    """acc[need-local] += the part of one tile's weighted output that lies in ``need``."""
    src, dst = [], []
    for region, n in zip(tile.region, need):
        lo, hi = max(region.start, n.start), min(region.stop, n.stop)
        if hi <= lo:
            return
        src.append(slice(lo - region.start, hi - region.start))
        dst.append(slice(lo - n.start, hi - n.start))
    acc[tuple(dst)] += output[tuple(src)] * window[tuple(src)]
