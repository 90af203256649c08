"""Dataset operations beyond add/remove: crop, export to TIFF, distance transform.

Each streams slab by slab (Z slabs of ~32 MB) and checks the cancel token once per slab, so
memory stays bounded by the slab size; the exception is the whole-sample distance transform
(see :func:`distance_transform`). Reached through :class:`deepscem.dataset.Dataset` methods
(save-as lives in :mod:`deepscem.dataset.copying`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from deepscem import progress as prog
from deepscem.dataset.format import (
    layer_options,
    require_space,
    slab_depth,
    validate_name,
    write_mask_slab,
)
from deepscem.dataset.layers import label_name
from deepscem.dataset.pending import (
    discard,
    failure_reason,
    hdf5_failure,
    mark_write_failed,
    pending_name,
)
from deepscem.errors import DatasetError
from deepscem.outputs import atomic_path, check_output


@contextmanager
def os_errors(what: str):
    """Turn a file-system failure (disk full, permission denied...) into a one-line error."""
    try:
        yield
    except (OSError, RuntimeError) as err:
        if hdf5_failure(err):
            mark_write_failed()  # HDF5 cannot be trusted to close this file cleanly any more
        raise DatasetError(f"{what} failed ({failure_reason(err)}); check the free space and "
                           "permissions there") from None


def slabs(shape, itemsize: int):
    depth = slab_depth(shape, itemsize)
    for z0 in range(0, shape[0], depth):
        yield z0, min(z0 + depth, shape[0])


def _check_range(what: str, value, size: int) -> tuple[int, int]:
    try:
        start, stop = (int(v) for v in value)
    except (TypeError, ValueError):
        raise DatasetError(f"crop {what} range must be two whole numbers START STOP, got {value!r}") \
            from None
    if not 0 <= start < stop <= size:
        raise DatasetError(f"crop {what} range {start}..{stop} is not inside the sample (0..{size}); "
                           f"give 0 <= START < STOP <= {size}")
    return start, stop


def crop_sample(ds, name: str, z, y, x, *, new_name: str | None = None,
                progress=None, cancel=None):
    """Crop sample ``name`` to ``[z0, z1) x [y0, y1) x [x0, x1)`` (voxels, stop excluded).

    Every layer is cropped. ``new_name`` keeps the original and adds the crop as a new sample;
    without it the sample is replaced, through a temporary group so a failure or cancel leaves
    the dataset as it was. An image without ``norm_min``/``norm_max`` (original files) gets the
    source's volume-wide range, so the crop keeps the same contrast.
    """
    ds._require_writable()
    sample = ds.sample(name)
    ranges = [_check_range(a, v, s) for a, v, s in zip("zyx", (z, y, x), sample.shape)]
    if new_name is not None:
        ds._check_new_name(new_name)
    # Written under a hidden name, flushed, then swapped in (deepscem.dataset.pending): a killed
    # run leaves the dataset as it was (plus a hidden leftover the next writer removes).
    target = pending_name("crop", new_name or name)
    shape = tuple(b - a for a, b in ranges)
    (z0, _), (y0, y1), (x0, x1) = ranges
    layers = sample.layer_names()
    require_space(ds.path, int(np.prod(shape)) * sum(sample.layer(n).dtype.itemsize for n in layers),
                  f"the crop of {name!r}")
    group = ds.file.create_group(target)
    try:
        group.attrs["shape"] = np.asarray(shape, np.int64)
        if sample.voxel_size is not None:
            group.attrs["voxel_size"] = np.asarray(sample.voxel_size, np.float64)
        done, total = 0, shape[0] * len(layers)
        for layer in layers:
            src = sample.layer(layer)
            out = group.create_dataset(layer, shape=shape, dtype=src.dtype, fillvalue=src.fillvalue,
                                       **layer_options(shape, src.dtype, layer))
            for key, value in src.attrs.items():
                out.attrs[key] = value
            if layer == "image" and "norm_min" not in out.attrs:
                out.attrs["norm_min"], out.attrs["norm_max"] = sample.image_range
            for a, b in slabs(shape, src.dtype.itemsize):
                prog.check(cancel)
                write_mask_slab(out, a, src[z0 + a:z0 + b, y0:y1, x0:x1])
                done += b - a
                prog.emit(progress, done, total, "slices", "cropping")
        prog.check(cancel)
        ds.file.flush()
        _swap_in(ds.file, target, new_name or name, replace=new_name is None)
    except BaseException as err:
        discard(ds.file, target, err)
        if isinstance(err, (OSError, RuntimeError)):
            raise DatasetError(f"{ds.path}: cropping {name!r} failed ({failure_reason(err)}); the "
                               "dataset was left as it was") from err
        raise
    return ds.sample(new_name or name)


def _swap_in(group, hidden: str, name: str, *, replace: bool, old_kind: str = "old") -> None:
    """Move the finished ``hidden`` object to ``name``; with ``replace`` the original is first set
    aside under a hidden name (restored by pending.recover if the run dies in between) and
    deleted once the new one is in place."""
    if replace and name in group:
        old = pending_name(old_kind, name)
        group.move(name, old)
        group.move(hidden, name)
        group.file.flush()
        del group[old]
    else:
        group.move(hidden, name)
    group.file.flush()



def export_sample(ds, name: str, folder, *, layers: Sequence[str] | None = None,
                  overwrite: bool = False, progress=None, cancel=None) -> list[Path]:
    """Write layers of sample ``name`` as multi-page TIFFs ``<folder>/<sample>_<layer>.tif``.

    Values are written as stored: the image in its dtype (the original's float32 [0, 1]),
    labels uint8 {0, 1} (zlib-compressed), predictions float32 or uint8. Written page by page.
    """
    import tifffile

    sample = ds.sample(name)
    layers = list(layers) if layers else sample.layer_names()
    for layer in layers:
        sample.layer(layer)  # a clear error for an unknown layer, before writing anything
    folder = Path(folder)
    with os_errors(f"exporting to {folder}"):
        folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}_{layer}.tif" for layer in layers]
    for path in paths:
        check_output(path, inputs={"the dataset": ds.path}, overwrite=overwrite, what="TIFF file",
                     error=DatasetError)
    total, done = sample.shape[0] * len(layers), 0
    for layer, path in zip(layers, paths):
        data = sample.layer(layer)

        def pages(data=data):
            nonlocal done
            for a, b in slabs(sample.shape, data.dtype.itemsize):
                prog.check(cancel)
                yield from data[a:b]
                done += b - a
                prog.emit(progress, done, total, "slices", "exporting")

        with os_errors(f"exporting {path}"), atomic_path(path) as tmp:
            tifffile.imwrite(tmp, data=pages(), shape=sample.shape, dtype=data.dtype,
                             photometric="minisblack",
                             bigtiff=data.size * data.dtype.itemsize > 2**31,
                             compression="zlib" if data.dtype == np.uint8 else None)
    return paths


def distance_transform(ds, name: str, label: int, *, scale: float = 5.0,
                       sampling: Sequence[float] | None = None, per_slice: bool = False,
                       overwrite: bool = False, progress=None, cancel=None) -> str:
    """Add ``label_XXXX_dt``: signed Euclidean distance to the label's boundary, tanh-normalised.

    Inside the object ``tanh(d / scale)`` with d the distance to the nearest background voxel,
    outside ``-tanh(d / scale)`` with d the distance to the nearest foreground voxel (as the
    original's Data menu; scale 5 by default); float32 in (-1, 1). ``sampling`` is the voxel
    size (Z, Y, X), e.g. (4, 1, 1) for slices 4x thicker than the pixel size; None uses the
    sample's ``voxel_size`` relative to its X size (50 x 5 x 5 nm -> (10, 1, 1)), so
    ``scale`` stays in X pixels, or (1, 1, 1) when unknown. No foreground
    gives -1 everywhere, all foreground +1.

    Memory: the whole-sample 3D transform (scipy.ndimage.distance_transform_edt) needs about
    30 bytes per voxel (a 165 x 1024 x 1024 label: ~5 GB). ``per_slice=True`` computes 2D
    transforms slice by slice (distances within each slice, what 2D models see) in ~30 bytes
    per slice voxel. Returns the new layer's name.
    """
    from scipy.ndimage import distance_transform_edt

    ds._require_writable()
    sample = ds.sample(name)
    sampling = _check_distance_options(ds, sample, label, scale, sampling)
    source = sample.layer(label_name(label))
    layer = label_name(label) + "_dt"
    validate_name(layer)
    if layer in sample.group and not overwrite:
        raise DatasetError(f"{ds.path}: sample {name!r} already has a layer {layer!r}; remove it "
                           "first or allow overwriting (--overwrite)")
    require_space(ds.path, int(np.prod(sample.shape)) * 4, f"the distance transform of {name!r}")
    # Written under a hidden name, flushed, then swapped in: a killed or failed run never leaves
    # a partial (or all-zero) layer under the real name (deepscem.dataset.pending).
    hidden = pending_name("dt", layer)
    out = sample.group.create_dataset(hidden, shape=sample.shape, dtype=np.float32,
                                      **layer_options(sample.shape, np.dtype(np.float32), layer))
    try:
        if per_slice:
            for z in range(sample.shape[0]):
                prog.check(cancel)
                out[z] = _signed_tanh(source[z], sampling[1:], scale, distance_transform_edt)
                prog.emit(progress, z + 1, sample.shape[0], "slices", "distance transform")
        else:
            prog.check(cancel)
            result = _signed_tanh(source[()], sampling, scale, distance_transform_edt)
            for a, b in slabs(sample.shape, 4):
                prog.check(cancel)
                out[a:b] = result[a:b]
                prog.emit(progress, b, sample.shape[0], "slices", "distance transform")
        prog.check(cancel)
        ds.file.flush()
        _swap_in(sample.group, hidden, layer, replace=True, old_kind="olddt")
    except BaseException as err:
        discard(sample.group, hidden, err)
        if isinstance(err, (OSError, RuntimeError)):
            raise DatasetError(f"{ds.path}: the distance transform of {name!r} failed "
                               f"({failure_reason(err)}); the dataset was left as it was") from err
        raise
    return layer


def _check_distance_options(ds, sample, label, scale: float, sampling) -> tuple[float, float, float]:
    """The (Z, Y, X) sampling to use; DatasetError for a bad label index, scale or sampling."""
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) \
            or not 0 <= label < ds.n_labels:
        raise DatasetError(f"label index must be 0..{ds.n_labels - 1}, got {label!r}")
    if not (math.isfinite(scale) and scale > 0):
        raise DatasetError(f"the distance scale must be a finite number > 0, got {scale}")
    if not sampling and sample.voxel_size:
        sampling = tuple(v / sample.voxel_size[2] for v in sample.voxel_size)
    sampling = tuple(float(v) for v in (sampling or (1.0, 1.0, 1.0)))
    if len(sampling) != 3 or not all(math.isfinite(v) and v > 0 for v in sampling):
        raise DatasetError(f"sampling is the voxel size Z Y X (three numbers > 0), got {sampling}")
    return sampling


def _signed_tanh(mask: np.ndarray, sampling, scale: float, edt) -> np.ndarray:
    """tanh(+d/scale) inside ``mask``, tanh(-d/scale) outside, float32."""
    inside = mask != 0
    if inside.all() or not inside.any():
        return np.full(mask.shape, 1.0 if inside.all() else -1.0, np.float32)
    result = np.tanh(edt(inside, sampling=sampling) / scale).astype(np.float32)
    outside = np.tanh(edt(~inside, sampling=sampling) / scale).astype(np.float32)
    np.subtract(result, outside, out=result)  # each voxel has exactly one of the two non-zero
    return result
