"""Grey EM images and binary labels in and out: TIFF (tifffile) and ``.npy``.

Everything is (Z, Y, X): a 2D image becomes (1, Y, X). RGB and multi-channel images are
refused with a message saying how to convert them. Labels hold at most two values (0 and
one other, e.g. {0, 1} or {0, 255}) and become uint8 {0, 1}.

Large stacks are never loaded whole when that is not needed: :func:`open_volume` returns a
:class:`VolumeSource` that reads Z slabs on demand, straight from the file for contiguous
uncompressed data (plain reads, so the resident memory stays one slab however big the file)
and page by page for compressed or tiled TIFFs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from deepscem.errors import InputFileError

IMAGE_SUFFIXES = (".tif", ".tiff", ".npy")
_WORKERS = min(4, os.cpu_count() or 1)
# Stored as is; float64/float16 become float32 and bool becomes uint8 when stored.
_ACCEPTED_KINDS = "uifb"
HOW_TO_GREY = ("convert it to a single-channel grey stack first (Fiji: Image > Type > 8-bit or "
               "16-bit; for several channels Image > Color > Split Channels and keep one)")


class VolumeSource:
    """A (Z, Y, X) volume read slab by slab or by region; ``shape`` and ``dtype`` are known up
    front. ``voxel_size``: (Z, Y, X) in nm when the file says, else None. ``value_range``: a
    stored volume-wide (min, max) for normalisation, else None (it is then measured).
    Subclasses implement :meth:`read` or :meth:`read_region` (each defaults to the other)."""

    voxel_size: tuple[float, float, float] | None = None
    value_range: tuple[float, float] | None = None

    def __init__(self, path: str, shape: tuple[int, int, int], dtype: np.dtype) -> None:
        self.path = path
        self.shape = shape
        self.dtype = np.dtype(dtype)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def read(self, z0: int, z1: int) -> np.ndarray:
        """Slices ``z0:z1`` as a new (z1 - z0, Y, X) array in the native dtype."""
        return self.read_region((slice(z0, z1), slice(None), slice(None)))

    def read_region(self, region: tuple[slice, slice, slice]) -> np.ndarray:
        """The box ``region`` (slices over Z, Y, X, steps of 1) in the native dtype."""
        zs = region[0].indices(self.shape[0])
        return self.read(zs[0], max(zs[0], zs[1]))[:, region[1], region[2]]

    def slabs(self, depth: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(z0, slab)`` for consecutive slabs of ``depth`` slices."""
        for z0 in range(0, self.shape[0], depth):
            yield z0, self.read(z0, min(z0 + depth, self.shape[0]))

    def close(self) -> None:
        pass

    def __enter__(self) -> VolumeSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ArraySource(VolumeSource):
    """An in-memory array (already (Z, Y, X))."""

    def __init__(self, array: np.ndarray, name: str = "array") -> None:
        super().__init__(name, array.shape, array.dtype)
        self.array = array

    def read(self, z0: int, z1: int) -> np.ndarray:
        return np.array(self.array[z0:z1])


class RawSource(VolumeSource):
    """Contiguous C-order data at a byte offset (uncompressed TIFF, ``.npy``), read with
    plain file reads rather than a memory map: a mapping's touched pages count as resident
    memory, so a 100 GB stack would look like 100 GB of RSS."""

    def __init__(self, path: str, shape, file_dtype, offset: int) -> None:
        file_dtype = np.dtype(file_dtype)
        super().__init__(path, shape, file_dtype.newbyteorder("="))
        self.file_dtype = file_dtype
        self.offset = offset
        if os.path.getsize(path) < offset + self.nbytes:  # found now, before anything is written
            raise InputFileError(f"{path}: the file is truncated (it should hold {self.nbytes} bytes "
                                 f"of {tuple(shape)} {self.dtype} voxels); re-export it")
        self._file = open(path, "rb")

    def read(self, z0: int, z1: int) -> np.ndarray:
        slice_bytes = self.shape[1] * self.shape[2] * self.dtype.itemsize
        out = np.empty((z1 - z0,) + tuple(self.shape[1:]), self.file_dtype)
        self._file.seek(self.offset + z0 * slice_bytes)
        got = self._file.readinto(memoryview(out.reshape(-1).view(np.uint8)))
        if got != out.nbytes:
            raise InputFileError(f"{self.path}: the file is truncated (slices {z0}-{z1 - 1} "
                                 "are missing); re-export it")
        return out if self.file_dtype.isnative else out.astype(self.dtype)

    def close(self) -> None:
        self._file.close()


