"""A dataset sample as an OME-Zarr image (``dataset export ... --format ome-zarr``).

``<folder>/<sample>.ome.zarr`` holds the image at its root (native dtype, multiscale) and
every mask as an NGFF label image under ``labels/``: ``label_0000``... (uint8 {0, 1}),
thresholded ``prediction_0000``... (uint8) and ``instance_0000``... (object ids), so napari
and the ome-zarr tools overlay them on the image. Float layers (probability maps, distance
maps) are not labels in NGFF: they go to ``predictions/<layer>``, each an NGFF image of its
own. The sample's ``voxel_size`` (nm) becomes the scale. Streamed slab by slab, written to a
hidden folder renamed at the end.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deepscem import progress as prog
from deepscem.dataset import ome_zarr
from deepscem.dataset.layers import kind_of
from deepscem.errors import DatasetError

SLAB_BYTES = 64 * 2**20


def export_sample(ds, name: str, folder: str | os.PathLike, *, layers: Sequence[str] | None = None,
                  overwrite: bool = False, progress: prog.ProgressCallback | None = None,
                  cancel: prog.CancelToken | None = None) -> Path:
    """Write sample ``name`` of the open dataset ``ds`` as ``<folder>/<name>.ome.zarr``;
    returns its path. ``layers``: which layers (default all; the image is always written)."""
    import zarr

    sample = ds.sample(name)
    wanted = [n for n in (layers or sample.layer_names()) if n != "image"]
    for layer in wanted:
        sample.layer(layer)  # a clear error for an unknown layer before anything is written
    out = Path(folder) / f"{name}.ome.zarr"
    if out.exists() and not overwrite:
        raise DatasetError(f"{out} already exists; choose another folder or allow overwriting")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    voxel = sample.group.attrs.get("voxel_size")
    voxel = tuple(float(v) for v in voxel) if voxel is not None else None
    try:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        steps = [("image", root, "image")] + [(layer, root, _place(sample.layer(layer)))
                                              for layer in wanted]
        for i, (layer, group, place) in enumerate(steps):
            prog.check(cancel)
            _copy_layer(sample, layer, group, place, voxel, i)
            prog.emit(progress, i + 1, len(steps), "layers", "export ome-zarr")
        root.attrs["deepscem"] = {"dataset": str(ds.path), "sample": name,
                                  "image_range": [float(v) for v in sample.image_range]}
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _place(data) -> str:
    """Where a layer goes: ``labels`` for integer masks and ids, ``predictions`` for floats."""
    return "labels" if np.issubdtype(data.dtype, np.integer) else "predictions"


def _copy_layer(sample, layer: str, root, place: str, voxel, colour: int) -> None:
    data = sample.layer(layer)
    shape = tuple(sample.shape)
    chunks = tuple(min(s, c) for s, c in zip(shape, (8, 256, 256)))
    if place == "image":
        target, group = ome_zarr.create_image(root, sample.name, shape, data.dtype, chunks, voxel), root
    elif place == "labels":
        dtype = data.dtype if kind_of(layer) == "instance" else np.uint8
        target = ome_zarr.add_label_image(root, layer, shape, dtype, chunks, voxel, colour)
        group = root["labels"][layer]
    else:
        group = root.require_group("predictions").require_group(layer)
        target = ome_zarr.create_image(group, layer, shape, data.dtype, chunks, voxel)
    depth = max(1, SLAB_BYTES // max(1, shape[1] * shape[2] * data.dtype.itemsize))
    depth = max(chunks[0], depth // chunks[0] * chunks[0])
    for z0 in range(0, shape[0], depth):
        target[z0:z0 + depth] = data[z0:z0 + depth]
    ome_zarr.build_pyramid(group, layer if place != "image" else sample.name, voxel,
                           labels=place == "labels")
