"""One sample of a dataset: a group holding ``image`` and its layers, all (Z, Y, X), read by
region (:class:`Sample`); the file and its list of samples are :mod:`deepscem.dataset.store`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from deepscem.dataset import annotation, normalization
from deepscem.dataset import voxel_size as voxel_size_attr
from deepscem.dataset.format import (
    layer_options,
    slab_depth,
)
from deepscem.dataset.layers import is_label, is_prediction
from deepscem.dataset.pending import is_hidden
from deepscem.errors import DatasetError
from deepscem.outputs import file_identity

Region = tuple[slice, ...] | None


class Sample(annotation.SampleAnnotation):
    """One sample of a :class:`~deepscem.dataset.store.Dataset`: a group holding ``image`` and its
    layers, all (Z, Y, X).

    Partial-label methods (``annotated_fraction``, ``read_annotated``, ``mark_annotated``...)
    come from :class:`deepscem.dataset.annotation.SampleAnnotation`."""

    def __init__(self, dataset: Any, name: str) -> None:  # a deepscem.dataset.store.Dataset
        self.dataset = dataset
        self.name = name
        self.group: h5py.Group = dataset.file[name]
        if "shape" in self.group.attrs:
            self.shape = tuple(int(v) for v in self.group.attrs["shape"])
        else:
            self.shape = tuple(self.group["image"].shape)
        self._range: tuple[float, float] | None = None
        self._held: dict[str, np.ndarray] = {}  # layers read whole into memory (hold())

    def __repr__(self) -> str:
        return f"Sample({self.name!r}, shape={self.shape})"

    @property
    def voxel_size(self) -> tuple[float, float, float] | None:
        """Physical size of a voxel (Z, Y, X) in nm, or None when unknown (attr ``voxel_size``)."""
        return voxel_size_attr.read(self.group)

    def set_voxel_size(self, values: Sequence[float] | None) -> None:
        """Set the voxel size (Z, Y, X) in nm (three positive numbers); None makes it unknown."""
        self.dataset._require_writable()
        voxel_size_attr.write(self.group, values)

    def layer_names(self) -> list[str]:
        """``image`` first, then labels, predictions, then any other layer (e.g. ``_dt``).

        Hidden work layers (names starting with ".", e.g. a half-written ``.annotated.part``
        left by a killed command) are not listed."""
        names = sorted(n for n in self.group.keys() if not is_hidden(n))
        rank = {n: (0 if n == "image" else 1 if is_label(n) else 2 if is_prediction(n) else 3)
                for n in names}
        return sorted(names, key=lambda n: (rank[n], n))

    def label_layers(self) -> list[str]:
        return sorted(n for n in self.group.keys() if is_label(n))

    def prediction_layers(self) -> list[str]:
        return sorted(n for n in self.group.keys() if is_prediction(n))

    def layer(self, layer: str) -> h5py.Dataset:
        """The raw HDF5 dataset of ``layer`` (for block-wise readers and writers)."""
        if layer not in self.group or not isinstance(self.group[layer], h5py.Dataset):
            raise DatasetError(f"{self.dataset.path}: sample {self.name!r} has no layer {layer!r} "
                               f"(it has {', '.join(self.layer_names()) or 'none'})")
        return self.group[layer]

    @property
    def image_range(self) -> tuple[float, float]:
        """Volume-wide (lo, hi) used to normalise the image to [0, 1].

        Read from attrs ``norm_min``/``norm_max``; for files of the original tool (float32 already
        in [0, 1], no attrs) the data min/max, computed once slab by slab and cached.
        """
        if self._range is None:
            image = self.layer("image")
            if "norm_min" in image.attrs and "norm_max" in image.attrs:
                self._range = (float(image.attrs["norm_min"]), float(image.attrs["norm_max"]))
            else:
                self._range = normalization.streamed_range(
                    lambda z0, z1: image[z0:z1], self.shape[0],
                    slab_depth(self.shape, image.dtype.itemsize))
        return self._range

    def read_image(self, region: Region = None) -> np.ndarray:
        """The image (or ``region``, a tuple of slices over Z, Y, X) as float32 in [0, 1].

        Normalised with the volume-wide :attr:`image_range`, never per patch, so contrast is the
        same everywhere. A constant image (or the original's NaN image) reads as zeros.
        """
        return normalization.scale(self.read_layer("image", region), *self.image_range)

    def read_layer(self, layer: str, region: Region = None) -> np.ndarray:
        """``layer`` (or a region of it) in its stored dtype; only the chunks it touches are read
        (a copy from memory for a layer :meth:`hold` read whole)."""
        held = self._held.get(layer)
        if held is not None:
            return held.copy() if region is None else held[tuple(region)].copy()
        data = self.layer(layer)
        return data[()] if region is None else data[tuple(region)]

    def hold(self, layers: Sequence[str], shared: dict | None = None) -> None:
        """Read ``layers`` whole into memory: later reads of them are NumPy copies instead of HDF5
        chunk reads (for a reader that draws many small regions, e.g. training on a fast GPU).
        Writes to the file do not reach the copies: for read-only use. ``hold([])`` lets go.

        ``shared``: layers already held for this sample through another handle (training and
        held-back validation open the same file twice), by :meth:`held_key`; used instead of
        reading them again, and filled in with what is read."""
        shared = {} if shared is None else shared
        held = {}
        for name in layers:
            key = self.held_key(name)
            if key not in shared:
                shared[key] = self.layer(name)[()]
            held[name] = shared[key]
        self._held = held

    def held_key(self, layer: str) -> tuple:
        """(file, sample, layer): what :meth:`hold` shares between handles on the same file
        (the file as :func:`deepscem.outputs.same_file` tells it, links included)."""
        return file_identity(self.dataset.path), self.name, layer

    def create_layer(self, layer: str, dtype, *, fill=0, overwrite: bool = False) -> h5py.Dataset:
        """A new chunked layer of the sample's shape (uint8 compressed, floats uncompressed)."""
        self.dataset._require_writable()
        if "/" in layer or not layer:
            raise DatasetError(f"invalid layer name {layer!r}")
        if layer in self.group:
            if not overwrite:
                raise DatasetError(f"{self.dataset.path}: sample {self.name!r} already has a layer "
                                   f"{layer!r}; remove it first or allow overwriting")
            del self.group[layer]
        return self.group.create_dataset(layer, shape=self.shape, dtype=dtype, fillvalue=fill,
                                         **layer_options(self.shape, np.dtype(dtype), layer))
