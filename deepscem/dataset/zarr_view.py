"""An OME-Zarr image seen as a read-only dataset of one sample (for viewing and predicting).

``Dataset.open("cells.ome.zarr")`` returns a :class:`ZarrDataset`: the same reading API as
:class:`~deepscem.dataset.store.Dataset` / :class:`~deepscem.dataset.store.Sample` (sample
names, shape, layer names, ``read_layer``, ``read_image``, ``image_range``), so the GUI's
dataset list, viewer and prediction take OME-Zarr images without knowing it. Nothing can be
written (a :class:`DatasetError` says to add it to a dataset first).

Layers: the root image is ``image``; NGFF labels and ``predictions/`` images become layers.
Names that follow DeepSCEM's layer rule (``label_0000``, ``prediction_0000``, written by
``dataset export``) are kept; the outputs of ``predict ... OUT.ome.zarr`` become
``prediction_0000``...; other tools' labels become ``label_0000``... in their order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from deepscem.dataset import ome_zarr
from deepscem.dataset.layers import kind_of, label_name, prediction_name
from deepscem.errors import DatasetError, InputFileError

#: Up to this many bytes the normalisation range is measured on the whole image; above, on the
#: smallest pyramid level (a viewer's estimate: a full pass over a TB volume takes hours).
EXACT_RANGE_BYTES = 2 * 2**30
_RANGES: dict[tuple[str, float], tuple[float, float]] = {}


class ZarrDataset:
    """A read-only, one-sample view of the OME-Zarr image at ``path``."""

    writable = False

    def __init__(self, path: Path) -> None:
        import zarr

        self.path = Path(path)
        try:
            self.root = zarr.open_group(str(path), mode="r")
        except Exception as err:  # noqa: BLE001  (zarr raises many types on damaged metadata)
            raise DatasetError(f"{path}: not a readable OME-Zarr image ({err})") from None
        meta = ome_zarr.multiscales(dict(self.root.attrs))
        if not meta:
            raise DatasetError(f"{path}: a zarr folder but not an OME-Zarr image (no multiscales)")
        self.meta = meta
        self.info = dict(self.root.attrs.get("deepscem", {}) or {})
        self._sample = ZarrSample(self)

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(".zarr").removesuffix(".ome")

    @property
    def n_labels(self) -> int:
        return len([n for n in self._sample.layer_names() if kind_of(n) == "label"])

    @property
    def label_aliases(self) -> list[str]:
        return list(self.info.get("names") or [])[:self.n_labels] or \
            [f"label {i}" for i in range(self.n_labels)]

    def sample_names(self) -> list[str]:
        return [self._sample.name]

    def sample(self, name: str) -> ZarrSample:
        if name != self._sample.name:
            raise DatasetError(f"{self.path}: no sample {name!r} (an OME-Zarr image has one: "
                               f"{self._sample.name!r})")
        return self._sample

    def __contains__(self, name: object) -> bool:
        return name == self._sample.name

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        return iter([self._sample])

    def close(self) -> None:
        pass

    def __enter__(self) -> ZarrDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ZarrDataset({str(self.path)!r})"


class ZarrSample:
    """The image of a :class:`ZarrDataset` and its layers, all (Z, Y, X) level-0 arrays."""

    def __init__(self, dataset: ZarrDataset) -> None:
        self.dataset = dataset
        self.name = str(dataset.info.get("sample") or dataset.name)
        source = ome_zarr.open_image(dataset.path)
        self._image = source
        self.shape = tuple(int(s) for s in source.shape)
        self.voxel_size = source.voxel_size
        self._layers = {"image": source}
        self._layers.update(self._find_layers())

    def _find_layers(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        root, ours = self.dataset.root, self.dataset.info.get("names") is not None
        groups = [("labels", list(root["labels"].attrs.get("labels", [])) if "labels" in root
                   else []),
                  ("predictions", sorted(root["predictions"].group_keys()) if "predictions" in root
                   else [])]
        for place, names in groups:
            for i, name in enumerate(names):
                try:
                    source = ome_zarr.open_image(self.dataset.path / place / name)
                except InputFileError:
                    continue
                if tuple(source.shape) != self.shape:
                    continue  # another resolution than the image: not overlaid
                if kind_of(name) in ("label", "prediction", "instance", "distance"):
                    layer = name
                elif ours:
                    layer = prediction_name(i)
                else:
                    layer = label_name(len([k for k in found if kind_of(k) == "label"]))
                found[layer] = source
        return found

    def __repr__(self) -> str:
        return f"ZarrSample({self.name!r}, shape={self.shape})"

    def layer_names(self) -> list[str]:
        order = {"image": 0, "label": 1, "prediction": 2}
        return sorted(self._layers, key=lambda n: (order.get(kind_of(n), 3), n))

    def label_layers(self) -> list[str]:
        return [n for n in self.layer_names() if kind_of(n) == "label"]

    def prediction_layers(self) -> list[str]:
        return [n for n in self.layer_names() if kind_of(n) == "prediction"]

    def layer(self, layer: str) -> Any:
        if layer not in self._layers:
            raise DatasetError(f"{self.dataset.path}: no layer {layer!r} (it has "
                               f"{', '.join(self.layer_names())})")
        return self._layers[layer].array

    def read_layer(self, layer: str, region=None) -> np.ndarray:
        source = self._layers.get(layer)
        if source is None:
            self.layer(layer)  # the error
        region = region or tuple(slice(0, s) for s in self.shape)
        return source.read_region(tuple(region))

    @property
    def image_range(self) -> tuple[float, float]:
        """The range the image is normalised with: the one stored by DeepSCEM, else measured
        (on the smallest pyramid level for images over :data:`EXACT_RANGE_BYTES`)."""
        stored = self.dataset.info.get("value_range") or self.dataset.info.get("image_range")
        if stored:
            return float(stored[0]), float(stored[1])
        key = (str(self.dataset.path), os.stat(self.dataset.path).st_mtime)
        if key not in _RANGES:
            from deepscem.dataset.volumes import volume_range

            source = self._image
            if int(np.prod(self.shape)) * source.dtype.itemsize > EXACT_RANGE_BYTES:
                last = self.dataset.meta[0]["datasets"][-1]["path"]
                source = ome_zarr.open_image(self.dataset.path / last)
            _RANGES[key] = volume_range(source)
        return _RANGES[key]

    def read_image(self, region=None) -> np.ndarray:
        """The image (or ``region``) as float32 in [0, 1], normalised with :attr:`image_range`."""
        from deepscem.dataset import normalization

        return normalization.scale(self.read_layer("image", region), *self.image_range)

    def create_layer(self, *args: Any, **kwargs: Any) -> Any:
        raise DatasetError(f"{self.dataset.path} is an OME-Zarr image, opened read-only; add it "
                           "to a dataset (dataset add-sample FILE NAME IMAGE.ome.zarr) to edit it")
