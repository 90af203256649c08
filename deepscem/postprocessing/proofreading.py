"""Proofreading an instance layer: delete, merge, split, relabel objects; every edit undoable.

Each operation reads and writes only the bounding box of the objects it touches (an
``instance_XXXX`` h5py dataset or a NumPy array, (Z, Y, X) unsigned ids, 0 = background) and
returns an :class:`Edit` holding that box's previous values, so :func:`undo` puts them back.

Split: a seeded watershed inside the object, from two (or more) seed voxels, on the negated
distance to the object's outside (in physical units when the voxel size is given), so the cut
falls at the object's narrowest place between the seeds; where there is no such neck (a part
would get under 10 % of the object) it is cut halfway between the seeds instead. The first
seed keeps the id, the others get new ids (max id + 1, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepscem.errors import DatasetError

Box = tuple[slice, slice, slice]
#: A split whose smallest part would hold less than this fraction of the object found no neck
#: between the clicks; the object is then cut halfway between them (geodesically) instead.
MIN_PART = 0.1


@dataclass(frozen=True)
class Edit:
    """One operation: what it did (``text``), the box it changed and the values before."""

    text: str
    box: Box
    before: np.ndarray
    new_ids: tuple[int, ...] = ()


def bounding_box(ids: Any, values: Sequence[int], hint: Box | None = None,
                 slab: int = 64) -> Box:
    """The box (Z, Y, X slices, stop excluded) holding every voxel of ``values``, searched
    inside ``hint`` (e.g. boxes from a measurement) or over the whole layer, slab by slab."""
    wanted = np.asarray(list(values), ids.dtype)
    region = hint or tuple(slice(0, int(n)) for n in ids.shape)
    lo, hi = None, None
    for z0 in range(region[0].start, region[0].stop, slab):
        z1 = min(region[0].stop, z0 + slab)
        part = np.isin(np.asarray(ids[(slice(z0, z1), region[1], region[2])]), wanted)
        if not part.any():
            continue
        where = [np.flatnonzero(part.any(axis=tuple(a for a in range(3) if a != k)))
                 for k in range(3)]
        first = (z0 + where[0][0], region[1].start + where[1][0], region[2].start + where[2][0])
        last = (z0 + where[0][-1] + 1, region[1].start + where[1][-1] + 1,
                region[2].start + where[2][-1] + 1)
        lo = first if lo is None else tuple(min(a, b) for a, b in zip(lo, first))
        hi = last if hi is None else tuple(max(a, b) for a, b in zip(hi, last))
    if lo is None:
        raise DatasetError(f"no object with id {', '.join(str(v) for v in values)} in this layer")
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))  # type: ignore[return-value]


def _apply(ids: Any, box: Box, change, text: str, new_ids: tuple[int, ...] = ()) -> Edit:
    before = np.asarray(ids[box]).copy()
    after = change(before.copy())
    ids[box] = after
    return Edit(text, box, before, new_ids)


def delete(ids: Any, value: int, *, hint: Box | None = None) -> Edit:
    """Set object ``value`` to background."""
    box = bounding_box(ids, [value], hint)

    def change(block):
        block[block == value] = 0
        return block
    return _apply(ids, box, change, f"delete object {value}")


def merge(ids: Any, values: Sequence[int], *, hints: Sequence[Box] = ()) -> Edit:
    """Give every object of ``values`` the first one's id."""
    values = [int(v) for v in values]
    if len(set(values)) < 2:
        raise DatasetError("select at least two different objects to merge")
    boxes = [bounding_box(ids, [v], h) for v, h in zip(values, list(hints) + [None] * len(values))]
    box = tuple(slice(min(b[k].start for b in boxes), max(b[k].stop for b in boxes))
                for k in range(3))
    keep = values[0]

    def change(block):
        block[np.isin(block, values[1:])] = keep
        return block
    return _apply(ids, box, change, f"merge objects {', '.join(map(str, values))} into {keep}")


