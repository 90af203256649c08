"""Random training patches streamed from DeepSCEM dataset files.

A :class:`PatchSampler` draws patches from every sample of one or more dataset files
(the training and the validation files are separate samplers). Each patch is read with
``Sample.read_image(region)`` / ``Sample.read_layer(layer, region)``, so only the HDF5
chunks under the patch are touched: memory does not grow with the volume, and the
image arrives already normalised to [0, 1] with its volume-wide range.

Label focus (a fraction of patches centred on a labelled voxel) uses a
:class:`ForegroundIndex` per sample: voxel counts per coarse block, computed once by
streaming over each label in strips. A focused patch picks a label uniformly (rare
labels get as many patches as common ones), a sample and a block in proportion to that
label's voxel count, and then a labelled voxel inside the block. Together that is a
uniform draw over the label's voxels, without a list of their coordinates.

Partial labels (:mod:`deepscem.dataset.annotation`): a sample with an ``annotated`` layer gets
the same kind of index over that layer. Its random patches are placed around an annotated voxel
drawn uniformly (so every patch holds some; for 2D models: an annotated slice), samples are drawn
in proportion to their annotated voxels, label focus centres on voxels both labelled and
annotated (its index counts those), and targets carry the mask as one extra last channel (the
losses split it off). A sample with nothing annotated is refused.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepscem.dataset.layers import ANNOTATED
from deepscem.errors import ConfigError, DatasetError
from deepscem.training.foreground import ForegroundIndex


@dataclass(frozen=True)
class PatchSpec:
    """Where one patch comes from: sample index, origin (Z, Y, X), and why it was drawn.

    ``focus_label`` is the label index the patch is centred on, or None for a
    uniformly random patch.
    """

    sample: int
    origin: tuple[int, int, int]
    focus_label: int | None = None


class PatchSampler:
    """Random (Z, Y, X) patches and their targets from all samples of some dataset files.

    paths: dataset files (each with at least one sample overall).
    patch: (Z, Y, X); Z = 1 for 2D models (one slice per patch).
    target: "label" (``label_XXXX``, uint8 {0, 1}), "distance" (``label_XXXX_dt``), or
    "label+boundary" (the labels, then each label's object boundaries derived on the fly,
    see :mod:`deepscem.training.boundary`: 2 x n_labels channels).
    label_focus: fraction of patches centred on a labelled voxel (0..1).
    context: slices read on either side of a 2D patch (2.5D input, patch Z must be 1): the
    image is then (1 + 2 * context, Y, X), mirrored at the ends of the volume (see
    :mod:`deepscem.dataset.context`); the target stays the centre slice.
    normalization: how grey values map to [0, 1] (:mod:`deepscem.dataset.normalization`;
    None = the dataset's min/max).
    z_fraction: (start, stop) fraction of every sample's Z range patches (their labelled
    slices) come from, e.g. (0, 0.85) for training and (0.85, 1) for held-back validation
    slices; samples too thin for that keep their whole range.
    Samples are drawn in proportion to their volume. Files stay open until :meth:`close`.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], patch: Sequence[int], *,
                 target: str = "label", label_focus: float = 0.0, role: str = "training",
                 context: int = 0, normalization: str | None = None,
                 z_fraction: tuple[float, float] | None = None) -> None:
        """Long because it opens and checks every file and sample once, with one clear error
        per rule broken, before any patch is drawn."""
        from deepscem.dataset import Dataset, label_name
        from deepscem.dataset.normalization import image_reader

        self.paths = [Path(p) for p in paths]
        self.patch = tuple(int(p) for p in patch)
        self.target = target
        self.label_focus = float(label_focus)
        self.role = role
        if not self.paths:
            raise DatasetError(f"no {role} dataset given; name at least one dataset file")
        self._datasets = [Dataset.open(p, mode="r") for p in self.paths]
        counts = {ds.n_labels for ds in self._datasets}
        if len(counts) > 1:
            found = ", ".join(f"{p.name}: {d.n_labels}" for p, d in zip(self.paths, self._datasets))
            raise DatasetError(f"the {role} datasets have different numbers of labels ({found}); "
                               "use datasets with the same labels")
        self.n_labels = counts.pop()
        self.label_names = list(self._datasets[0].label_aliases)
        self.samples = [ds.sample(name) for ds in self._datasets for name in ds.sample_names()]
        self._files = [p for p, ds in zip(self.paths, self._datasets) for _ in ds.sample_names()]
        if not self.samples:
            raise DatasetError(f"the {role} dataset {', '.join(str(p) for p in self.paths)} has no "
                               "samples; add a sample to it first")
        if self.n_labels == 0:
            raise DatasetError(f"the {role} dataset {', '.join(str(p) for p in self.paths)} holds "
                               "images only (0 labels); train on a dataset with labels")
        suffix = "_dt" if target == "distance" else ""
        self.channels = self.n_labels * (2 if target == "label+boundary" else 1)
        self.label_layers = [label_name(i) for i in range(self.n_labels)]
        self.layers = [layer + suffix for layer in self.label_layers]  # what the targets read
        for sample, path in zip(self.samples, self._files):
            self._check_sample(sample, path)
        # -- 2.5D context, normalisation, Z windows (issue 16) --
        self.context = int(context)
        if self.context < 0 or (self.context and self.patch[0] != 1):
            raise ConfigError(f"context slices need 2D patches (Z = 1) and a count >= 0; got patch "
                              f"{self.patch}, context {context}")
        self.normalization = normalization
        self._readers = [image_reader(s, normalization) for s in self.samples]
        self.z_windows = [z_window(s.shape[0], self.patch[0], z_fraction) for s in self.samples]
        # Annotated-voxel index per partially labelled sample (None: all annotated).
        self.annotated = [ForegroundIndex.build(s, [ANNOTATED]) if s.has_annotation() else None
                          for s in self.samples]
        for sample, path, index in zip(self.samples, self._files, self.annotated):
            if index is not None and index.total(0) == 0:
                raise DatasetError(
                    f"sample '{sample.name}' of {path.name} has nothing annotated (a volume to "
                    "predict or to paint); mark its labelled slices with 'run.py dataset annotated "
                    f"{path} {sample.name} --slices LIST', or leave it out of the {role} data")
        #: targets carry the annotated mask as an extra last channel (set by the trainer so
        #: the training and validation batches agree)
        self.with_mask = any(index is not None for index in self.annotated)
        volumes = np.array([math.prod(s.shape) if ix is None else ix.total(0)
                            for s, ix in zip(self.samples, self.annotated)], np.float64)
        self.weights = volumes / volumes.sum()
        self._index: list[ForegroundIndex] | None = None
        self._focus_totals: np.ndarray | None = None  # (n_samples, n_labels) labelled voxels

    def _check_sample(self, sample, path: Path) -> None:
        shape = tuple(int(s) for s in sample.shape)
        if any(p > s for p, s in zip(self.patch, shape)):
            raise ConfigError(f"patch (Z, Y, X) {self.patch} is larger than sample '{sample.name}' of "
                              f"{path.name} with shape {shape}; use a patch of at most that size")
        present = set(sample.layer_names())
        missing = [layer for layer in self.layers if layer not in present]
        if missing:
            what = ("distance maps" if self.target == "distance" else "labels")
            raise DatasetError(f"sample '{sample.name}' of {path.name} has no {what} {', '.join(missing)}; "
                               + (f"add them with 'run.py dataset distance-transform {path} all LABEL' "
                                  "or train on labels" if self.target == "distance"
                                  else "add the missing labels"))

    # -- memory ----------------------------------------------------------------------------------

    def held_layers(self, sample) -> list[str]:
        """The layers patches of ``sample`` are read from: image, targets, the labels (label
        focus, boundary targets) and the annotated mask."""
        names = ["image", *self.layers, *self.label_layers] + ([ANNOTATED] if sample.has_annotation() else [])
        return list(dict.fromkeys(names))

    def memory_needed(self, shared: dict | None = None) -> int:
        """Bytes :meth:`hold_in_memory` would take (beyond the layers already in ``shared``)."""
        shared = shared or {}
        return sum(math.prod(s.shape) * s.layer(name).dtype.itemsize
                   for s in self.samples for name in self.held_layers(s)
                   if s.held_key(name) not in shared)

    def hold_in_memory(self, budget_bytes: float, shared: dict | None = None) -> bool:
        """Read every layer patches come from whole into memory when together they take at most
        ``budget_bytes``: a patch is then a NumPy copy instead of HDF5 chunk reads (each ~0.3 ms,
        holding the GIL, so batch-building threads do not add up). What keeps batch building
        ahead of a fast GPU (bench/README.md, "Batch building on a GPU"). True when held.
        ``shared``: layers another sampler holds (:meth:`Sample.hold`), not read twice."""
        if self.memory_needed(shared) > budget_bytes:
            return False
        for sample in self.samples:
            sample.hold(self.held_layers(sample), shared)
        return True

    # -- label focus ---------------------------------------------------------------------------

    def build_index(self) -> None:
        """Count labelled voxels per block of every sample (done once; streams the labels)."""
        if self._index is not None:
            return
        self._index = [ForegroundIndex.build(s, self.label_layers, within_annotated=ix is not None)
                       for s, ix in zip(self.samples, self.annotated)]
        self._focus_totals = np.array([[ix.total(i) for i in range(self.n_labels)] for ix in self._index],
                                      np.float64).reshape(len(self.samples), self.n_labels)

    @property
    def focus_labels(self) -> list[int]:
        """Labels with at least one labelled voxel (the ones label focus can centre on)."""
        self.build_index()
        return [i for i in range(self.n_labels) if self._focus_totals[:, i].sum() > 0]

    # -- drawing -------------------------------------------------------------------------------

    @property
    def target_channels(self) -> int:
        """Channels of a target patch: one per label (two with boundary targets), plus the
        annotated mask if :attr:`with_mask`."""
        return self.channels + int(self.with_mask)

    def draw(self, rng: np.random.Generator) -> PatchSpec:
        """Choose where the next patch comes from (no pixel data read unless focused or
        partially annotated)."""
        if self.label_focus > 0 and rng.random() < self.label_focus:
            labels = self.focus_labels
            if labels:  # no labelled voxel anywhere: every patch is a random one
                label = labels[int(rng.integers(len(labels)))]
                totals = self._focus_totals[:, label]
                s = int(rng.choice(len(self.samples), p=totals / totals.sum()))
                z0, z1 = self.z_windows[s]
                for _ in range(20):  # a labelled voxel inside the sample's Z window
                    centre = self._index[s].draw(label, self.samples[s], self.label_layers[label], rng)
                    if z0 <= centre[0] < z1:
                        return PatchSpec(s, self._origin_around(s, centre), label)
        s = int(rng.choice(len(self.samples), p=self.weights))
        shape = self.samples[s].shape
        if self.annotated[s] is None:
            z0, z1 = self.z_windows[s]  # held-back validation slices (issue 16)
            origin = (int(rng.integers(z0, z1 - self.patch[0] + 1)),) + tuple(
                int(rng.integers(0, int(n) - p + 1)) for n, p in zip(shape[1:], self.patch[1:]))
            return PatchSpec(s, origin)
        # Any placement that contains an annotated voxel drawn uniformly: along an axis of size
        # 100, patch 64, voxel 10 -> origin in 0..10; voxel 90 -> origin in 27..36.
        voxel = self.annotated[s].draw(0, self.samples[s], ANNOTATED, rng)
        origin = tuple(int(rng.integers(max(0, c - p + 1), min(c, int(n) - p) + 1))
                       for c, p, n in zip(voxel, self.patch, shape))
        return PatchSpec(s, origin)

    def _region(self, spec: PatchSpec) -> tuple[slice, ...]:
        return tuple(slice(o, o + p) for o, p in zip(spec.origin, self.patch))


    def _origin_around(self, s: int, centre: tuple[int, int, int]) -> tuple[int, int, int]:
        # Centre the patch on the voxel, then slide it back inside the volume:
        # shape 100, patch 64, voxel 90 -> origin min(90 - 32, 100 - 64) = 36.
        shape = self.samples[s].shape
        lows, highs = (self.z_windows[s][0], 0, 0), (self.z_windows[s][1],) + tuple(shape[1:])
        return tuple(int(min(max(lo, c - p // 2), int(n) - p))
                     for c, p, lo, n in zip(centre, self.patch, lows, highs))

    def read(self, spec: PatchSpec) -> tuple[np.ndarray, np.ndarray]:
        """The patch: image (Z, Y, X) float32 in [0, 1] (Z = 1 + 2 * context for 2.5D),
        target (Z, Y, X, :attr:`target_channels`) float32 (labels, then the annotated mask when
        :attr:`with_mask`; Z = 1 for 2.5D: the centre slice)."""
        from deepscem.dataset.context import read_with_context

        sample = self.samples[spec.sample]
        region = self._region(spec)
        reader = self._readers[spec.sample]
        if self.context:
            image = read_with_context(reader, region, self.context, int(sample.shape[0]))
        else:
            image = reader(region)
        image = np.asarray(image, np.float32)
        target = np.empty(self.patch + (self.target_channels,), np.float32)
        for i, layer in enumerate(self.layers):
            target[..., i] = sample.read_layer(layer, region)
        if self.channels > self.n_labels:  # boundary targets (model create --boundary)
            from deepscem.training.boundary import sample_boundaries

            target[..., self.n_labels:self.channels] = sample_boundaries(sample, region,
                                                                         self.n_labels)
        if self.with_mask:
            target[..., -1] = sample.read_annotated(region)
        return image, target

    def patch_at(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, PatchSpec]:
        """Draw and read one patch: (image, target, spec)."""
        spec = self.draw(rng)
        image, target = self.read(spec)
        return image, target, spec

    def close(self) -> None:
        self._readers = []
        for sample in self.samples:
            sample.hold([])
        for ds in self._datasets:
            ds.close()
        self._datasets = []

    def __enter__(self) -> PatchSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hold_budget(gpu: bool) -> float:
    """Bytes of training data to hold in memory (:meth:`PatchSampler.hold_in_memory`): on a GPU
    ``HOLD_FRACTION`` of the memory available now; none on a CPU, which trains far slower than
    HDF5 reads feed it (and keeps its memory bound, bench/README.md "Training")."""
    if not gpu:
        return 0.0
    import psutil

    from deepscem.config import HOLD_FRACTION

    return HOLD_FRACTION * psutil.virtual_memory().available


def hold_while_budget_lasts(samplers: Sequence[PatchSampler], budget_bytes: float,
                            progress=None) -> float:
    """Hold each sampler's files in memory (:meth:`PatchSampler.hold_in_memory`) in turn while
    ``budget_bytes`` lasts (progress stage "read into memory", in datasets); returns the bytes held."""
    from deepscem.progress import emit

    held, shared = 0.0, {}  # a file opened by two samplers (held-back validation) is held once
    if budget_bytes <= 0:
        return held
    for i, sampler in enumerate(samplers):
        emit(progress, i, len(samplers), "datasets", "read into memory")
        needed = sampler.memory_needed(shared)
        if sampler.hold_in_memory(budget_bytes - held, shared):
            held += needed
    emit(progress, len(samplers), len(samplers), "datasets", "read into memory")
    return held


def z_window(depth: int, patch_z: int, fraction: tuple[float, float] | None) -> tuple[int, int]:
    """The slices [z0, z1) of a ``depth``-slice sample a ``fraction`` (start, stop) selects,
    at least ``patch_z`` deep; the whole range when the sample is too thin to split.

    Examples: depth 165, fraction (0, 0.85) -> (0, 140); (0.85, 1) -> (140, 165);
    depth 1 -> (0, 1) whatever the fraction.
    """
    if fraction is None:
        return 0, depth
    z0, z1 = (int(round(f * depth)) for f in fraction)
    if z1 - z0 < max(1, patch_z):
        return 0, depth
    return z0, z1
