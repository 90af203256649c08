"""Hand edits of label layers, written into the dataset file chunk by chunk (Qt-free).

What a painter does in the viewer, as calls on a file path: set a 2D region of a label to 0
or 1 (a brush or eraser stroke, a flood fill), mark a region as annotated (background
verified), copy a thresholded prediction into a label. Each call opens the file, reads and
writes only the bounding box it touches (HDF5 reads and rewrites just the chunks under it: a
stroke on a 100 GB volume costs a few 64 KB chunks), flushes and closes it, so a crash loses
at most the stroke being written. Each returns a :class:`Patch` (old and new contents of the
box, compressed) that :class:`EditHistory` replays for undo / redo.

Planes: ``Plane(0, z)`` is the XY slice at ``z`` (rows Y, cols X); ``Plane(1, y)`` the XZ plane
(rows Z, cols X); ``Plane(2, x)`` the YZ plane (rows Z, cols Y).

The ``annotated`` layer (uint8 {0, 1}; absent = every voxel annotated): an edit marks what it
touches. The first edit of a sample without the layer creates it (see :func:`annotated_layer`).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from deepscem import progress as prog
from deepscem.dataset.access import file_lock
from deepscem.dataset.format import slab_depth
from deepscem.dataset.layers import ANNOTATED, is_label
from deepscem.dataset.store import Dataset, Sample
from deepscem.errors import DatasetError

#: Edits of more voxels than this (a whole-sample copy of a prediction) keep no undo record.
UNDO_MAX_VOXELS = 64 * 2**20

Box = tuple[slice, slice, slice]


@dataclass(frozen=True)
class Plane:
    """A 2D plane of a (Z, Y, X) volume: ``axis`` 0 (XY at z), 1 (XZ at y) or 2 (YZ at x)."""

    axis: int
    index: int

    def box(self, rows: slice, cols: slice) -> Box:
        """The 3D box of ``rows`` x ``cols`` of this plane (slices over Z, Y, X)."""
        one = slice(self.index, self.index + 1)
        return ((one, rows, cols), (rows, one, cols), (rows, cols, one))[self.axis]

    def size(self, shape_zyx: tuple[int, int, int]) -> tuple[int, int]:
        """(rows, cols) of this plane in a volume of ``shape_zyx``."""
        return tuple(s for i, s in enumerate(shape_zyx) if i != self.axis)

    def to_3d(self, plane: np.ndarray) -> np.ndarray:
        return np.expand_dims(plane, self.axis)


@dataclass
class Patch:
    """One undoable edit: old and new contents of ``box`` per layer, zlib-compressed uint8."""

    path: Path
    sample: str
    box: Box
    shape: tuple[int, int, int]
    layers: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    what: str = "edit"

    @property
    def nbytes(self) -> int:
        return sum(len(old) + len(new) for old, new in self.layers.values())


def annotated_layer(sample: Sample) -> h5py.Dataset:
    """The sample's ``annotated`` layer, created if absent without changing what it means.

    Absent means "every voxel annotated" (the rule of :mod:`deepscem.dataset.annotation`), so
    the layer is created filled with 1 (no chunk written): correcting a few voxels of a full
    label, or painting on blank labels given on purpose, keeps the rest annotated. A volume
    added to be painted (no label files: ``add-sample`` without labels, the GUI's Add sample
    with every label field empty) already has the layer, all 0: only what is painted or
    marked counts there.
    """
    if ANNOTATED in sample.group:
        return sample.layer(ANNOTATED)
    return sample.create_layer(ANNOTATED, np.uint8, fill=1)


def _has_content(data: h5py.Dataset) -> bool:
    """Whether any voxel is non-zero: only allocated chunks are read (a blank label has none)."""
    if data.chunks is not None and data.fillvalue == 0:
        for i in range(data.id.get_num_chunks()):
            offset = data.id.get_chunk_info(i).chunk_offset
            box = tuple(slice(o, o + c) for o, c in zip(offset, data.chunks))
            if data[box].any():
                return True
        return False
    step = slab_depth(data.shape, data.dtype.itemsize)
    return any(data[z:z + step].any() for z in range(0, data.shape[0], step))


def _box(sample: Sample, box: Box) -> Box:
    """``box`` with concrete, clipped bounds; DatasetError when it is empty."""
    out = tuple(slice(*s.indices(n)[:2]) for s, n in zip(box, sample.shape))
    if any(s.stop <= s.start for s in out):
        raise DatasetError(f"the region {box} is outside sample {sample.name!r} of shape {sample.shape}")
    return out


def _edit(path: Path, sample: str, box: Box, changes: dict[str, Callable[[np.ndarray], np.ndarray]],
          what: str) -> Patch | None:
    """Apply ``changes`` (layer -> new contents from old) to ``box`` of each layer; flush.

    Returns the undo record, or None when nothing changed."""
    path = Path(path)
    with file_lock(path), Dataset.open(path, "r+", check_samples=False) as ds:
        s = ds.sample(sample)
        box = _box(s, box)
        patch = Patch(path, sample, box, tuple(b.stop - b.start for b in box), what=what)
        if ANNOTATED in changes:
            annotated_layer(s)  # before the labels change: its initial value depends on them
        for layer, change in changes.items():
            data = s.layer(layer)
            old = data[box]
            new = np.asarray(change(old), np.uint8)
            if np.array_equal(old, new):
                continue
            data[box] = new
            patch.layers[layer] = (zlib.compress(old.tobytes(), 1), zlib.compress(new.tobytes(), 1))
        ds.file.flush()
    return patch if patch.layers else None


def _check_label(layer: str) -> None:
    if not is_label(layer):
        raise DatasetError(f"{layer!r} is not a label layer; paint into label_0000, label_0001...")


def paint(path: str | os.PathLike, sample: str, layer: str, plane: Plane, origin: tuple[int, int],
          mask: np.ndarray, value: int, *, annotate: bool = True, what: str = "stroke") -> Patch | None:
    """Set ``layer`` to ``value`` (0 or 1) where ``mask`` (rows, cols bool) is true.

    ``mask`` sits at ``origin`` = (row, col) of ``plane``; only its box is read and written.
    ``annotate``: also mark those voxels annotated (an eraser stroke says "background here").
    """
    _check_label(layer)
    mask = np.asarray(mask, bool)
    if min(origin) < 0:  # a brush hanging over the top / left edge: keep the part inside
        mask = mask[max(0, -origin[0]):, max(0, -origin[1]):]
        origin = (max(0, origin[0]), max(0, origin[1]))
    rows = slice(origin[0], origin[0] + mask.shape[0])
    cols = slice(origin[1], origin[1] + mask.shape[1])
    m3 = plane.to_3d(mask)
    changes = {layer: lambda old: np.where(m3[tuple(slice(0, n) for n in old.shape)], value, old)}
    if annotate:
        changes[ANNOTATED] = lambda old: np.where(m3[tuple(slice(0, n) for n in old.shape)], 1, old)
    return _edit(Path(path), sample, plane.box(rows, cols), changes, what)


def mark_annotated(path: str | os.PathLike, sample: str, box: Box, value: int = 1, *,
                   what: str = "mark annotated") -> Patch | None:
    """Set ``annotated`` to ``value`` in ``box`` (slices over Z, Y, X): "this region's labels are
    checked; what is not labelled is background" (value 1), or "unknown" (value 0)."""
    return _edit(Path(path), sample, box, {ANNOTATED: lambda old: np.full_like(old, value)}, what)