def relabel(ids: Any, value: int, new_value: int, *, hint: Box | None = None) -> Edit:
    """Give object ``value`` the id ``new_value`` (joining that object if it exists)."""
    if int(new_value) < 1 or int(new_value) > np.iinfo(np.dtype(ids.dtype)).max:
        raise DatasetError(f"an object id is a whole number from 1 to "
                           f"{np.iinfo(np.dtype(ids.dtype)).max}, got {new_value}")
    box = bounding_box(ids, [value], hint)

    def change(block):
        block[block == value] = new_value
        return block
    return _apply(ids, box, change, f"relabel object {value} as {new_value}", (int(new_value),))


def max_id(ids: Any, slab: int = 64) -> int:
    """The largest id of the layer (streamed)."""
    return max([int(np.asarray(ids[z:z + slab]).max(initial=0))
                for z in range(0, int(ids.shape[0]), slab)] or [0])


def split(ids: Any, value: int, seeds: Sequence[Sequence[int]], *, voxel_size=None,
          hint: Box | None = None) -> Edit:
    """Split object ``value`` by a watershed from ``seeds`` ((z, y, x) voxels inside it)."""
    from scipy import ndimage
    from skimage.segmentation import watershed

    seeds = [tuple(int(c) for c in s) for s in seeds]
    if len(seeds) < 2:
        raise DatasetError("click two points inside the object to split it")
    for s in seeds:
        if any(not 0 <= c < n for c, n in zip(s, ids.shape)) or int(ids[s]) != value:
            raise DatasetError(f"split seeds must lie inside object {value}; {s} does not")
    if len(set(seeds)) < len(seeds):
        raise DatasetError("the split seeds must be different voxels")
    box = bounding_box(ids, [value], hint)
    first_new = max_id(ids) + 1
    new_ids = tuple(range(first_new, first_new + len(seeds) - 1))

    def change(block):
        inside = block == value
        sampling = tuple(float(v) for v in voxel_size) if voxel_size else None
        distance = ndimage.distance_transform_edt(np.pad(inside, 1), sampling=sampling)[
            1:-1, 1:-1, 1:-1]
        local = [tuple(c - b.start for c, b in zip(s, box)) for s in seeds]
        # A click is rarely at the centre of its part: each seed climbs the distance map to
        # its local maximum, so the flooding starts from the part's core and the cut falls
        # at the neck. Seeds climbing to the same point keep their clicked voxels, on a
        # flat elevation (a geodesic split halfway between them).
        peaks = [_climb(distance, p) for p in local]
        elevation = -distance
        if len(set(peaks)) < len(peaks):
            peaks, elevation = local, np.zeros_like(distance)
        markers = np.zeros(block.shape, np.int32)
        for k, p in enumerate(peaks):
            markers[p] = k + 1
        parts = watershed(elevation, markers=markers, mask=inside)
        sizes = np.bincount(parts.ravel(), minlength=len(seeds) + 1)[1:]
        if elevation.any() and sizes.min() < MIN_PART * sizes.sum():
            # no neck between the clicks (one core, a ridge): cut halfway between them instead
            for k, p in enumerate(local):
                markers[markers == k + 1] = 0
                markers[p] = k + 1
            parts = watershed(np.zeros_like(distance), markers=markers, mask=inside)
        for k, new in enumerate(new_ids):
            block[parts == k + 2] = new
        return block
    return _apply(ids, box, change, f"split object {value} (new {', '.join(map(str, new_ids))})",
                  new_ids)


def _climb(distance: np.ndarray, start: tuple[int, ...]) -> tuple[int, ...]:
    """Steepest ascent on ``distance`` from ``start`` (26 neighbours) to a local maximum."""
    point = tuple(int(c) for c in start)
    steps = [(dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
             if (dz, dy, dx) != (0, 0, 0)]
    while True:
        best, value = point, distance[point]
        for step in steps:
            q = tuple(c + d for c, d in zip(point, step))
            if all(0 <= c < n for c, n in zip(q, distance.shape)) and distance[q] > value:
                best, value = q, distance[q]
        if best == point:
            return point
        point = best


def undo(ids: Any, edit: Edit) -> None:
    """Put back the values ``edit`` changed."""
    ids[edit.box] = edit.before
