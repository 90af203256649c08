"""OME-Zarr (NGFF) images in and out, through ``zarr`` (https://ngff.openmicroscopy.org).

Reading: NGFF 0.4 (zarr v2, ``multiscales`` in ``.zattrs``) and 0.5 (zarr v3, under
``attributes.ome`` in ``zarr.json``), any scale level; axes t and c of size 1 are dropped,
a 2D (y, x) image becomes (1, Y, X). Voxel sizes come from the level's ``scale`` in the
axes' units, converted to nm.

Writing: NGFF 0.4 (zarr v2, ``/`` chunk keys, Blosc-LZ4), the version every viewer reads
(napari, Fiji/MoBIE, neuroglancer, webKnossos). An image group holds ``0``, ``1``...
(level n is 2**n smaller in Y and X, and in Z too when voxels are about isotropic) and
optionally ``labels/<name>``, NGFF label images (integer) with the ``image-label`` block.
Level 0 is created first and filled block by block (several processes may write distinct
chunks at once); :func:`build_pyramid` adds the smaller levels afterwards, slab by slab.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepscem.dataset.imageio import VolumeSource, _check_dtype
from deepscem.errors import InputFileError

NGFF_VERSION = "0.4"
UNIT_NM = {"nanometer": 1.0, "nm": 1.0, "micrometer": 1e3, "micron": 1e3, "um": 1e3,
           "angstrom": 0.1, "millimeter": 1e6, "picometer": 1e-3}
#: Stop adding pyramid levels once the largest Y/X size is at most this (a viewer's overview).
PYRAMID_MIN = 256
COLOURS = [(255, 64, 64), (64, 160, 255), (64, 220, 64), (255, 200, 0), (200, 64, 255),
           (0, 220, 220)]


def is_zarr(path: Path) -> bool:
    """True for a zarr group or array folder (v2 or v3)."""
    return any((path / name).is_file() for name in ("zarr.json", ".zattrs", ".zgroup", ".zarray"))


def multiscales(attrs: dict) -> list | None:
    """The ``multiscales`` list of a group's attributes, NGFF 0.5 (under ``ome``) or 0.4."""
    ome = attrs.get("ome")
    if isinstance(ome, dict) and "multiscales" in ome:
        return ome["multiscales"]
    return attrs.get("multiscales")


def open_image(path: str | os.PathLike) -> VolumeSource:
    """An OME-Zarr image (the group: level 0) or one level of it (``image.ome.zarr/2``) as a
    region reader of (Z, Y, X)."""
    import zarr

    path = Path(path)
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as err:  # noqa: BLE001  (zarr raises many types on damaged metadata)
        raise InputFileError(f"{path}: not a readable zarr folder ({err})") from None
    if isinstance(node, zarr.Array):
        parent = path.parent
        try:
            group = zarr.open_group(str(parent), mode="r")
            meta = multiscales(dict(group.attrs))
        except Exception:  # noqa: BLE001  (no readable parent: a bare array, no voxel size)
            meta = None
        return ZarrSource(node, str(path), *_level_axes(meta, path.name, node.ndim))
    meta = multiscales(dict(node.attrs))
    if not meta:
        raise InputFileError(f"{path}: a zarr group without OME-Zarr 'multiscales' metadata; give "
                             "an OME-Zarr image (or the path of an array inside it)")
    level = meta[0]["datasets"][0]["path"]
    return ZarrSource(node[level], f"{path}/{level}", *_level_axes(meta, level, node[level].ndim))


