"""Partial labels: which voxels of a sample are annotated (the ``annotated`` layer).

The rule (DESIGN.md §3, issue 13):

* a sample may hold a layer named :data:`deepscem.dataset.layers.ANNOTATED` (``"annotated"``):
  uint8 {0, 1}, the sample's (Z, Y, X) shape, chunked and gzip-compressed like the labels;
  1 = the label layers are the truth there (foreground *and* background), 0 = unknown;
* **absent = everything annotated**: every existing file and every file of the original tool
  keeps its meaning, and a fully labelled sample costs nothing;
* a sample added *without* label files (``dataset add-sample F S IMAGE`` in an N-label dataset)
  gets blank label layers and an all-zero ``annotated`` layer: a volume to predict or to paint,
  not "background everywhere". Blank labels given on purpose (``""`` / ``-``) stay annotated
  (the original's "valid but blank" label);
* the layer may have fill value 1 (made by :func:`mark_annotated` from the absent state, so
  unwritten chunks mean "annotated"); readers must read it, never assume fill 0.

Training counts only annotated voxels (losses, validation) and draws patches that contain some;
evaluation scores only annotated voxels of the reference and skips samples with none.

Whole-layer changes (:func:`set_annotated_slices`, :func:`set_annotated_mask`,
:func:`set_none_annotated`) write a hidden ``.annotated.part`` layer and then swap it in, so a
kill leaves the old layer (plus a stray hidden layer the next change removes). Region edits
(:func:`mark_annotated`, for painting) write only the chunks the region touches.

>>> parse_slices("0,40,80", 100)
[0, 40, 80]
>>> parse_slices("0-3, 9", 10)
[0, 1, 2, 3, 9]
>>> evenly_spaced(4, 165)
[20, 61, 103, 144]
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence

import numpy as np

from deepscem import progress as prog
from deepscem.dataset import imageio
from deepscem.dataset.format import layer_options, slab_depth
from deepscem.dataset.layers import ANNOTATED
from deepscem.errors import DatasetError, InputFileError

PART = "." + ANNOTATED + ".part"
# Bytes of uint8 mask per strip when writing whole slices (bounds memory on huge slices).
STRIP_BYTES = 16 * 2**20

Region = tuple[slice, ...] | None


def has_layer(sample) -> bool:
    """True when the sample says which voxels are annotated (else: all of them are)."""
    return ANNOTATED in sample.group


def region_shape(shape: Sequence[int], region: Region) -> tuple[int, ...]:
    """Shape of ``region`` (slices over Z, Y, X; missing trailing axes = whole) in ``shape``."""
    region = tuple(region or ()) + (slice(None),) * (len(shape) - len(region or ()))
    return tuple(len(range(*s.indices(int(n)))) for s, n in zip(region, shape))


def read_annotated(sample, region: Region = None) -> np.ndarray:
    """uint8 {0, 1} mask of ``region`` (whole sample if None), ones when the layer is absent."""
    if not has_layer(sample):
        return np.ones(region_shape(sample.shape, region), np.uint8)
    return np.asarray(sample.read_layer(ANNOTATED, region), np.uint8)


def annotated_per_slice(sample, *, progress=None, cancel=None) -> np.ndarray:
    """Annotated voxels per Z slice, (Z,) int64, streamed slab by slab (memory: one slab)."""
    z, y, x = (int(s) for s in sample.shape)
    if not has_layer(sample):
        return np.full(z, y * x, np.int64)
    layer = sample.layer(ANNOTATED)
    counts = np.zeros(z, np.int64)
    depth = slab_depth(sample.shape, 1)
    for z0 in range(0, z, depth):
        prog.check(cancel)
        slab = layer[z0:z0 + depth]
        counts[z0:z0 + len(slab)] = np.count_nonzero(slab.reshape(len(slab), -1), axis=1)
        prog.emit(progress, min(z, z0 + depth), z, "slices", "counting annotated voxels")
    return counts


def annotated_fraction(sample) -> float:
    """Fraction of the sample's voxels that are annotated (1.0 without the layer)."""
    if not has_layer(sample):
        return 1.0
    return float(annotated_per_slice(sample).sum()) / max(1, math.prod(sample.shape))