class TiffPageSource(VolumeSource):
    """A TIFF series read page by page (compressed, tiled or non-contiguous files)."""

    def __init__(self, path: str, tif, shape, dtype) -> None:
        super().__init__(path, shape, dtype)
        self._tif = tif

    def read(self, z0: int, z1: int) -> np.ndarray:
        try:
            # Compressed pages decode in parallel threads (the codecs release the GIL).
            data = self._tif.asarray(key=range(z0, z1), series=0, maxworkers=_WORKERS)
        except Exception as err:  # noqa: BLE001  (tifffile/imagecodecs raise many types on damaged files)
            raise InputFileError(f"{self.path}: cannot decode slices {z0}-{z1 - 1} ({err}); "
                                 "the file may be damaged, re-export it") from None
        return np.asarray(data).reshape((z1 - z0,) + tuple(self.shape[1:]))

    def close(self) -> None:
        self._tif.close()


def open_volume(path: str | os.PathLike) -> VolumeSource:
    """Open a grey image file for slab reads: shape (Z, Y, X), native dtype.

    Raises :class:`InputFileError` for a missing/unreadable file, an unknown extension,
    RGB or multi-channel data, or an unsupported dtype.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputFileError(f"{path}: no such file")
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputFileError(f"{path}: unsupported image format {suffix!r}; use .tif, .tiff or .npy")
    return _open_npy(path) if suffix == ".npy" else _open_tiff(path)


def _check_dtype(path: str, dtype: np.dtype) -> None:
    if dtype.kind not in _ACCEPTED_KINDS or dtype.itemsize > 8:
        raise InputFileError(f"{path}: pixel type {dtype} is not supported; save it as 8-, 16- or "
                             "32-bit integer or 32-bit float grey values")


def _as_zyx(path: str, shape: tuple[int, ...], axes: str) -> tuple[int, int, int]:
    """Map a file's shape/axes to (Z, Y, X). ``axes`` ends with 'YX' or 'YXS'."""
    if axes.endswith("S") and shape[-1] > 1:
        raise InputFileError(f"{path}: colour (RGB) image of shape {tuple(shape)}; " + HOW_TO_GREY)
    if axes.endswith("S"):
        shape, axes = shape[:-1], axes[:-1]
    if len(shape) < 2:
        raise InputFileError(f"{path}: not an image (shape {tuple(shape)})")
    lead = [(a, n) for a, n in zip(axes[:-2], shape[:-2]) if n > 1]
    if len(lead) > 1:
        dims = ", ".join(f"{a}={n}" for a, n in lead)
        raise InputFileError(f"{path}: a multi-dimensional stack ({dims}); DeepSCEM needs one grey "
                             "Z stack: " + HOW_TO_GREY + " and one time point")
    z = lead[0][1] if lead else 1
    return (z, int(shape[-2]), int(shape[-1]))


def _open_npy(path: str) -> VolumeSource:
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
    except (ValueError, OSError) as err:
        raise InputFileError(f"{path}: not a readable .npy file ({err})") from None
    _check_dtype(path, dtype)
    zyx = _as_zyx(path, tuple(shape), _array_axes(tuple(shape)))
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = os.path.getsize(path)
    if size < expected:
        raise InputFileError(f"{path}: truncated .npy file ({size} bytes, its header promises "
                             f"{expected}); copy or save it again")
    if fortran:  # rare; a memory map handles the strides
        return ArraySource(np.load(path, mmap_mode="r").reshape(zyx), path)
    return RawSource(path, zyx, dtype, offset)


def _open_tiff(path: str) -> VolumeSource:
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception as err:  # noqa: BLE001  (tifffile raises TiffFileError, ValueError, struct.error...)
        raise InputFileError(f"{path}: not a readable TIFF file ({err})") from None
    try:
        series = tif.series[0]
        if len(tif.series) > 1 and len({tuple(s.shape[-2:]) for s in tif.series}) > 1:
            sizes = ", ".join(" x ".join(map(str, s.shape[-2:])) for s in tif.series[:4])
            raise InputFileError(f"{path}: its pages have different sizes ({sizes}); a volume "
                                 "needs slices of one size: crop or pad them to one size")
        dtype = np.dtype(series.dtype)
        _check_dtype(path, dtype)
        zyx = _as_zyx(path, tuple(series.shape), series.axes)
        offset = series.dataoffset
        if offset is not None:
            tif.close()
            return RawSource(path, zyx, dtype.newbyteorder(tif.byteorder), offset)
        if len(series.pages) != zyx[0]:
            # One page holds several slices (rare volumetric tiles): read it whole.
            data = series.asarray().reshape(zyx)
            tif.close()
            return ArraySource(data, path)
        return TiffPageSource(path, tif, zyx, dtype)
    except BaseException:
        tif.close()
        raise


