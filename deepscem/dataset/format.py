"""Rules of the dataset file: storage layout (chunks, compression) and validation on open.

Kept apart from :mod:`deepscem.dataset` (the API) so the rules read in one place.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from deepscem.dataset.layers import index_of, is_instance, is_label
from deepscem.errors import DatasetError
from deepscem.outputs import check_free_space

# Values that mean "blank label" on the command line and in add_sample.
BLANK = ("", "-")

# Bytes read from the source per slab while adding a sample: big enough to amortise HDF5
# and file overheads, small enough that two slabs (one read ahead) of image + labels and
# their temporaries stay far below 500 MB (peak RSS ~220-260 MB measured, bench/README.md).
SLAB_BYTES = 32 * 2**20

# Chunk shape (Z, Y, X) = (4, 128, 128), clipped to the volume. Why (numbers: bench/README.md):
# * 2D training reads (1, 256, 256) patches from one slice, 3D training and prediction read
#   (32, 128, 128) .. (64, 256, 256) blocks; 4 slices deep is the compromise: a 2D patch reads
#   4x the voxels it needs, a 3D patch few chunks: within 1.6x of the best chunking for
#   either use ((1, 256, 256) for 2D), which loses up to 2.3x on the other;
# * 128 rather than 256 in Y/X: compressed labels decompress less per patch (2x faster
#   reads), and edge chunks waste less padding (a 640-wide slice is 5 x 128 but 3 x 256 = 768);
# * 64 KB per uint8 chunk fits HDF5's default 1 MB chunk cache many times over.
CHUNK_ZYX = (4, 128, 128)


def chunk_shape(shape: tuple[int, ...], chunk: tuple[int, int, int] | None = None) -> tuple[int, ...]:
    """The chunk shape for a (Z, Y, X) layer, clipped to the layer's shape."""
    return tuple(max(1, min(int(s), c)) for s, c in zip(shape, chunk or CHUNK_ZYX))


def layer_options(shape, dtype: np.dtype, layer: str) -> dict:
    """h5py ``create_dataset`` options for a layer.

    Images and float layers are uncompressed: EM barely compresses (54 -> 46 MB with gzip on
    lucchi-pp) while gzip makes random patch reads 40-180x slower. uint8 masks (labels,
    thresholded predictions) and instance ids (mostly 0, runs of one id) compress > 100x and
    decompress quickly, so they are gzipped.
    """
    options: dict = {"chunks": chunk_shape(shape)}
    if (np.dtype(dtype) == np.uint8 and layer != "image") or is_instance(layer):
        options.update(compression="gzip", compression_opts=1)
    return options


def write_mask_slab(out: h5py.Dataset, z0: int, mask: np.ndarray) -> None:
    """Write a uint8 slab (labels {0, 1}) into a new gzip layer with fill value 0, chunk by chunk.

    All-zero chunks are not written at all (they read back as the fill value 0), and the others
    are deflated in threads (zlib releases the GIL) and stored with ``write_direct_chunk``:
    labels are mostly background, and compressing them was the slowest part of adding a sample.
    Any other layer or a slab that is not chunk-aligned gets a plain write.
    """
    import zlib
    from concurrent.futures import ThreadPoolExecutor

    depth = mask.shape[0]
    cz, cy, cx = out.chunks or (1, 1, 1)
    aligned = z0 % cz == 0 and (depth % cz == 0 or z0 + depth == out.shape[0])
    if not (aligned and out.chunks and out.compression == "gzip" and mask.dtype == np.uint8
            and out.fillvalue == 0):
        out[z0:z0 + depth] = mask
        return
    level = out.compression_opts
    offsets, blocks = [], []
    for z in range(0, depth, cz):
        for y in range(0, mask.shape[1], cy):
            for x in range(0, mask.shape[2], cx):
                block = mask[z:z + cz, y:y + cy, x:x + cx]
                if not block.any():
                    continue
                if block.shape != (cz, cy, cx):  # edge chunks are stored full size
                    block = np.pad(block, [(0, c - n) for c, n in zip((cz, cy, cx), block.shape)])
                offsets.append((z0 + z, y, x))
                blocks.append(np.ascontiguousarray(block))
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for offset, data in zip(offsets, pool.map(lambda b: zlib.compress(b, level), blocks)):
            out.id.write_direct_chunk(offset, data)