def fill_region(plane: np.ndarray, seed: tuple[int, int]) -> tuple[tuple[int, int], np.ndarray]:
    """The connected region (4-neighbours) of pixels equal to ``plane[seed]``, as ``(origin,
    mask)`` cut to its bounding box: the inside of a closed outline clicked in a (rows, cols)
    label plane.

    >>> ring = np.array([[0, 1, 1, 1], [0, 1, 0, 1], [0, 1, 1, 1]], np.uint8)
    >>> fill_region(ring, (1, 2))
    ((1, 2), array([[ True]]))
    """
    from skimage.segmentation import flood

    mask = flood(np.ascontiguousarray(plane), tuple(int(v) for v in seed), connectivity=1)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return (int(r0), int(c0)), mask[r0:r1, c0:c1]


def copy_prediction(source: str | os.PathLike, prediction: str, target: str | os.PathLike, sample: str,
                    label: str, box: Box | None = None, threshold: float = 0.5, *,
                    progress=None, cancel=None) -> Patch | None:
    """Write ``prediction >= threshold`` (of file ``source``) into ``label`` of ``target``, same
    sample, in ``box`` (default: the whole sample), and mark it annotated; slab by slab.

    The undo record is kept for boxes up to :data:`UNDO_MAX_VOXELS` (a slice, a region);
    a whole large sample is written without one (returns None).
    """
    _check_label(label)
    source, target = Path(source), Path(target)
    with ExitStack() as stack:
        for p in sorted({source.resolve(), target.resolve()}):
            stack.enter_context(file_lock(p))
        dst = stack.enter_context(Dataset.open(target, "r+", check_samples=False))
        src = dst if source.resolve() == target.resolve() else \
            stack.enter_context(Dataset.open(source, check_samples=False))
        pred = src.sample(sample).layer(prediction)
        s = dst.sample(sample)
        if tuple(pred.shape) != tuple(s.shape):
            raise DatasetError(f"{prediction} of {source.name} has shape {tuple(pred.shape)}, sample "
                               f"{sample!r} of {target.name} is {s.shape}")
        box = _box(s, box or (slice(None),) * 3)
        shape = tuple(b.stop - b.start for b in box)
        record = int(np.prod(shape)) <= UNDO_MAX_VOXELS
        annotated_layer(s)  # before the label changes (see annotated_layer)
        olds, news = {label: [], ANNOTATED: []}, {label: [], ANNOTATED: []}
        step = slab_depth(shape, 4)
        starts = range(box[0].start, box[0].stop, step)
        for done, z0 in enumerate(starts):
            prog.check(cancel)
            slab = (slice(z0, min(z0 + step, box[0].stop)), box[1], box[2])
            for layer, values in ((label, None), (ANNOTATED, 1)):
                data = s.layer(label if values is None else ANNOTATED)
                new = (pred[slab] >= threshold).astype(np.uint8) if values is None \
                    else np.ones(data[slab].shape, np.uint8)
                if record:
                    olds[layer].append(data[slab])
                    news[layer].append(new)
                data[slab] = new
            dst.file.flush()
            prog.emit(progress, done + 1, len(starts), "slabs", "copying the prediction")
    if not record:
        return None
    patch = Patch(target, sample, box, shape, what=f"{prediction} as {label}")
    for layer in (label, ANNOTATED):
        patch.layers[layer] = (zlib.compress(np.concatenate(olds[layer]).tobytes(), 1),
                               zlib.compress(np.concatenate(news[layer]).tobytes(), 1))
    return patch


