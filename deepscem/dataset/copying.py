"""Save-as: a compact copy of a dataset file (removed samples' space is not copied), optionally in
the original DeepSCEM's layout (float32 [0, 1] images, contiguous, uncompressed)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from deepscem import progress as prog
from deepscem.dataset.format import layer_options, require_space, write_mask_slab
from deepscem.dataset.layers import ANNOTATED
from deepscem.dataset.ops import os_errors, slabs
from deepscem.dataset.store import Dataset
from deepscem.errors import DatasetError
from deepscem.outputs import atomic_path, check_output


def save_as(src, dst, *, original: bool = False, overwrite: bool = False,
            progress=None, cancel=None) -> Path:
    """Write a compact copy of dataset ``src`` to ``dst`` (removed samples' space is not copied).

    ``original=True`` writes what the original DeepSCEM wrote: images float32 min-max normalised
    to [0, 1] over the whole volume (computed in float64, then cast), every layer contiguous and
    uncompressed, no ``norm_*`` attrs, no ``annotated`` layer (the original would treat every
    voxel as labelled anyway). A constant image becomes zeros, not the original's NaN.
    The copy is written to a temporary file and moved into place, so ``dst`` is never half-written.
    """
    src, dst = Path(src), Path(dst)
    check_output(dst, inputs={"the dataset being saved": src}, overwrite=overwrite,
                 what="copy", error=DatasetError)
    require_space(dst, src.stat().st_size if src.is_file() else 0, f"the copy {dst.name}")
    with Dataset.open(src) as ds, os_errors(f"saving {dst}"), atomic_path(dst) as tmp:
        with h5py.File(tmp, "w") as out:
            for key, value in ds.file.attrs.items():
                out.attrs[key] = value
            total = sum(s.shape[0] * len(_copied_layers(s, original)) for s in ds)
            done = 0
            for sample in ds:
                done = _copy_sample(sample, out, original, done, total, progress, cancel)
        prog.check(cancel)  # the last safe point: interrupted here, OUT is not replaced
    return dst


def _copy_sample(sample, out: h5py.File, original: bool, done: int, total: int, progress, cancel) -> int:
    group = out.create_group(sample.name)
    for key, value in sample.group.attrs.items():
        group.attrs[key] = value
    group.attrs["shape"] = np.asarray(sample.shape, np.int64)
    for layer in _copied_layers(sample, original):
        src = sample.layer(layer)
        dtype = np.dtype(np.float32) if (original and layer == "image") else src.dtype
        options = {} if original else layer_options(sample.shape, dtype, layer)
        dst = group.create_dataset(layer, shape=sample.shape, dtype=dtype, **options)
        if not original:
            for key, value in src.attrs.items():
                dst.attrs[key] = value
            if layer == "image" and "norm_min" not in dst.attrs:
                dst.attrs["norm_min"], dst.attrs["norm_max"] = sample.image_range
        lo, hi = sample.image_range if layer == "image" else (0.0, 1.0)
        for a, b in slabs(sample.shape, max(4, src.dtype.itemsize)):
            prog.check(cancel)
            data = src[a:b]
            if original and layer == "image":
                data = ((data.astype(np.float64) - lo) / (hi - lo) if hi > lo
                        else np.zeros(data.shape)).astype(np.float32)
            write_mask_slab(dst, a, data)
            done += b - a
            prog.emit(progress, done, total, "slices", "saving")
    return done


def _copied_layers(sample, original: bool) -> list[str]:
    # The original does not know partial labels: it would take every voxel as labelled.
    return [n for n in sample.layer_names() if not (original and n == ANNOTATED)]
