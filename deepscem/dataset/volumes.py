"""One way to open any grey volume, lazily, by region: :func:`open_volume` (DESIGN.md §8).

A *volume spec* is what a user types for an image:

* ``stack.tif`` / ``stack.npy`` -- a TIFF stack or NumPy array (:mod:`deepscem.dataset.imageio`);
* ``slices/`` -- a folder of 2D TIFF or PNG slices, in natural order (``z2.tif`` before
  ``z10.tif``);
* ``image.ome.zarr`` -- an OME-Zarr image, NGFF 0.4 or 0.5, full resolution; a scale level
  by its path inside the image: ``image.ome.zarr/1``;
* ``file.h5:/path/in/file`` -- an HDF5 dataset of another tool; ``data.hdf5:SAMPLE`` -- the
  image of a sample of a DeepSCEM dataset (its stored intensity range is kept);
* ``volume.mrc`` (also ``.map``, ``.rec``, ``.st``, ``.ali``) -- MRC, through ``mrcfile``.

Every reader is a :class:`~deepscem.dataset.imageio.VolumeSource`: ``shape`` (Z, Y, X),
native ``dtype``, ``voxel_size`` (Z, Y, X in nm, or None), ``read_region(region)`` for any
box and ``read(z0, z1)`` for Z slabs. Nothing is loaded before it is asked for, so a 1 TB
volume opens instantly and costs the memory of the region read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deepscem.dataset import imageio
from deepscem.dataset.imageio import VolumeSource
from deepscem.errors import InputFileError

SLICE_SUFFIXES = (".tif", ".tiff", ".png")
MRC_SUFFIXES = (".mrc", ".map", ".rec", ".st", ".ali", ".mrcs")
H5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
SPEC_HELP = ("a TIFF stack or .npy, a folder of 2D TIFF/PNG slices, an OME-Zarr image "
             "(image.ome.zarr, a scale level: image.ome.zarr/1), an HDF5 dataset (file.h5:/path; "
             "data.hdf5:SAMPLE for a DeepSCEM sample) or an MRC file")


def open_volume(spec: str | os.PathLike) -> VolumeSource:
    """Open the volume ``spec`` names (see the module docstring) for region reads.

    Raises :class:`InputFileError` with what to do for a missing path, an unknown form, a
    colour or multi-channel image, or slices of different sizes.
    """
    text = os.fspath(spec)
    h5 = _split_h5(text)
    if h5 is not None:
        return _open_h5(*h5)
    path = Path(text)
    if path.is_dir():
        from deepscem.dataset import ome_zarr

        if ome_zarr.is_zarr(path):
            return ome_zarr.open_image(path)
        return SliceFolderSource(path)
    if not path.exists():
        raise InputFileError(f"{text}: no such file or folder (an image is {SPEC_HELP})")
    suffix = path.suffix.lower()
    if suffix in MRC_SUFFIXES:
        return MrcSource(path)
    if suffix in H5_SUFFIXES:
        raise InputFileError(f"{text}: say which dataset of the HDF5 file holds the image: "
                             f"{text}:/path/in/file (or {text}:SAMPLE for a DeepSCEM dataset)")
    if suffix in imageio.IMAGE_SUFFIXES:
        return imageio.open_volume(path)
    raise InputFileError(f"{text}: unsupported image format {suffix!r}; an image is {SPEC_HELP}")


def absolute_spec(spec: str | os.PathLike) -> str:
    """``spec`` with an absolute path (what another process, e.g. a cluster worker, can open)."""
    text = os.fspath(spec)
    h5 = _split_h5(text)
    if h5 is not None:
        return f"{h5[0].absolute()}:{h5[1]}"
    return str(Path(text).absolute())


def spec_path(spec: str | os.PathLike) -> Path:
    """The file or folder a spec reads (``data.h5:/raw`` -> ``data.h5``)."""
    h5 = _split_h5(os.fspath(spec))
    return h5[0] if h5 is not None else Path(spec)


def spec_name(spec: str | os.PathLike) -> str:
    """A short name for the volume: the file stem, the folder name, the HDF5 path's last part
    (``cells.ome.zarr`` -> ``cells``; ``data.hdf5:/raw/s1`` -> ``s1``)."""
    text = os.fspath(spec)
    h5 = _split_h5(text)
    name = h5[1].strip("/").rpartition("/")[2] if h5 else Path(text).name
    for suffix in (".ome.zarr", ".zarr", *MRC_SUFFIXES, *imageio.IMAGE_SUFFIXES):
        if name.lower().endswith(suffix):
            name = name[:-len(suffix)]
            break
    return name.strip(".") or "image"


def _split_h5(text: str) -> tuple[Path, str] | None:
    """``file.h5:/a/b`` -> (Path("file.h5"), "/a/b"); None when ``text`` is not of that form."""
    head, sep, tail = text.rpartition(":")
    if not sep or not tail or Path(head).suffix.lower() not in H5_SUFFIXES:
        return None
    return Path(head), tail


def _open_h5(path: Path, inner: str) -> VolumeSource:
    import h5py

    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise InputFileError(f"{path}: not an HDF5 file")
    file = h5py.File(path, "r")
    try:
        if inner in file and isinstance(file[inner], h5py.Group) and "image" in file[inner] \
                and "labels" in file.attrs:
            return H5Source(file, f"{inner.strip('/')}/image", f"{path}:{inner}", sample=True)
        if inner not in file or not isinstance(file[inner], h5py.Dataset):
            names: list[str] = []
            file.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
            raise InputFileError(f"{path}: no dataset {inner!r} in the file (it holds: "
                                 f"{', '.join(names[:8]) or 'none'}{', ...' if len(names) > 8 else ''})")
        return H5Source(file, inner, f"{path}:{inner}")
    except BaseException:
        file.close()
        raise


class H5Source(VolumeSource):
    """An HDF5 dataset (any tool's) read by region; for a DeepSCEM sample (``sample=True``)
    the stored ``norm_min``/``norm_max`` and the sample's ``voxel_size`` come along."""

    def __init__(self, file, inner: str, name: str, *, sample: bool = False) -> None:
        data = file[inner]
        imageio._check_dtype(name, data.dtype)
        shape = imageio._as_zyx(name, tuple(data.shape), imageio._array_axes(tuple(data.shape)))
        super().__init__(name, shape, data.dtype)
        self._file, self._data = file, data
        self._lead = data.ndim - 3 if data.ndim > 3 else None
        attrs = data.attrs
        if sample and "norm_min" in attrs and "norm_max" in attrs:
            self.value_range = (float(attrs["norm_min"]), float(attrs["norm_max"]))
        size = data.parent.attrs.get("voxel_size") if sample else attrs.get("element_size_um")
        if size is not None and len(np.atleast_1d(size)) == 3:
            scale = 1.0 if sample else 1000.0  # element_size_um (ilastik, Fiji): micrometres
            self.voxel_size = tuple(float(v) * scale for v in np.atleast_1d(size))

    def read_region(self, region) -> np.ndarray:
        data = self._data
        if data.ndim == 2:
            return data[region[1], region[2]][None][region[0]]
        if data.ndim == 3:
            return data[tuple(region)]
        return np.asarray(data[...]).reshape(self.shape)[tuple(region)]  # (Z, Y, X, 1) rare

    def close(self) -> None:
        self._file.close()


class MrcSource(VolumeSource):
    """An MRC file (cryo-ET, FIB-SEM exports) through ``mrcfile``'s memory map; the header's
    voxel size (Angstrom) becomes nm. Reads copy the region out, so only it stays resident."""

    def __init__(self, path: Path) -> None:
        import mrcfile

        try:
            self._mrc = mrcfile.mmap(path, mode="r", permissive=True)
        except (ValueError, OSError) as err:
            raise InputFileError(f"{path}: not a readable MRC file ({err})") from None
        data = self._mrc.data
        if data is None:
            self._mrc.close()
            raise InputFileError(f"{path}: the MRC file holds no data")
        imageio._check_dtype(str(path), data.dtype)
        shape = imageio._as_zyx(str(path), data.shape, "Q" * (data.ndim - 2) + "YX")
        super().__init__(str(path), shape, data.dtype.newbyteorder("="))
        self._data = data.reshape(shape)
        size = self._mrc.voxel_size
        if float(size.x) > 0:
            self.voxel_size = (float(size.z) / 10, float(size.y) / 10, float(size.x) / 10)

    def read_region(self, region) -> np.ndarray:
        return np.array(self._data[tuple(region)], dtype=self.dtype)

    def close(self) -> None:
        self._mrc.close()


class SliceFolderSource(VolumeSource):
    """A folder of 2D grey slices (TIFF or PNG), one file per Z, in natural order.

    Shape and dtype come from the first slice; a slice of another size or type is reported
    when it is read, by name."""

    def __init__(self, folder: Path) -> None:
        from natsort import os_sorted

        files = [p for p in folder.iterdir()
                 if p.suffix.lower() in SLICE_SUFFIXES and not p.name.startswith(".")]
        if not files:
            raise InputFileError(f"{folder}: a folder of slices must hold .tif, .tiff or .png "
                                 "files, found none")
        self.files = [Path(p) for p in os_sorted(files)]
        first = _read_slice(self.files[0])
        super().__init__(str(folder), (len(self.files), *first.shape), first.dtype)

    def read_region(self, region) -> np.ndarray:
        zs, ys, xs = region
        out = np.empty((len(range(*zs.indices(self.shape[0]))), *_sliced(ys, xs, self.shape)),
                       self.dtype)
        for i, z in enumerate(range(*zs.indices(self.shape[0]))):
            data = _read_slice(self.files[z])
            if data.shape != self.shape[1:] or data.dtype != self.dtype:
                raise InputFileError(f"{self.files[z]}: slice of {data.shape} {data.dtype}, the "
                                     f"first slice is {self.shape[1:]} {self.dtype}; all slices "
                                     "must have the same size and type")
            out[i] = data[ys, xs]
        return out


def _sliced(ys: slice, xs: slice, shape) -> tuple[int, int]:
    return len(range(*ys.indices(shape[1]))), len(range(*xs.indices(shape[2])))


def _read_slice(path: Path) -> np.ndarray:
    """One 2D grey slice (Y, X) in its native dtype."""
    try:
        if path.suffix.lower() == ".png":
            from PIL import Image

            with Image.open(path) as img:
                if img.mode not in ("L", "I;16", "I;16B", "I", "F", "1"):
                    raise InputFileError(f"{path}: colour PNG ({img.mode}); " + imageio.HOW_TO_GREY)
                data = np.asarray(img)
        else:
            import tifffile

            data = tifffile.imread(path)
    except InputFileError:
        raise
    except Exception as err:  # noqa: BLE001  (PIL/tifffile raise many types on damaged files)
        raise InputFileError(f"{path}: cannot read this slice ({err})") from None
    imageio._check_dtype(str(path), data.dtype)
    zyx = imageio._as_zyx(str(path), data.shape, imageio._array_axes(data.shape))
    if zyx[0] != 1:
        raise InputFileError(f"{path}: a folder of slices holds 2D images; this one has {zyx[0]} "
                             "slices (give a stack file instead of the folder)")
    return data.reshape(zyx[1:]).astype(data.dtype.newbyteorder("="), copy=False)


def volume_range(source: VolumeSource, *, progress=None, cancel=None) -> tuple[float, float]:
    """Volume-wide (min, max) of ``source``, the range images are normalised with (DESIGN.md §3):
    a stored one (a DeepSCEM sample) or one streamed pass of Z slabs of about 64 MB."""
    from deepscem.dataset.normalization import streamed_range

    if getattr(source, "value_range", None) is not None:
        return source.value_range
    z, y, x = source.shape
    depth = max(1, (64 * 2**20) // max(1, y * x * source.dtype.itemsize))
    return streamed_range(source.read, z, depth, progress=progress, cancel=cancel)