def image_array(image: np.ndarray, name: str = "array") -> np.ndarray:
    """Validate an in-memory image: (Y, X) -> (1, Y, X); (Z, Y, X) kept; native dtype."""
    image = np.asarray(image)
    _check_dtype(name, image.dtype)
    return image.reshape(_as_zyx(name, image.shape, _array_axes(image.shape)))


def _array_axes(shape: tuple[int, ...]) -> str:
    """Axes of a bare array: (..., Y, X); a trailing channel axis when it is 1, or 3/4 after
    a 3D stack ((Z, Y, X, 3) is RGB), or 2-4 after a 2D image ((64, 64, 3) is RGB, refused like
    an RGB TIFF; (3, 64, 64) is a stack of 3 slices)."""
    channels_last = len(shape) == 3 and shape[-1] in (2, 3, 4) and min(shape[:2]) > 4
    if channels_last or (len(shape) >= 3 and shape[-1] == 1) or (len(shape) == 4 and shape[-1] in (3, 4)):
        return "Q" * (len(shape) - 3) + "YXS"
    return "Q" * max(0, len(shape) - 2) + "YX"


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The whole image as (Z, Y, X) in its native dtype (2D -> (1, Y, X))."""
    with open_volume(path) as src:
        return src.read(0, src.shape[0])


class LabelValues:
    """Accumulates the distinct values of a label, slab by slab, and fails early.

    A label holds 0 and at most one other value (e.g. {0, 1} or {0, 255}); anything else
    is a mistake (an image given as a label, a multi-class mask) the user must fix.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.values: set = set()

    def update(self, slab: np.ndarray) -> None:
        if slab.size == 0:
            return
        # max/count_nonzero/== are vectorised single passes, several times faster than
        # np.unique or np.bincount; unique runs only to word the error. All non-zero voxels
        # equal to one value `other` <=> the values are within {0, other}.
        other = slab.max()
        if other == 0:
            other = slab.min()
        nonzero = np.count_nonzero(slab)
        if nonzero and np.count_nonzero(slab == other) != nonzero:  # also catches NaN
            self._fail(slab)
        if nonzero < slab.size:
            self.values.add(0)
        if nonzero:
            self.values.add(other.item())
        if len([v for v in self.values if v != 0]) > 1:
            self._fail(slab)

    def _fail(self, slab: np.ndarray) -> None:
        values = sorted(self.values | set(np.unique(slab).tolist()), key=float)
        shown = ", ".join(_fmt(v) for v in values[:8]) + (", ..." if len(values) > 8 else "")
        raise InputFileError(
            f"{self.name}: a label must hold 0 and at most one other value, found {shown}; save "
            "one binary mask per label (e.g. threshold it in Fiji: Image > Adjust > Threshold)")


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def to_label(slab: np.ndarray) -> np.ndarray:
    """Binary uint8 {0, 1}: any non-zero value is foreground (after :class:`LabelValues`)."""
    return (slab != 0).view(np.uint8)


def read_label(path: str | os.PathLike) -> np.ndarray:
    """A label file as (Z, Y, X) uint8 {0, 1}; refuses more than 0 and one other value."""
    with open_volume(path) as src:
        data = src.read(0, src.shape[0])
    LabelValues(os.fspath(path)).update(data)
    return to_label(data)


def write_tiff(path: str | os.PathLike, array: np.ndarray, *, compression: str | None = None) -> None:
    """Write a (Z, Y, X) or (Y, X) array as a grey multi-page TIFF (BigTIFF when > 2 GB)."""
    import tifffile

    array = np.asarray(array)
    if array.dtype == np.bool_:
        array = array.view(np.uint8)
    tifffile.imwrite(os.fspath(path), array, photometric="minisblack", compression=compression,
                     bigtiff=array.nbytes > 2**31 - 2**25)


def write_image(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` or TIFF, chosen by the file extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        np.save(os.fspath(path), np.asarray(array))
    elif suffix in (".tif", ".tiff"):
        write_tiff(path, array)
    else:
        raise InputFileError(f"{path}: unsupported image format {suffix!r}; use .tif, .tiff or .npy")
