"""The dataset file: one HDF5 file of samples, each an image and its labels (layout described in
docs/ARCHITECTURE.md, 'Dataset file').

Layout (compatible with the original DeepSCEM's files, which every reader here accepts):

* file attrs ``name`` (str), ``labels`` (int: labels per sample), optional ``labels_aliases``;
* one group per sample, attr ``shape`` = (Z, Y, X);
* ``image``: native integer dtype (float32 for float input) with attrs ``norm_min``/``norm_max``
  (the volume-wide intensity range). The original's float32 [0, 1] images have no such attrs
  and are read with their data min/max;
* ``label_0000``...: uint8 {0, 1}; ``prediction_0000``...: float32 or uint8;
  ``label_0000_dt``: float32 signed distance (see :mod:`deepscem.dataset.ops`).

Crop, export, save-as and distance transform live in :mod:`deepscem.dataset.ops`; the
methods below delegate to them so ``Dataset`` stays the one entry point.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from deepscem.dataset import add as dataset_add
from deepscem.dataset import annotation, ome_zarr, pending
from deepscem.dataset import ops as dataset_ops
from deepscem.dataset import voxel_size as voxel_size_attr
from deepscem.dataset.format import (
    chunk_shape,
    layer_options,
    require_space,
    slab_depth,
    validate_file,
    validate_name,
)
from deepscem.dataset.locking import WriterLock
from deepscem.dataset.pending import is_hidden
from deepscem.dataset.sample import Sample
from deepscem.errors import DatasetError
from deepscem.outputs import atomic_path, check_output, is_temp_name
from deepscem.progress import CancelToken, ProgressCallback


class Dataset:
    """An open dataset file. Use :meth:`create` or :meth:`open`, ideally as a context manager."""

    def __init__(self, path: Path, file: h5py.File, lock: WriterLock | None = None) -> None:
        self.path = path
        self.file = file
        self._lock = lock

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, name: str, n_labels: int, *,
               overwrite: bool = False) -> Dataset:
        """Create an empty dataset file (opened read-write) named ``name`` with ``n_labels``."""
        path = Path(path)
        # 0 labels: a dataset of images only, for prediction and viewing (DESIGN.md §3)
        if not isinstance(n_labels, (int, np.integer)) or isinstance(n_labels, bool) or n_labels < 0:
            raise DatasetError(f"the number of labels must be a whole number >= 0, got {n_labels!r}")
        if not str(name).strip():
            raise DatasetError("the dataset name must not be empty")
        check_output(path, overwrite=overwrite, what="dataset", error=DatasetError)
        # Written to a temporary file and moved into place: a full disk or a kill leaves no
        # empty file that would block the next try.
        require_space(path, 0, "new dataset")
        try:
            with atomic_path(path) as tmp, h5py.File(tmp, "w") as file:
                file.attrs["name"] = str(name)
                file.attrs["labels"] = np.int64(n_labels)
        except OSError as err:
            raise DatasetError(f"{path}: cannot create the file ({_h5_reason(err)})") from None
        return cls.open(path, "r+")

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r", *, check_samples: bool = True,
             cache_mb: float | None = None) -> Dataset:
        """Open and validate a dataset (``mode`` "r" or "r+"); :class:`DatasetError` says what is
        wrong with a file that is not a dataset. ``check_samples=False`` skips per-sample checks
        (to repair a file by removing a broken sample).

        ``cache_mb``: HDF5 chunk cache per layer (default HDF5's 1 MB). Readers drawing many
        random patches (training) should give about the size of a label layer (Z*Y*X bytes):
        decompressed label chunks then stay in memory and random 256^2 label reads become as
        fast as uncompressed ones (bench/README.md); memory use is at most ``cache_mb`` per
        layer read."""
        if mode not in ("r", "r+"):
            raise DatasetError(f"invalid mode {mode!r}: use 'r' (read) or 'r+' (read and write)")
        path = Path(path)
        if path.is_dir() and ome_zarr.is_zarr(path):
            # An OME-Zarr image opens as a read-only dataset of one sample (viewing, predicting)
            if mode != "r":
                raise DatasetError(f"{path} is an OME-Zarr image and opens read-only; add it to a "
                                   "dataset (dataset add-sample) to edit it")
            from deepscem.dataset.zarr_view import ZarrDataset

            return ZarrDataset(path)  # type: ignore[return-value]
        if not path.is_file():
            raise DatasetError(f"{path}: no such file")
        if not h5py.is_hdf5(path):
            raise DatasetError(f"{path}: not an HDF5 file; a DeepSCEM dataset is an .hdf5 file made "
                               "with 'dataset create' (or the original DeepSCEM)")
        lock = None
        if mode == "r+":
            # Before HDF5 writes anything: a full disk must not make the file unreadable.
            require_space(path, 0, f"changes to {path.name}")
            # A temporary file of atomic_path (a prediction being written) is private: no lock.
            lock = None if is_temp_name(path.name) else WriterLock(path).acquire()
        try:
            try:
                file = _open_h5(path, mode, cache_mb)
            except OSError as err:
                raise DatasetError(f"{path}: cannot open it ({_h5_reason(err)})") from None
            try:
                validate_file(path, file, check_samples=check_samples)
                if mode == "r+":
                    pending.recover(file, path)
            except BaseException:
                file.close()
                raise
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return cls(path, file, lock)

    def close(self) -> None:
        """Close the file (writing HDF5's cached metadata) and release the writer's lock."""
        try:
            if self.file.id.valid and not pending.write_failed(self.file.filename):
                try:
                    self.file.close()
                except (OSError, RuntimeError) as err:
                    pending.mark_write_failed(self.file.filename)
                    raise DatasetError(f"{self.path}: could not finish writing it "
                                       f"({_h5_reason(err)})") from None
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, name={self.name!r}, samples={len(self)})"

    # -- metadata --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        value = self.file.attrs.get("name", self.path.stem)
        return value.decode() if isinstance(value, bytes) else str(value)

    @property
    def n_labels(self) -> int:
        return int(self.file.attrs["labels"])

    @property
    def writable(self) -> bool:
        return self.file.mode == "r+"

    @property
    def label_aliases(self) -> list[str]:
        """One display name per label (``labels_aliases`` attr; default "label 0", ...)."""
        raw = self.file.attrs.get("labels_aliases")
        names = [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(raw)] \
            if raw is not None else []
        if len(names) != self.n_labels:
            names = [f"label {i}" for i in range(self.n_labels)]
        return names

    def set_label_aliases(self, aliases: Sequence[str]) -> None:
        """Name the labels (e.g. ``["mito", "er"]``), one non-empty name per label."""
        self._require_writable()
        aliases = [str(a).strip() for a in aliases]
        if len(aliases) != self.n_labels or not all(aliases):
            raise DatasetError(f"{self.path}: give exactly {self.n_labels} non-empty label names, "
                               f"got {len(aliases)}")
        self.file.attrs["labels_aliases"] = aliases

    def sample_names(self) -> list[str]:
        """Sample names, sorted (hidden edits in progress, ``.<kind>-<pid>-<name>``, excluded)."""
        return sorted(n for n in self.file.keys() if not is_hidden(n))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and not is_hidden(name) and name in self.file

    def __len__(self) -> int:
        return len(self.sample_names())

    def __iter__(self):
        return (self.sample(n) for n in self.sample_names())

    def sample(self, name: str) -> Sample:
        if name not in self:
            raise DatasetError(f"{self.path}: no sample {name!r} (samples: "
                               f"{', '.join(self.sample_names()) or 'none'})")
        return Sample(self, name)

    # -- editing ---------------------------------------------------------------------------
    def _require_writable(self) -> None:
        if not self.writable:
            raise DatasetError(f"{self.path} is open read-only; open it with mode 'r+' to change it")

    def _check_new_name(self, name: str) -> None:
        validate_name(name)
        if name in self:
            raise DatasetError(f"{self.path}: a sample named {name!r} already exists; choose another "
                               "name or remove it first")

    def add_sample(self, name: str, image, labels: Sequence = (), *,
                   voxel_size: Sequence[float] | None = None, instances: Sequence = (),
                   annotated_slices: str | Sequence[int] | None = None, annotated_mask=None,
                   progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None) -> Sample:
        """Add sample ``name`` from an image and ``n_labels`` labels.

        ``image``: path (.tif/.tiff/.npy) or ndarray, (Z, Y, X) or (Y, X), any int/float dtype.
        ``labels``: one per dataset label; path, ndarray, or None/""/"-" for a blank label;
        none at all (in a dataset with labels) = a volume to predict or paint: blank labels,
        nothing annotated. ``annotated_slices`` (Z indices, or text "0,40,80" / "0-9") or
        ``annotated_mask`` (path or array, non-zero = annotated): only these voxels are labelled
        (see :mod:`deepscem.dataset.annotation`); default: all (or none without labels).
        Everything is checked (readable, grey, binary, same shape) and the image's range is
        measured in a first streamed pass before anything is written; the second pass writes
        slab by slab. On an error or cancel the half-written sample is removed.
        ``voxel_size``: (Z, Y, X) in nm; None reads it from the image's TIFF metadata when
        there (else unknown). ``instances``: label images of object ids (0 = background), one
        per label or fewer, stored as ``instance_0000``... (uint32).
        """

        self._require_writable()
        self._check_new_name(name)
        if annotated_slices is not None and annotated_mask is not None:
            raise DatasetError("give annotated slices or an annotated mask, not both")
        sample = dataset_add.add_sample(self, name, image, labels, voxel_size=voxel_size,
                                        instances=instances, progress=progress, cancel=cancel)
        if annotated_slices is None and annotated_mask is None:
            return sample
        try:
            if annotated_mask is not None:
                sample.set_annotated_mask(annotated_mask, progress=progress, cancel=cancel)
            else:
                if isinstance(annotated_slices, str):
                    annotated_slices = annotation.parse_slices(annotated_slices, sample.shape[0])
                sample.set_annotated_slices(annotated_slices, progress=progress, cancel=cancel)
        except BaseException:
            del self.file[name]  # all or nothing: no sample that claims more than was said
            self.file.flush()
            raise
        return sample

    def add_empty_sample(self, name: str, shape_zyx: Sequence[int], *,
                         image_from: Sample | None = None) -> Sample:
        """A sample with only its ``shape`` (and a copy of ``image_from``'s image), for writers
        such as prediction that fill layers block by block with :meth:`Sample.create_layer`."""
        self._require_writable()
        self._check_new_name(name)
        shape = tuple(int(v) for v in shape_zyx)
        if len(shape) != 3 or min(shape) < 1:
            raise DatasetError(f"a sample shape is (Z, Y, X) with sizes >= 1, got {shape}")
        if image_from is not None and tuple(image_from.shape) != shape:
            raise DatasetError(f"image of {image_from.name!r} has shape {image_from.shape}, not {shape}")
        group = self.file.create_group(name)
        try:
            group.attrs["shape"] = np.asarray(shape, np.int64)
            if isinstance(image_from, Sample):
                self.file.copy(image_from.layer("image"), group, "image")
                if image_from.voxel_size is not None:
                    voxel_size_attr.write(group, image_from.voxel_size)
            elif image_from is not None:  # another kind of sample (an OME-Zarr image): streamed
                _copy_image(image_from, group, shape)
        except BaseException:
            del self.file[name]
            raise
        return Sample(self, name)

    def remove_sample(self, name: str) -> None:
        """Delete a sample (the file does not shrink; :func:`save_as` writes a compact copy)."""
        self._require_writable()
        self.sample(name)
        del self.file[name]

    def rename_sample(self, old: str, new: str) -> Sample:
        self._require_writable()
        self.sample(old)
        self._check_new_name(new)
        self.file.move(old, new)
        return Sample(self, new)

    # -- operations in deepscem.dataset.ops ------------------------------------------------
    def crop_sample(self, name: str, z: tuple[int, int], y: tuple[int, int], x: tuple[int, int], *,
                    new_name: str | None = None, progress=None, cancel=None) -> Sample:
        return dataset_ops.crop_sample(self, name, z, y, x, new_name=new_name,
                                       progress=progress, cancel=cancel)

    def export_sample(self, name: str, folder, *, layers: Sequence[str] | None = None,
                      overwrite: bool = False, progress=None, cancel=None) -> list[Path]:
        return dataset_ops.export_sample(self, name, folder, layers=layers, overwrite=overwrite,
                                         progress=progress, cancel=cancel)

    def distance_transform(self, name: str, label: int, *, scale: float = 5.0,
                           sampling: Sequence[float] | None = None, per_slice: bool = False,
                           overwrite: bool = False, progress=None, cancel=None) -> str:
        return dataset_ops.distance_transform(self, name, label, scale=scale, sampling=sampling,
                                              per_slice=per_slice, overwrite=overwrite,
                                              progress=progress, cancel=cancel)


def _open_h5(path: Path, mode: str, cache_mb: float | None) -> h5py.File:
    cache = {}
    if cache_mb:
        # nslots: a prime well above the number of 64 KB chunks the cache holds (HDF5's advice)
        cache = {"rdcc_nbytes": int(cache_mb * 2**20), "rdcc_nslots": 100_003, "rdcc_w0": 1.0}
    try:
        return h5py.File(path, mode, **cache)
    except OSError as err:
        # Some network file systems do not implement file locks (errno 38, ENOSYS): open
        # without HDF5's lock there rather than refusing the file.
        if "errno = 38" not in str(err) and "not implemented" not in str(err).lower():
            raise
    return h5py.File(path, mode, locking=False, **cache)


def _copy_image(source, group: h5py.Group, shape: tuple[int, ...]) -> None:
    """Copy ``source``'s image (any sample-like object) into ``group`` slab by slab, with its
    normalisation range."""
    raw = source.layer("image")
    dtype = np.dtype(raw.dtype)
    image = group.create_dataset("image", shape=shape, dtype=dtype,
                                 **layer_options(shape, dtype, "image"))
    image.attrs["norm_min"], image.attrs["norm_max"] = source.image_range
    depth = slab_depth(shape, dtype.itemsize)
    for z0 in range(0, shape[0], depth):
        image[z0:z0 + depth] = source.read_layer("image", (slice(z0, min(shape[0], z0 + depth)),
                                                           slice(None), slice(None)))


def _h5_reason(err: OSError) -> str:
    text = str(err).lower()
    if "unable to lock" in text:
        return "it is open for writing in another program; close it there first"
    if "already open" in text:
        return "it is already open read-only in this program; close it there before changing it"
    if "permission" in text or "errno = 13" in text:
        return "permission denied"
    if "read-only file system" in text or "errno = 30" in text:
        return "the file system is read-only"
    if "no space left" in text or "errno = 28" in text:
        return "no space left on the device"
    if "errno = 2," in text or "no such file" in text:
        return "no such file"
    return "the HDF5 file is damaged or truncated"


__all__ = ["Dataset", "Sample", "chunk_shape"]
