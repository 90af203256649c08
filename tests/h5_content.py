"""Hash of an HDF5 file's logical content (names, attributes, data), for "left unchanged" checks."""

import hashlib
from pathlib import Path

import h5py
import numpy as np


def logical_hash(path: Path) -> str:
    digest = hashlib.sha256()

    def add_attrs(obj):
        for key in sorted(obj.attrs):
            digest.update(key.encode())
            digest.update(repr(np.asarray(obj.attrs[key]).tolist()).encode())

    def visit(name, obj):
        digest.update(name.encode())
        add_attrs(obj)
        if isinstance(obj, h5py.Dataset):
            digest.update(str((obj.shape, obj.dtype)).encode())
            digest.update(np.ascontiguousarray(obj[()]).tobytes())

    with h5py.File(path, "r") as f:
        add_attrs(f)
        f.visititems(visit)
    return digest.hexdigest()


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
