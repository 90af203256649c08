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
from deepscem.dataset import voxel_size as voxel_attr
from deepscem.dataset.format import (
    BLANK,
    layer_options,
    require_space,
    slab_depth,
    stored_image_dtype,
    write_mask_slab,
)
from deepscem.dataset.layers import ANNOTATED, instance_name, label_name
from deepscem.dataset.pending import discard, failure_reason, pending_name
from deepscem.errors import DatasetError, InputFileError


def add_sample(ds, name: str, image, labels, *, voxel_size=None, instances=(), progress=None,
               cancel=None):
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
    instances = [instances] if isinstance(instances, (str, os.PathLike, np.ndarray)) \
        else list(instances or ())
    if len(instances) > ds.n_labels:
        raise DatasetError(f"{ds.path} has {ds.n_labels} label(s): give at most that many "
                           f"instance images, got {len(instances)}")
    if voxel_size is not None:
        voxel_size = voxel_attr.check(voxel_size)
    elif isinstance(image, (str, os.PathLike)) and str(image).lower().endswith((".tif", ".tiff")):
        voxel_size = voxel_attr.from_tiff(image)
    with ExitStack() as stack:
        img = stack.enter_context(_source(image, "image"))
        lbls = [None if _is_blank(lbl) else stack.enter_context(_source(lbl, f"label {i}"))
                for i, lbl in enumerate(labels)]
        insts = [None if _is_blank(v) else stack.enter_context(_source(v, f"instances {i}"))
                 for i, v in enumerate(instances)]
        for what, srcs in (("label", lbls), ("instance", insts)):
            for src in srcs:
                if src is not None and src.shape != img.shape:
                    raise InputFileError(f"{src.path}: {what} shape {src.shape} (Z, Y, X) differs "
                                         f"from the image's {img.shape} ({img.path})")
        for src in insts:
            if src is not None and src.dtype.kind not in "ub" and src.dtype.kind != "i":
                raise InputFileError(f"{src.path}: instance images hold whole-number object ids "
                                     f"(0 = background), not {src.dtype} values")
        try:
            lo, hi = _scan(img, lbls, progress, cancel, insts)
        except OSError as err:  # a file vanished or cannot be read any more
            raise InputFileError(f"reading the inputs failed ({err.strerror or err}); nothing "
                                 "was written") from err
        sample = _write(ds, name, img, lbls, lo, hi, progress, cancel, insts,
                        unannotated=unannotated)
        if voxel_size is not None:
            voxel_attr.write(sample.group, voxel_size)
        return sample


def _write(ds, name: str, img, lbls, lo: float, hi: float, progress, cancel, insts=(), *,
           unannotated: bool = False):
    """Second pass: create the group and write slab by slab; remove it again on any error."""

    shape = img.shape
    depth = slab_depth(shape, max(img.dtype.itemsize, 1))
    voxels = int(np.prod(shape))
    require_space(ds.path, voxels * (stored_image_dtype(img.dtype).itemsize + len(lbls)),
                  f"sample {name!r}")
    # Written under a hidden name and renamed when complete (see deepscem.dataset.pending).
    hidden = pending_name("add", name)
    group = ds.file.create_group(hidden)
    try:
        group.attrs["shape"] = np.asarray(shape, np.int64)
        if getattr(img, "voxel_size", None):  # from OME-Zarr / MRC / HDF5 metadata (nm)
            group.attrs["voxel_size"] = np.asarray(img.voxel_size, np.float64)
        dtype = stored_image_dtype(img.dtype)
        image = group.create_dataset("image", shape=shape, dtype=dtype,
                                     **layer_options(shape, dtype, "image"))
        image.attrs["norm_min"], image.attrs["norm_max"] = lo, hi
        layers = [group.create_dataset(label_name(i), shape=shape, dtype=np.uint8, fillvalue=0,
                                       **layer_options(shape, np.dtype(np.uint8), label_name(i)))
                  for i in range(len(lbls))]
        ids = [None if src is None else group.create_dataset(
            instance_name(i), shape=shape, dtype=np.uint32, fillvalue=0,
            **layer_options(shape, np.dtype(np.uint32), instance_name(i)))
            for i, src in enumerate(insts)]
        if unannotated:  # all zero: no chunk is written
            group.create_dataset(ANNOTATED, shape=shape, dtype=np.uint8, fillvalue=0,
                                 **layer_options(shape, np.dtype(np.uint8), ANNOTATED))
        with closing(_read_slabs(img, list(lbls) + list(insts), depth)) as slabs:
            for z0, z1, slab, label_slabs in slabs:
                prog.check(cancel)
                image[z0:z1] = slab.astype(dtype, copy=False)
                for label, out in zip(label_slabs[:len(lbls)], layers):
                    if label is not None:  # a blank label stays unallocated: reads as fill 0
                        write_mask_slab(out, z0, imageio.to_label(label))
                for values, out in zip(label_slabs[len(lbls):], ids):
                    if values is not None:
                        out[z0:z1] = values.astype(np.uint32)
                prog.emit(progress, z1, shape[0], "slices", "writing")
        prog.check(cancel)
        ds.file.flush()
        ds.file.move(hidden, name)
        ds.file.flush()
    except BaseException as err:
        discard(ds.file, hidden, err)
        if isinstance(err, (OSError, RuntimeError)):  # disk full, a file vanished...: one line
            raise DatasetError(f"{ds.path}: adding sample {name!r} failed ({failure_reason(err)}); "
                               "the dataset was left as it was") from err
        raise
    return ds.sample(name)



def _is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in BLANK)


def _source(value, what: str) -> imageio.VolumeSource:
    if isinstance(value, np.ndarray):
        return imageio.ArraySource(imageio.image_array(value, f"{what} array"), f"{what} array")
    if isinstance(value, (str, os.PathLike)):
        from deepscem.dataset.volumes import open_volume  # any form: slices, OME-Zarr, h5:/path...

        return open_volume(value)
    raise InputFileError(f"{what}: expected a file path or an array, got {type(value).__name__}")


def _scan(img, lbls, progress, cancel, insts=()) -> tuple[float, float]:
    """First pass: the image's volume-wide (min, max) and every label's values, slab by slab;
    instance ids must lie in 0 .. 2**32 - 1."""
    checks = [None if s is None else imageio.LabelValues(s.path) for s in lbls]
    depth = slab_depth(img.shape, img.dtype.itemsize)
    lo, hi = np.inf, -np.inf
    with closing(_read_slabs(img, list(lbls) + list(insts), depth)) as slabs:
        for _, z1, slab, label_slabs in slabs:
            for values, src in zip(label_slabs[len(lbls):], insts):
                if values is not None and values.size and (
                        values.min() < 0 or int(values.max()) >= 2**32):
                    raise InputFileError(f"{src.path}: object ids must lie between 0 (background) "
                                         f"and {2**32 - 1}")
            label_slabs = label_slabs[:len(lbls)]
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