# -- parsing what the user says -----------------------------------------------------------------

def parse_slices(text: str, depth: int) -> list[int]:
    """Z indices from "0,40,80" / "0-9" / "0-9,20" (inclusive ranges), checked against ``depth``."""
    out: set[int] = set()
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        try:
            lo, _, hi = part.partition("-")
            a, b = int(lo), int(hi) if hi else int(lo)
        except ValueError:
            raise DatasetError(f"cannot read slice list {text!r}: give Z indices like 0,40,80 or "
                               "ranges like 0-9") from None
        if a > b:
            raise DatasetError(f"slice range {part!r} runs backwards; write it as {b}-{a}")
        if a < 0 or b >= depth:
            raise DatasetError(f"slice {b if b >= depth else a} is outside the sample's Z range "
                               f"0..{depth - 1}")
        out.update(range(a, b + 1))
    if not out:
        raise DatasetError(f"no slice given in {text!r}; give Z indices like 0,40,80")
    return sorted(out)


def evenly_spaced(n: int, depth: int) -> list[int]:
    """``n`` slice indices spread evenly over ``depth`` slices (centres of n equal parts)."""
    n = max(1, min(int(n), int(depth)))
    return sorted({int((i + 0.5) * depth / n) for i in range(n)})


# -- writing ------------------------------------------------------------------------------------

def mark_annotated(sample, region: Region, value: int = 1) -> None:
    """Set ``region`` of the annotated mask to ``value`` (1 annotated, 0 unknown), in place.

    Only the chunks the region touches are read and written (painting a slice of a 100 GB
    volume touches one slab). Marking 1 without a layer is a no-op (all is annotated already);
    marking 0 without one creates the layer with fill value 1 first (nothing else written).
    """
    sample.dataset._require_writable()
    value = 1 if value else 0
    if not has_layer(sample):
        if value == 1:
            return
        sample.create_layer(ANNOTATED, np.uint8, fill=1)
    sample.layer(ANNOTATED)[tuple(region or (slice(None),))] = np.uint8(value)


def set_all_annotated(sample) -> None:
    """Everything annotated: remove the layer (absent = all annotated)."""
    sample.dataset._require_writable()
    for name in (ANNOTATED, PART):
        if name in sample.group:
            del sample.group[name]
    sample.dataset.file.flush()


def set_none_annotated(sample) -> None:
    """Nothing annotated (a volume to predict or to paint): an all-zero layer, no chunk written."""
    _swap_in(sample, _new_part(sample))


