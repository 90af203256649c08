"""Voxel size: the physical size of one voxel, (Z, Y, X) in nanometres.

Stored as the sample attribute ``voxel_size`` (three positive floats, nm). Absent means
unknown: measurements then report voxels instead of nm³, and distance maps treat voxels as
cubes. Read from TIFF metadata when a file has it:

* OME-TIFF ``PhysicalSizeZ/Y/X`` (with ``PhysicalSize?Unit``, default µm);
* ImageJ hyperstacks: ``spacing`` (Z step) and ``unit`` in the ImageJ description, X/Y from
  the TIFF ``XResolution``/``YResolution`` tags (pixels per unit);
* plain TIFF resolution tags with a centimetre/inch unit (X/Y only; Z then unknown).

Worked example: Lucchi++ is 5 x 5 x 5 nm; an ImageJ stack saved with unit "micron",
spacing 0.05 and 200 pixels per micron reads as (50, 5, 5) nm.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from deepscem.errors import DatasetError

ATTR = "voxel_size"

#: Nanometres per unit, for the unit spellings ImageJ and OME write.
_NM_PER_UNIT = {
    "nm": 1.0, "nanometer": 1.0, "nanometre": 1.0, "nanometers": 1.0,
    "um": 1e3, "µm": 1e3, "\u03bcm": 1e3, "micron": 1e3, "microns": 1e3, "micrometer": 1e3,
    "micrometre": 1e3, "mm": 1e6, "millimeter": 1e6, "cm": 1e7, "m": 1e9, "meter": 1e9,
    "a": 0.1, "å": 0.1, "angstrom": 0.1, "pm": 1e-3,
}


def check(values: Sequence[float] | None, where: str = "voxel size") -> tuple[float, float, float]:
    """Three positive finite numbers (Z, Y, X) in nm, as floats; DatasetError otherwise."""
    try:
        out = tuple(float(v) for v in values)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: give three numbers Z Y X in nm, got {values!r}") from None
    if len(out) != 3 or not all(math.isfinite(v) and v > 0 for v in out):
        raise DatasetError(f"{where}: give three positive numbers Z Y X in nm (e.g. 50 5 5), "
                           f"got {values!r}")
    return out  # type: ignore[return-value]


def read(group) -> tuple[float, float, float] | None:
    """The ``voxel_size`` attribute of a sample group (nm, Z Y X), or None when unknown."""
    raw = group.attrs.get(ATTR)
    if raw is None:
        return None
    try:
        return check(list(raw))
    except DatasetError:
        return None  # a malformed attribute is treated as unknown, not as a broken file


def write(group, values: Sequence[float] | None) -> None:
    """Set (or with None remove) the ``voxel_size`` attribute of a sample group."""
    import numpy as np

    if values is None:
        if ATTR in group.attrs:
            del group.attrs[ATTR]
        return
    group.attrs[ATTR] = np.asarray(check(values), np.float64)


def sampling(voxel: Sequence[float] | None) -> tuple[float, float, float]:
    """Relative voxel spacing for distance transforms: the voxel size, or (1, 1, 1) unknown."""
    return tuple(float(v) for v in voxel) if voxel else (1.0, 1.0, 1.0)  # type: ignore[return-value]


def _unit_nm(unit) -> float | None:
    if unit is None:
        return None
    text = str(unit.decode() if isinstance(unit, bytes) else unit).strip().lower()
    text = text.replace("\\u00b5", "µ")
    return _NM_PER_UNIT.get(text)


def from_tiff(path: str | os.PathLike) -> tuple[float, float, float] | None:
    """The voxel size (Z, Y, X) in nm a TIFF file's metadata states, or None.

    OME PhysicalSize first, then ImageJ (spacing + resolution tags). Z defaults to X when the
    file gives X/Y only (a single 2D image); a stack without a Z step returns None.
    """
    import tifffile

    try:
        with tifffile.TiffFile(os.fspath(path)) as tif:
            ome = _from_ome(tif)
            return ome if ome is not None else _from_imagej(tif)
    except Exception:  # noqa: BLE001  (tifffile raises many types; metadata is optional: unknown)
        return None


def _from_ome(tif) -> tuple[float, float, float] | None:
    if not tif.is_ome or not tif.ome_metadata:
        return None
    import xml.etree.ElementTree as ET

    root = ET.fromstring(tif.ome_metadata)
    pixels = next((el for el in root.iter() if el.tag.endswith("}Pixels") or el.tag == "Pixels"),
                  None)
    if pixels is None:
        return None
    sizes = []
    for axis in "ZYX":
        value = pixels.get(f"PhysicalSize{axis}")
        scale = _unit_nm(pixels.get(f"PhysicalSize{axis}Unit", "µm"))
        sizes.append(float(value) * scale if value is not None and scale else None)
    z, y, x = sizes
    if y is None or x is None:
        return None
    if z is None:
        if int(pixels.get("SizeZ", "1")) > 1:
            return None
        z = x
    return z, y, x


def _from_imagej(tif) -> tuple[float, float, float] | None:
    page = tif.pages.first
    meta = tif.imagej_metadata or {}
    unit = _unit_nm(meta.get("unit"))
    if unit is None:
        res_unit = page.tags.get("ResolutionUnit")
        code = int(res_unit.value) if res_unit is not None else 1
        unit = {2: 2.54e7, 3: 1e7}.get(code)  # inch, centimetre; 1 = none
    if unit is None:
        return None
    xy = []
    for tag in ("YResolution", "XResolution"):
        value = page.tags.get(tag)
        if value is None:
            return None
        num, den = value.value
        if not num or not den or num == den:  # 1/1: "no resolution" as most writers put it
            return None
        xy.append(unit * den / num)
    spacing = meta.get("spacing")
    if spacing is None and len(tif.pages) > 1 and meta.get("images", 1) > 1:
        return None
    z = float(spacing) * unit if spacing else xy[1]
    return z, xy[0], xy[1]


def describe(voxel: Sequence[float] | None) -> str:
    """'50 x 5 x 5 nm' or 'unknown'."""
    if not voxel:
        return "unknown"
    return " x ".join(f"{v:g}" for v in voxel) + " nm"
