"""A finished work store (see :mod:`deepscem.inference.prediction_store`) streamed into the
DeepSCEM ``.hdf5`` prediction layout or a BigTIFF, slab by slab (memory: one slab of about
64 MB), through a temporary file renamed at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from deepscem import progress as prog

SLAB_BYTES = 64 * 2**20


def _slabs(shape, itemsize: int) -> Iterator[tuple[int, int]]:
    depth = max(1, SLAB_BYTES // max(1, shape[1] * shape[2] * itemsize))
    for z0 in range(0, shape[0], depth):
        yield z0, min(shape[0], z0 + depth)


def to_dataset(root: Any, group: str, job: dict, out: Path, voxel_size, *,
               progress: prog.ProgressCallback | None = None,
               cancel: prog.CancelToken | None = None) -> None:
    """Write ``out``: a prediction dataset (DESIGN.md §3) of one sample named after the input,
    its ``image`` (native dtype with the volume-wide ``norm_min``/``norm_max``) and
    ``prediction_0000``... one per model output."""
    from deepscem.dataset import Dataset
    from deepscem.dataset.format import layer_options
    from deepscem.dataset.layers import is_prediction, output_layers

    shape = tuple(job["shape"])
    names = job["names"]
    # a boundary model's second half is written as prediction_XXXX_boundary (instances)
    layer_names = output_layers(len(names), job.get("targets", "label"))
    n_labels = sum(1 for n in layer_names if is_prediction(n))
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        with Dataset.create(tmp, f"{job['name']} prediction", n_labels, overwrite=True) as ds:
            ds.set_label_aliases(names[:n_labels])
            sample = ds.add_empty_sample(job["sample"], shape)
            if voxel_size:
                sample.group.attrs["voxel_size"] = np.asarray(voxel_size, np.float64)
            image = sample.group.create_dataset("image", shape=shape, dtype=root["0"].dtype,
                                                **layer_options(shape, root["0"].dtype, "image"))
            image.attrs["norm_min"], image.attrs["norm_max"] = job["value_range"]
            layers = [(root["0"], image)]
            for i, name in enumerate(names):
                src = root[group][name]["0"]
                layers.append((src, sample.create_layer(layer_names[i], src.dtype)))
            total = len(layers) * shape[0]
            for n, (src, dst) in enumerate(layers):
                for z0, z1 in _slabs(shape, src.dtype.itemsize):
                    prog.check(cancel)
                    dst[z0:z1] = src[z0:z1]
                    prog.emit(progress, n * shape[0] + z1, total, "slices", "write hdf5")
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def to_tiff(root: Any, group: str, job: dict, out: Path, *,
            progress: prog.ProgressCallback | None = None,
            cancel: prog.CancelToken | None = None) -> None:
    """Write ``out``: the model outputs as one BigTIFF, (Z, Y, X) for one output, OME-TIFF
    (Z, C, Y, X) for several; page by page (slices of any size fit)."""
    import tifffile

    shape = tuple(job["shape"])
    arrays = [root[group][name]["0"] for name in job["names"]]
    dtype = arrays[0].dtype
    full = (shape[0], len(arrays), *shape[1:]) if len(arrays) > 1 else shape

    def pages() -> Iterator[np.ndarray]:
        for z0, z1 in _slabs(shape, dtype.itemsize * len(arrays)):
            prog.check(cancel)
            slabs = [np.asarray(a[z0:z1]) for a in arrays]
            for z in range(z1 - z0):
                for slab in slabs:
                    yield slab[z]
            prog.emit(progress, z1, shape[0], "slices", "write tiff")

    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        metadata = {"axes": "ZCYX" if len(arrays) > 1 else "ZYX"}
        with tifffile.TiffWriter(tmp, bigtiff=True, ome=len(arrays) > 1) as tif:
            tif.write(pages(), shape=full, dtype=dtype, photometric="minisblack",
                      metadata=metadata)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
