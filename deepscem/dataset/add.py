"""Adding a sample: two streamed passes over the inputs (check, then write).

Pass 1 opens every input, checks shapes, label values and finite image values, and measures
the image's volume-wide range; nothing is written until it has passed, so a bad input leaves
the file byte-identical. Pass 2 writes slab by slab (about ``SLAB_BYTES`` of image per slab, so
memory does not grow with the stack) and removes the half-written group on an error or cancel.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing

import numpy as np

from deepscem import progress as prog
from deepscem.dataset import imageio
from deepscem.dataset.format import (
    BLANK,
    layer_options,
    slab_depth,
    stored_image_dtype,
    write_mask_slab,
)
from deepscem.dataset.layers import ANNOTATED, label_name
from deepscem.errors import DatasetError, InputFileError


def add_sample(ds, name: str, image, labels, *, progress=None, cancel=None):
    """See :meth:`deepscem.dataset.Dataset.add_sample`."""
    # One label given bare (a path or an array) rather than in a list: list("a.tif") would
    # silently become five "labels".
    labels = [labels] if isinstance(labels, (str, os.PathLike, np.ndarray)) else list(labels)
    # No label at all in an N-label dataset: a volume to predict or to paint. Its labels are
    # blank and nothing is annotated (deepscem.dataset.annotation), so evaluation does not
    # score it as "background everywhere" and training refuses it until slices are marked.
    unannotated = not labels and ds.n_labels > 0
    if unannotated:
        labels = [None] * ds.n_labels
    if len(labels) != ds.n_labels:
        raise DatasetError(f"{ds.path} needs {ds.n_labels} label(s) per sample, got "
                           f"{len(labels)}; give \"\" for a blank label, or no label at all for "
                           "a volume to predict or to paint")
    with ExitStack() as stack:
        img = stack.enter_context(_source(image, "image"))
        lbls = [None if _is_blank(lbl) else stack.enter_context(_source(lbl, f"label {i}"))
                for i, lbl in enumerate(labels)]
        for src in lbls:
            if src is not None and src.shape != img.shape:
                raise InputFileError(f"{src.path}: label shape {src.shape} (Z, Y, X) differs from "
                                     f"the image's {img.shape} ({img.path})")
        try:
            lo, hi = _scan(img, lbls, progress, cancel)
        except OSError as err:  # a file vanished or cannot be read any more
            raise InputFileError(f"reading the inputs failed ({err.strerror or err}); nothing "
                                 "was written") from err
        return _write(ds, name, img, lbls, lo, hi, progress, cancel, unannotated=unannotated)


def _write(ds, name: str, img, lbls, lo: float, hi: float, progress, cancel, *,
           unannotated: bool = False):
    """Second pass: create the group and write slab by slab; remove it again on any error."""

    shape = img.shape
    depth = slab_depth(shape, max(img.dtype.itemsize, 1))
    group = ds.file.create_group(name)
    try:
        group.attrs["shape"] = np.asarray(shape, np.int64)
        dtype = stored_image_dtype(img.dtype)
        image = group.create_dataset("image", shape=shape, dtype=dtype,
                                     **layer_options(shape, dtype, "image"))
        image.attrs["norm_min"], image.attrs["norm_max"] = lo, hi
        layers = [group.create_dataset(label_name(i), shape=shape, dtype=np.uint8, fillvalue=0,
                                       **layer_options(shape, np.dtype(np.uint8), label_name(i)))
                  for i in range(len(lbls))]
        if unannotated:  # all zero: no chunk is written
            group.create_dataset(ANNOTATED, shape=shape, dtype=np.uint8, fillvalue=0,
                                 **layer_options(shape, np.dtype(np.uint8), ANNOTATED))
        with closing(_read_slabs(img, lbls, depth)) as slabs:
            for z0, z1, slab, label_slabs in slabs:
                prog.check(cancel)
                image[z0:z1] = slab.astype(dtype, copy=False)
                for label, out in zip(label_slabs, layers):
                    if label is not None:  # a blank label stays unallocated: reads as fill 0
                        write_mask_slab(out, z0, imageio.to_label(label))
                prog.emit(progress, z1, shape[0], "slices", "writing")
        ds.file.flush()
    except BaseException as err:
        del ds.file[name]
        ds.file.flush()
        if isinstance(err, OSError):  # disk full, a file vanished...: a one-line message
            raise DatasetError(f"{ds.path}: adding sample {name!r} failed ({err.strerror or err}); "
                               "the dataset was left as it was") from err
        raise
    return ds.sample(name)


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in BLANK)


def _source(value, what: str) -> imageio.VolumeSource:
    if isinstance(value, np.ndarray):
        return imageio.ArraySource(imageio.image_array(value, f"{what} array"), f"{what} array")
    if isinstance(value, (str, os.PathLike)):
        return imageio.open_volume(value)
    raise InputFileError(f"{what}: expected a file path or an array, got {type(value).__name__}")


def _scan(img, lbls, progress, cancel) -> tuple[float, float]:
    """First pass: the image's volume-wide (min, max) and every label's values, slab by slab."""
    checks = [None if s is None else imageio.LabelValues(s.path) for s in lbls]
    depth = slab_depth(img.shape, img.dtype.itemsize)
    lo, hi = np.inf, -np.inf
    with closing(_read_slabs(img, lbls, depth)) as slabs:
        for _, z1, slab, label_slabs in slabs:
            prog.check(cancel)
            slab = slab.astype(stored_image_dtype(img.dtype), copy=False)  # the range as stored
            if slab.dtype.kind == "f" and not np.isfinite(slab).all():
                raise InputFileError(f"{img.path}: the image contains NaN or infinite values; "
                                     "replace them (e.g. with 0) before adding it")
            lo, hi = min(lo, float(slab.min())), max(hi, float(slab.max()))
            for label, check in zip(label_slabs, checks):
                if label is not None:
                    check.update(label)
            prog.emit(progress, z1, img.shape[0], "slices", "checking")
    return lo, hi


def _read_slabs(img, lbls, depth: int):
    """Yield ``(z0, z1, image slab, label slabs)``, reading the next slab in a background
    thread while the caller works on this one: file reads and TIFF decoding release the GIL,
    so they overlap with checking, compressing and HDF5 writes. Two slabs are alive at once."""
    bounds = [(z0, min(z0 + depth, img.shape[0])) for z0 in range(0, img.shape[0], depth)]

    def read(z0: int, z1: int):
        return img.read(z0, z1), [None if src is None else src.read(z0, z1) for src in lbls]

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read, *bounds[0])
        for i, (z0, z1) in enumerate(bounds):
            slab, labels = pending.result()
            if i + 1 < len(bounds):
                pending = pool.submit(read, *bounds[i + 1])
            yield z0, z1, slab, labels