def replay(patch: Patch, *, undo: bool) -> None:
    """Write the old (``undo=True``) or the new contents of ``patch`` back into its file."""
    with file_lock(patch.path), Dataset.open(patch.path, "r+", check_samples=False) as ds:
        s = ds.sample(patch.sample)
        for layer, (old, new) in patch.layers.items():
            values = np.frombuffer(zlib.decompress(old if undo else new), np.uint8).reshape(patch.shape)
            s.layer(layer)[patch.box] = values
        ds.file.flush()


class EditHistory:
    """Undo / redo of :class:`Patch` records: at least ``limit`` edits, and as many more as fit
    in ``max_bytes`` of compressed records (a stroke costs a few KB)."""

    def __init__(self, limit: int = 100, max_bytes: int = 256 * 2**20) -> None:
        self.limit, self.max_bytes = limit, max_bytes
        self._done: list[Patch] = []
        self._undone: list[Patch] = []

    def push(self, patch: Patch | None) -> None:
        if patch is None:
            return
        self._done.append(patch)
        self._undone.clear()
        while len(self._done) > self.limit or (
                len(self._done) > 1 and sum(p.nbytes for p in self._done) > self.max_bytes):
            self._done.pop(0)

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    def __len__(self) -> int:
        return len(self._done)

    def undo(self) -> Patch | None:
        """Undo the last edit (written to its file at once); the patch, or None if none is left."""
        if not self._done:
            return None
        patch = self._done[-1]
        replay(patch, undo=True)
        self._undone.append(self._done.pop())
        return patch

    def redo(self) -> Patch | None:
        if not self._undone:
            return None
        patch = self._undone[-1]
        replay(patch, undo=False)
        self._done.append(self._undone.pop())
        return patch

    def forget(self, path: str | os.PathLike) -> None:
        """Drop the records of a file (it was unloaded, rewritten or removed)."""
        path = Path(path)
        self._done = [p for p in self._done if p.path != path]
        self._undone = [p for p in self._undone if p.path != path]