def slab_depth(shape, itemsize: int) -> int:
    """Slices per slab so one slab is about :data:`SLAB_BYTES`, a multiple of the chunk depth
    (whole chunks are written at once) when that fits."""
    slice_bytes = max(1, int(shape[1]) * int(shape[2]) * int(itemsize))
    depth = max(1, SLAB_BYTES // slice_bytes)
    chunk_z = chunk_shape(shape)[0]
    if depth >= chunk_z:
        depth -= depth % chunk_z
    return int(depth)


def stored_image_dtype(dtype: np.dtype) -> np.dtype:
    """Integers are stored as they are; floats as float32; bool as uint8."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.dtype(np.float32)
    if dtype.kind == "b":
        return np.dtype(np.uint8)
    return dtype


# Free space an edit needs beyond its data: HDF5's metadata of a small edit. A dataset opened for
# writing on a fuller disk is refused: a write failing half-way can make an HDF5 file unreadable.
FREE_MARGIN = 1 << 20


def require_space(path, nbytes: int, what: str) -> None:
    """:class:`DatasetError` unless ``nbytes`` + :data:`FREE_MARGIN` are free next to ``path``."""
    check_free_space(Path(path).absolute().parent, int(nbytes) + FREE_MARGIN, what=what,
                     error=DatasetError)


def validate_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip() or "/" in name or name.startswith("."):
        raise DatasetError(f"invalid sample name {name!r}: use a non-empty name without '/' "
                           "that does not start with '.'")


def validate_file(path: Path, file: h5py.File, *, check_samples: bool = True) -> None:
    """Raise :class:`DatasetError` naming the file/sample and the rule it breaks."""
    if "labels" not in file.attrs:
        raise DatasetError(f"{path}: an HDF5 file but not a DeepSCEM dataset (no 'labels' "
                           "attribute); create datasets with 'dataset create'")
    try:
        n_labels = int(np.asarray(file.attrs["labels"]).reshape(()))
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: its 'labels' attribute is not a whole number") from None
    if n_labels < 0:
        raise DatasetError(f"{path}: its 'labels' attribute is negative ({n_labels})")
    if not check_samples:
        return
    for name, item in file.items():
        if name.startswith("."):  # an edit in progress (deepscem.dataset.pending)
            continue
        if not isinstance(item, h5py.Group):
            raise DatasetError(f"{path}: {name!r} is not a sample group; not a DeepSCEM dataset")
        check_sample(path, name, item, n_labels)


def check_sample(path: Path, name: str, group: h5py.Group, n_labels: int) -> None:
    where = f"{path}: sample {name!r}"
    shape = None
    if "shape" in group.attrs:
        shape = tuple(int(v) for v in np.atleast_1d(group.attrs["shape"]))
        if len(shape) != 3:
            raise DatasetError(f"{where}: its 'shape' attribute {shape} is not (Z, Y, X)")
    elif "image" not in group:
        raise DatasetError(f"{where} has neither an image nor a 'shape' attribute")
    labels = []
    for layer, data in group.items():
        if layer.startswith("."):  # an edit in progress (deepscem.dataset.pending)
            continue
        if not isinstance(data, h5py.Dataset):
            raise DatasetError(f"{where}: {layer!r} is a group, expected an image layer")
        if data.ndim != 3:
            raise DatasetError(f"{where}: layer {layer!r} has {data.ndim} dimensions; layers are "
                               "(Z, Y, X)")
        shape = shape or tuple(data.shape)
        if tuple(data.shape) != shape:
            raise DatasetError(f"{where}: layer {layer!r} has shape {tuple(data.shape)}, the sample "
                               f"is {shape}")
        if is_label(layer):
            labels.append(index_of(layer))
    # Datasets hold every label; prediction files hold none.
    if labels and sorted(labels) != list(range(n_labels)):
        raise DatasetError(f"{where} has label layers {sorted(labels)}, expected 0..{n_labels - 1} "
                           f"(the dataset has {n_labels} labels)")