def _level_axes(meta: list | None, level: str, ndim: int) -> tuple[list[str], tuple | None]:
    """Axis names and the (Z, Y, X) voxel size in nm of dataset ``level`` (None if unknown)."""
    if not meta:
        return ["z", "y", "x"][-ndim:] if ndim <= 3 else ["?"] * (ndim - 3) + ["z", "y", "x"], None
    axes = meta[0].get("axes") or ["t", "c", "z", "y", "x"][-ndim:]
    names = [a["name"] if isinstance(a, dict) else str(a) for a in axes]
    units = [UNIT_NM.get(a.get("unit", ""), None) if isinstance(a, dict) else None for a in axes]
    scale = np.ones(len(names))
    for ds in meta[0]["datasets"]:
        if ds["path"] == level:
            scale = scale * _scale(ds.get("coordinateTransformations"), len(names))
    scale = scale * _scale(meta[0].get("coordinateTransformations"), len(names))
    sizes = []
    for axis in ("z", "y", "x"):
        if axis in names:
            i = names.index(axis)
            sizes.append(float(scale[i]) * (units[i] or 1.0) if units[i] else None)
        else:
            sizes.append(1.0)
    return names, (tuple(sizes) if all(s is not None for s in sizes) else None)


def _scale(transforms: list | None, n: int) -> np.ndarray:
    for t in transforms or []:
        if t.get("type") == "scale" and "scale" in t:
            return np.asarray(t["scale"], float)
    return np.ones(n)


class ZarrSource(VolumeSource):
    """One zarr array seen as (Z, Y, X): axes t/c of size 1 are indexed at 0; a missing z
    axis is a single slice."""

    def __init__(self, array: Any, name: str, axes: list[str], voxel_size: tuple | None) -> None:
        dtype = np.dtype(array.dtype)
        _check_dtype(name, dtype)
        shape = dict(zip(axes, array.shape))
        extra = {a: n for a, n in shape.items() if a not in ("z", "y", "x") and n > 1}
        if extra or "y" not in shape or "x" not in shape:
            what = ", ".join(f"{a}={n}" for a, n in extra.items()) or f"axes {axes}"
            raise InputFileError(f"{name}: DeepSCEM needs one grey (z, y, x) volume, this OME-Zarr "
                                 f"image has {what}; extract one channel and time point first")
        super().__init__(name, (shape.get("z", 1), shape["y"], shape["x"]), dtype)
        self.array, self.axes = array, axes
        self.voxel_size = voxel_size

    def read_region(self, region) -> np.ndarray:
        index = []
        for axis in self.axes:
            index.append(region["zyx".index(axis)] if axis in "zyx" else 0)
        data = np.asarray(self.array[tuple(index)])
        return data if "z" in self.axes else data[None][region[0]]


# -- writing -------------------------------------------------------------------------------------
def axes_metadata(voxel_size: Sequence[float] | None) -> tuple[list, list]:
    """NGFF axes (z, y, x; nanometres when the voxel size is known) and level-0 scale."""
    unit = {"unit": "nanometer"} if voxel_size else {}
    axes = [{"name": a, "type": "space", **unit} for a in "zyx"]
    return axes, [float(v) for v in (voxel_size or (1.0, 1.0, 1.0))]


def create_image(group: Any, name: str, shape: Sequence[int], dtype: Any, chunks: Sequence[int],
                 voxel_size: Sequence[float] | None, *, fill: Any = 0) -> Any:
    """Make ``group`` an NGFF image of one level ``0`` (shape (Z, Y, X)); returns that array."""
    array = _create_array(group, "0", shape, dtype, chunks, fill)
    write_multiscales(group, name, [tuple(shape)], voxel_size)
    return array


def _create_array(group: Any, path: str, shape, dtype, chunks, fill=0) -> Any:
    from numcodecs import Blosc

    return group.create_array(path, shape=tuple(int(s) for s in shape), dtype=np.dtype(dtype),
                              chunks=tuple(int(c) for c in chunks), fill_value=fill,
                              compressors=Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE),
                              chunk_key_encoding={"name": "v2", "separator": "/"},
                              overwrite=True)


def write_multiscales(group: Any, name: str, shapes: Sequence[tuple], voxel_size) -> None:
    """(Re)write the ``multiscales`` block for levels of ``shapes`` (level 0 first)."""
    axes, scale0 = axes_metadata(voxel_size)
    datasets = []
    for level, shape in enumerate(shapes):
        factor = [s0 / s for s0, s in zip(shapes[0], shape)]
        datasets.append({"path": str(level), "coordinateTransformations": [
            {"type": "scale", "scale": [float(v * round(f)) for v, f in zip(scale0, factor)]}]})
    group.attrs["multiscales"] = [{"version": NGFF_VERSION, "name": name, "axes": axes,
                                   "datasets": datasets, "type": "mean"}]