def set_annotated_slices(sample, slices: Iterable[int], *, progress=None, cancel=None) -> None:
    """Exactly the Z ``slices`` are annotated (whole slices), the rest unknown."""
    zs = sorted({int(z) for z in slices})
    depth = int(sample.shape[0])
    if any(z < 0 or z >= depth for z in zs):
        raise DatasetError(f"slices {zs} go outside the sample's Z range 0..{depth - 1}")
    part = _new_part(sample)
    try:
        y, x = (int(s) for s in sample.shape[1:])
        rows = max(1, STRIP_BYTES // max(1, x))
        for i, z in enumerate(zs):
            for y0 in range(0, y, rows):
                prog.check(cancel)
                part[z, y0:y0 + rows] = np.ones((min(rows, y - y0), x), np.uint8)
            prog.emit(progress, i + 1, len(zs), "slices", "marking annotated slices")
    except BaseException as err:
        _drop_part(sample)
        _reword(sample, err)
        raise
    _swap_in(sample, part)


def set_annotated_mask(sample, mask, *, progress=None, cancel=None) -> None:
    """The annotated voxels are the non-zero voxels of ``mask`` (a path or an array, (Z, Y, X)).

    The mask is read and written slab by slab; values must be {0, 1} or {0, 255} like labels.
    """
    source = (imageio.ArraySource(imageio.image_array(np.asarray(mask), "annotated mask"), "mask")
              if isinstance(mask, np.ndarray) else imageio.open_volume(os.fspath(mask)))
    with source:
        if tuple(source.shape) != tuple(sample.shape):
            raise InputFileError(f"{source.path}: annotated mask shape {tuple(source.shape)} (Z, Y, X) "
                                 f"differs from sample {sample.name!r}'s {tuple(sample.shape)}")
        check = imageio.LabelValues(source.path)
        part = _new_part(sample)
        try:
            depth = slab_depth(sample.shape, max(1, source.dtype.itemsize))
            for z0 in range(0, sample.shape[0], depth):
                prog.check(cancel)
                slab = source.read(z0, min(z0 + depth, sample.shape[0]))
                check.update(slab)
                part[z0:z0 + len(slab)] = imageio.to_label(slab)
                prog.emit(progress, z0 + len(slab), sample.shape[0], "slices", "writing annotated mask")
        except BaseException as err:
            _drop_part(sample)
            _reword(sample, err)
            raise
    _swap_in(sample, part)


def _new_part(sample):
    """A fresh hidden all-zero layer to fill (a stray one of a killed run is replaced)."""
    sample.dataset._require_writable()
    _drop_part(sample)
    return sample.group.create_dataset(PART, shape=sample.shape, dtype=np.uint8, fillvalue=0,
                                       **layer_options(sample.shape, np.dtype(np.uint8), ANNOTATED))


def _drop_part(sample) -> None:
    try:
        if PART in sample.group:
            del sample.group[PART]
    except OSError:  # e.g. the disk is full: the hidden layer stays, the next change removes it
        pass


def _reword(sample, err: BaseException) -> None:
    """A file-system failure (disk full...) as a one-line error; the old mask is kept."""
    if isinstance(err, OSError):
        raise DatasetError(f"{sample.dataset.path}: changing the annotated voxels of sample "
                           f"{sample.name!r} failed ({err.strerror or err}); the previous ones are "
                           "kept") from err


def _swap_in(sample, part) -> None:
    """Replace ``annotated`` by the finished hidden layer: data flushed first, then two link
    changes (delete, move) flushed together, so a kill leaves the old or the new layer."""
    sample.dataset.file.flush()
    if ANNOTATED in sample.group:
        del sample.group[ANNOTATED]
    sample.group.move(PART, ANNOTATED)
    sample.dataset.file.flush()


class SampleAnnotation:
    """The partial-label methods of :class:`deepscem.dataset.Sample` (a mixin over this module's
    functions; the sample provides ``group``, ``shape``, ``dataset`` and ``read_layer``)."""

    def has_annotation(self) -> bool:
        """True when the sample says which voxels are annotated (else all of them are)."""
        return has_layer(self)

    def annotated_fraction(self) -> float:
        """Fraction of voxels annotated, 0..1 (1.0 without an ``annotated`` layer); streamed."""
        return annotated_fraction(self)

    def annotated_per_slice(self) -> np.ndarray:
        """Annotated voxels per Z slice, (Z,) int64."""
        return annotated_per_slice(self)

    def read_annotated(self, region: Region = None) -> np.ndarray:
        """uint8 {0, 1} (Z, Y, X) mask of ``region``: 1 = labelled; ones without the layer."""
        return read_annotated(self, region)

    def mark_annotated(self, region: Region, value: int = 1) -> None:
        """Mark ``region`` annotated (1) or unknown (0), writing only the chunks it touches."""
        mark_annotated(self, region, value)

    def set_annotated_slices(self, slices, *, progress=None, cancel=None) -> None:
        """Exactly these Z slices are annotated; swapped in whole (a kill keeps the old mask)."""
        set_annotated_slices(self, slices, progress=progress, cancel=cancel)

    def set_annotated_mask(self, mask, *, progress=None, cancel=None) -> None:
        """Annotated = non-zero voxels of ``mask`` (path or (Z, Y, X) array)."""
        set_annotated_mask(self, mask, progress=progress, cancel=cancel)

    def set_all_annotated(self) -> None:
        set_all_annotated(self)

    def set_none_annotated(self) -> None:
        set_none_annotated(self)
