"""How grey values become a model's [0, 1] input: volume-wide min/max or robust percentiles.

``minmax`` is the dataset's own mapping (``Sample.read_image``: the volume's min and max).
One bright speck or a black border then decides the contrast of the whole volume.
``percentile LOW HIGH`` maps the LOW-th percentile of the volume's grey values to 0 and the
HIGH-th to 1 (clipped), e.g. ``percentile 0.5 99.5``: the extreme 1 % of voxels no longer
decide the contrast, so two volumes of the same tissue from different microscopes or
exposures look alike to the model.

The method is a short text stored in the model (``ModelInfo.normalization``), so
prediction repeats what training did; the percentiles themselves are measured on each
volume (they are a property of the volume, not of the model). They are measured from a
sample of slices (at most ``PERCENTILE_SLICES``, evenly spaced), read in strips:
integer images through an exact histogram of those slices, float images through a
regular subsample of their voxels. Memory stays bounded whatever the volume size.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from deepscem.config import parse_normalization

MINMAX = "minmax"
DEFAULT = "percentile 0.5 99.5"
#: Slices read to measure a volume's percentiles (evenly spaced through Z).
PERCENTILE_SLICES = 32
#: Bytes per strip read while measuring (rows of a slice at once).
STRIP_BYTES = 16 * 2**20
#: Voxels kept per slice for float images (a regular subsample).
FLOAT_SAMPLES_PER_SLICE = 2**16

Region = tuple[slice, slice, slice] | None


def parse(method: str | None) -> tuple[str, float, float]:
    """``"minmax"`` -> ("minmax", 0, 100); ``"percentile 0.5 99.5"`` -> ("percentile", 0.5, 99.5).

    None or "" means minmax (models written before this option). ConfigError otherwise.
    """
    return parse_normalization(method)


def canonical(method: str | None) -> str:
    """The stored spelling of ``method``: "minmax" or "percentile 0.5 99.5"."""
    kind, low, high = parse(method)
    return MINMAX if kind == MINMAX else f"percentile {low:g} {high:g}"


def percentile_range(sample, low: float, high: float) -> tuple[float, float]:
    """(value at the ``low``-th, value at the ``high``-th percentile) of a sample's raw image
    grey values, measured on at most PERCENTILE_SLICES slices (see the module docstring)."""
    image = sample.layer("image")
    depth, rows, cols = (int(s) for s in image.shape)
    zs = np.unique(np.linspace(0, depth - 1, min(depth, PERCENTILE_SLICES)).round().astype(int))
    strip = max(1, STRIP_BYTES // max(1, cols * image.dtype.itemsize))
    integer = image.dtype.kind in "ui" and image.dtype.itemsize <= 2
    offset = int(np.iinfo(image.dtype).min) if integer else 0
    step = max(1, int(np.sqrt(rows * cols / FLOAT_SAMPLES_PER_SLICE)))
    hist: np.ndarray | None = None
    floats: list[np.ndarray] = []
    for z in zs:
        for y0 in range(0, rows, strip):
            data = np.asarray(image[int(z), y0:y0 + strip])
            if integer:
                counts = np.bincount((data.ravel().astype(np.int64) - offset),
                                     minlength=2 ** (8 * image.dtype.itemsize))
                hist = counts if hist is None else hist + counts
            else:
                values = data[::step, ::step].ravel().astype(np.float64)
                floats.append(values[np.isfinite(values)])
    if integer:
        cum = np.cumsum(hist)
        total = cum[-1]
        lo = int(np.searchsorted(cum, total * low / 100.0, side="right")) + offset
        hi = int(np.searchsorted(cum, total * high / 100.0, side="left")) + offset
        return float(lo), float(hi)
    values = np.concatenate(floats) if floats else np.zeros(0)
    if not len(values):
        return 0.0, 0.0
    lo, hi = np.percentile(values, [low, high])
    return float(lo), float(hi)


def intensity_range(sample, method: str | None) -> tuple[float, float]:
    """The (lo, hi) raw grey values ``method`` maps to 0 and 1 for ``sample`` (cached on it)."""
    kind, low, high = parse(method)
    if kind == MINMAX:
        return sample.image_range
    cache = sample.__dict__.setdefault("_percentile_ranges", {})
    if (low, high) not in cache:
        lo, hi = percentile_range(sample, low, high)
        if not hi > lo:  # a nearly constant image: fall back to its full range
            lo, hi = sample.image_range
        cache[(low, high)] = (lo, hi)
    return cache[(low, high)]


def image_reader(sample, method: str | None) -> Callable[[Region], np.ndarray]:
    """``region -> (z, y, x) float32 in [0, 1]`` for ``sample`` normalised with ``method``.

    minmax: the sample's own ``read_image``. percentile: raw values mapped with
    :func:`intensity_range` and clipped to [0, 1]; NaN reads as 0.
    """
    kind, _, _ = parse(method)
    if kind == MINMAX:
        return sample.read_image
    lo, hi = intensity_range(sample, method)

    def read(region: Region = None) -> np.ndarray:
        return scale(sample.read_layer("image", region), lo, hi)

    return read


def streamed_range(read: Callable[[int, int], np.ndarray], depth: int, slab_depth: int, *,
                   progress=None, cancel=None) -> tuple[float, float]:
    """(min, max) of the finite values of a volume of ``depth`` slices read ``slab_depth`` at a
    time by ``read(z0, z1)``; (0, 0) when it has none (all NaN: a constant image)."""
    from deepscem import progress as prog

    lo, hi = np.inf, -np.inf
    step = max(1, int(slab_depth))
    for z0 in range(0, depth, step):
        prog.check(cancel)
        slab = read(z0, min(depth, z0 + step))
        if slab.dtype.kind == "f":
            slab = slab[np.isfinite(slab)]
        if slab.size:
            lo, hi = min(lo, float(slab.min())), max(hi, float(slab.max()))
        prog.emit(progress, min(depth, z0 + step), depth, "slices", "intensity range")
    return (lo, hi) if np.isfinite(lo) else (0.0, 0.0)


def scale(raw: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map raw grey values so that lo -> 0 and hi -> 1, clipped to [0, 1], float32; NaN -> 0;
    all zeros when hi <= lo (a constant image)."""
    if not hi > lo:
        return np.zeros(np.shape(raw), np.float32)
    raw = np.asarray(raw)
    if raw.dtype.itemsize == 1 and raw.dtype.kind in "ui" and raw.size > 256:
        # 8-bit EM: one table lookup instead of four passes over the patch (~5x faster for a
        # 256² patch; the same values: the table is the arithmetic below applied to every grey
        # value). take() reads an int8 value -k as index -k, i.e. 256 - k, its bit pattern.
        return _table(raw.dtype.str, float(lo), float(hi)).take(raw)
    return _scaled(raw, lo, hi)


def _scaled(raw: np.ndarray, lo: float, hi: float) -> np.ndarray:
    out = raw.astype(np.float32)
    out -= np.float32(lo)
    out /= np.float32(hi - lo)
    np.clip(out, 0.0, 1.0, out=out)
    if raw.dtype.kind == "f":  # integers have no NaN
        np.nan_to_num(out, copy=False, nan=0.0)
    return out


@functools.lru_cache(maxsize=32)
def _table(dtype: str, lo: float, hi: float) -> np.ndarray:
    """scale() of the 256 values of an 8-bit ``dtype``, in bit-pattern order."""
    return _scaled(np.arange(256, dtype=np.uint8).view(np.dtype(dtype)), lo, hi)