def add_label_image(root: Any, name: str, shape, dtype, chunks, voxel_size, colour: int = 0) -> Any:
    """A new NGFF label image ``labels/<name>`` (integer; 0 = background); returns level 0."""
    labels = root.require_group("labels")
    names = list(labels.attrs.get("labels", []))
    if name not in names:
        labels.attrs["labels"] = names + [name]
    image = labels.require_group(name)
    array = create_image(image, name, shape, dtype, chunks, voxel_size)
    image.attrs["image-label"] = {"version": NGFF_VERSION, "source": {"image": "../../"},
                                  "colors": [{"label-value": 1,
                                              "rgba": [*COLOURS[colour % len(COLOURS)], 255]}]}
    return array


def pyramid_shapes(shape: Sequence[int], voxel_size: Sequence[float] | None) -> list[tuple]:
    """Level shapes: Y and X halve each level (Z too when its voxels are no more than twice
    as long as in Y), down to :data:`PYRAMID_MIN`. (100, 2048, 2048) at 10x5x5 nm ->
    (100, 2048, 2048), (50, 1024, 1024), (25, 512, 512), (13, 256, 256)."""
    shapes = [tuple(int(s) for s in shape)]
    size = list(voxel_size or (1.0, 1.0, 1.0))
    while max(shapes[-1][1:]) > PYRAMID_MIN:
        z, y, x = shapes[-1]
        halve_z = z > 1 and size[0] <= 2 * size[1]
        shapes.append(((z + 1) // 2 if halve_z else z, (y + 1) // 2, (x + 1) // 2))
        size = [size[0] * (2 if halve_z else 1), size[1] * 2, size[2] * 2]
    return shapes


def build_pyramid(group: Any, name: str, voxel_size, *, labels: bool = False,
                  progress=None, cancel=None) -> None:
    """Add levels 1, 2... to an image ``group`` whose level ``0`` is complete: each level is
    the previous one reduced 2x (mean for grey values, nearest for labels), slab by slab."""
    from deepscem import progress as prog

    base = group["0"]
    shapes = pyramid_shapes(base.shape, voxel_size)
    for level in range(1, len(shapes)):
        prog.check(cancel)
        src = group[str(level - 1)]
        fz = 2 if shapes[level][0] != shapes[level - 1][0] else 1
        chunks = tuple(min(c, s) for c, s in zip(base.chunks, shapes[level]))
        dst = _create_array(group, str(level), shapes[level], base.dtype, chunks)
        depth = max(1, chunks[0]) * fz  # one chunk depth of the new level per slab
        for z0 in range(0, src.shape[0], depth):
            slab = np.asarray(src[z0:z0 + depth])
            small = _reduce(slab, fz, labels)
            dst[z0 // fz:z0 // fz + len(small)] = small.astype(base.dtype, copy=False)
        prog.emit(progress, level, len(shapes) - 1, "levels", "pyramid")
    write_multiscales(group, name, shapes, voxel_size)


def _reduce(slab: np.ndarray, fz: int, labels: bool) -> np.ndarray:
    """Halve Y and X (and Z when ``fz`` is 2): nearest for labels, mean for grey values;
    an odd edge keeps its last row (the mean of 1)."""
    if labels:
        return slab[::fz, ::2, ::2]
    pad = [(0, (-n) % f) for n, f in zip(slab.shape, (fz, 2, 2))]
    data = np.pad(slab.astype(np.float32), pad, mode="edge")
    z, y, x = data.shape
    out = data.reshape(z // fz, fz, y // 2, 2, x // 2, 2).mean(axis=(1, 3, 5))
    if np.issubdtype(slab.dtype, np.integer):
        out = np.rint(out)
    return out
