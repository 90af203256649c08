"""Where a block-wise prediction is written while it runs, and what it becomes at the end.

Every run writes into a *work store*: an OME-Zarr image ``.<OUTPUT>.partial.zarr`` beside the
output (root image: a copy of the input, native dtype; ``labels/<name>``: uint8 {0, 1} masks
with a threshold; ``predictions/<name>``: float32 maps without one), chunked so that each
block owns whole chunks. ``.deepscem/job.json`` records what the run is (input, model, options,
intensity range, block plan) and ``.deepscem/done/<block>`` marks a block whose chunks are
all written (created by rename after the writes: a killed worker never leaves a marker for a
half-written block). ``--resume`` reopens the store and skips marked blocks.

At the end (:func:`finish`) the store gets its pyramid and is renamed to the ``.ome.zarr``
output, or is streamed into a DeepSCEM ``.hdf5`` prediction dataset or a BigTIFF, then
deleted. Until then nothing exists under the output's name.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepscem import progress as prog
from deepscem.dataset import ome_zarr
from deepscem.errors import DatasetError

OUTPUT_SUFFIXES = (".ome.zarr", ".zarr", ".hdf5", ".h5", ".tif", ".tiff")
META = ".deepscem"


def output_format(out: Path) -> str:
    """"zarr", "hdf5" or "tif" from the output's suffix (:class:`DatasetError` otherwise)."""
    name = out.name.lower()
    for suffix, kind in ((".zarr", "zarr"), (".hdf5", "hdf5"), (".h5", "hdf5"), (".tif", "tif"),
                         (".tiff", "tif")):
        if name.endswith(suffix):
            return kind
    raise DatasetError(f"{out}: the output's suffix picks its format: .ome.zarr (OME-Zarr image + "
                       "labels), .hdf5 (DeepSCEM prediction dataset) or .tif (BigTIFF)")


def work_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.partial.zarr")


def layer_group(threshold: float | None) -> str:
    """``labels`` for thresholded masks (NGFF labels), ``predictions`` for float maps."""
    return "predictions" if threshold is None else "labels"


def create(path: Path, job: dict[str, Any], names: Sequence[str], dtype: Any,
           image_dtype: Any, voxel_size) -> None:
    """A new work store for ``job`` (JSON-able; holds ``shape``, ``chunks``, ``threshold``)."""
    import zarr

    if path.exists():
        shutil.rmtree(path)
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    shape, chunks = job["shape"], job["chunks"]
    ome_zarr.create_image(root, job["name"], shape, image_dtype, chunks, voxel_size)
    group = layer_group(job["threshold"])
    for i, name in enumerate(names):
        if group == "labels":
            ome_zarr.add_label_image(root, name, shape, dtype, chunks, voxel_size, colour=i)
        else:
            sub = root.require_group("predictions").require_group(name)
            ome_zarr.create_image(sub, name, shape, dtype, chunks, voxel_size)
    root.attrs["deepscem"] = {"layers": group, "names": list(names)}
    (path / META / "done").mkdir(parents=True)
    _write_json(path / META / "job.json", job)


def read_job(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / META / "job.json").read_text())
    except (OSError, ValueError):
        return None


def done_blocks(path: Path) -> set[int]:
    """Indices of the blocks whose chunks are all written."""
    folder = path / META / "done"
    return {int(p.name) for p in folder.iterdir() if p.name.isdigit()} if folder.is_dir() else set()


def write_block(path: Path, job: dict[str, Any], index: int, core: tuple[slice, ...],
                image: np.ndarray, outputs: np.ndarray) -> None:
    """Write one block's image copy and outputs ((dz, dy, dx, C) float32; thresholded here
    for masks) into its chunks, then mark it done."""
    from deepscem.evaluation.metrics import binarize

    image_array, arrays = _arrays(path, job)
    image_array[core] = image
    for c, array in enumerate(arrays):
        values = outputs[..., c]
        if job["threshold"] is not None:
            values = binarize(values, float(job["threshold"])).astype(np.uint8)
        array[core] = values
    marker = path / META / "done" / str(index)
    tmp = marker.with_name(f".{index}.{os.getpid()}")
    tmp.write_text("")
    os.replace(tmp, marker)


_OPEN: dict[str, tuple] = {}  # per process: store path + run -> (image, output arrays)


def _arrays(path: Path, job: dict[str, Any]) -> tuple[Any, list]:
    """The store's level-0 arrays, opened once per process (opening reads metadata files)."""
    import zarr

    key = f"{path}#{job['run_id']}"  # a new run may recreate the store under the same path
    if key not in _OPEN:
        root = zarr.open_group(str(path), mode="r+")
        group = layer_group(job["threshold"])
        _OPEN.clear()  # one store at a time: a new run in this process may reuse the path
        _OPEN[key] = (root["0"], [root[group][name]["0"] for name in job["names"]])
    return _OPEN[key]


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def finish(path: Path, out: Path, job: dict[str, Any], voxel_size, *, min_size: int = 0,
           progress: prog.ProgressCallback | None = None,
           cancel: prog.CancelToken | None = None) -> dict[str, Any]:
    """Post-process the complete work store and turn it into ``out``; returns per-layer
    small-object removal counts (empty without ``min_size``)."""
    import zarr

    root = zarr.open_group(str(path), mode="r+")
    group = layer_group(job["threshold"])
    removed = _remove_small(root, group, job["names"], min_size, progress, cancel)
    kind = output_format(out)
    if kind == "zarr":
        ome_zarr.build_pyramid(root, job["name"], voxel_size, progress=progress, cancel=cancel)
        for name in job["names"]:
            ome_zarr.build_pyramid(root[group][name], name, voxel_size, labels=group == "labels",
                                   progress=progress, cancel=cancel)
        root.attrs["deepscem"] = {**dict(root.attrs["deepscem"]), "min_size": int(min_size),
                                  "removed": removed, "value_range": job["value_range"],
                                  "input": job["input"], "model": job["model"],
                                  "sample": job["sample"]}
        shutil.rmtree(path / META)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(path, out)
        return removed
    from deepscem.inference import export_formats

    if kind == "hdf5":
        export_formats.to_dataset(root, group, job, out, voxel_size, progress=progress,
                                  cancel=cancel)
    else:
        export_formats.to_tiff(root, group, job, out, progress=progress, cancel=cancel)
    shutil.rmtree(path)
    return removed


def _remove_small(root: Any, group: str, names: Sequence[str], min_size: int, progress,
                  cancel) -> dict[str, Any]:
    if min_size <= 1 or group != "labels":
        return {}
    from deepscem.postprocessing.small_objects import remove_small_objects

    removed = {}
    for name in names:
        def report(p: prog.Progress, name: str = name) -> None:
            prog.emit(progress, p.done, p.total, "slices", f"remove small objects ({name})")

        r = remove_small_objects(root["labels"][name]["0"], min_size, progress=report,
                                 cancel=cancel)
        removed[name] = {"objects": r.objects, "voxels": r.voxels, "exact": r.exact}
    return removed
