"""Instance segmentation: one id per object, out of core (blocks, halo, stitching).

Two ways to split a foreground mask (Z, Y, X) into objects:

* **components**: connected components of ``mask > threshold`` (face connectivity, as
  :func:`deepscem.evaluation.metrics.connected_objects`); touching objects stay one;
* **watershed**: seeds where the object is certain (``mask > threshold`` and a predicted
  boundary below ``seed_threshold``, or a predicted signed distance map above it), one id
  per connected seed, then a seeded watershed of the boundary map (or of the negated
  distance) inside the mask: the boundary between two touching objects becomes the
  watershed line, as in pytorch_connectomics' U3D-BC. Mask voxels that no seed reaches
  become objects of their own.

Out of core. The volume is cut into blocks (``block``, Z Y X voxels); each block is read with
a ``halo`` of voxels on every side (watershed only), labelled, and only its core written, with
provisional ids unique over the whole volume. Seeds are themselves labelled block by block
first, so a seed crossing a block face has one id everywhere. While blocks are written, the
label planes on either side of every block face are compared: pairs of ids facing each other
are the same object and are joined (scipy's sparse connected components on the pair graph);
a final pass rewrites every block with consecutive ids 1..n. Memory: a few blocks (about 40
bytes per voxel of a block with its halo), the block faces of one layer of blocks, and one
id table (4 bytes per provisional id), whatever the volume size.

Components computed blockwise equal the whole-volume result exactly (up to renumbering);
the watershed equals it where the halo holds every seed that floods into the block.
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepscem import progress as prog
from deepscem.errors import ConfigError

Region = tuple[slice, slice, slice]
#: Default block (Z, Y, X): a multiple of the dataset chunk (4, 128, 128), ~4.7 M voxels, so a
#: block with its halo and the watershed's work arrays stay near 300 MB.
BLOCK = (32, 384, 384)
HALO = 16


@dataclass(frozen=True)
class InstanceConfig:
    """How to label instances.

    method: "components", "watershed" or "auto" (watershed when a boundary or distance map
    is given). threshold: foreground is ``mask > threshold`` (float masks; integer masks:
    non-zero). seed_threshold: boundary path, seeds where ``boundary < seed_threshold``;
    distance path, seeds where ``distance > seed_threshold`` (tanh-scaled maps). min_size:
    objects of fewer voxels are removed (0 keeps all). min_seed_size: smaller seeds are
    ignored (their voxels join a neighbour). block, halo: out-of-core geometry in voxels.
    """

    method: str = "auto"
    threshold: float = 0.5
    seed_threshold: float = 0.5
    min_size: int = 0
    min_seed_size: int = 8
    block: tuple[int, int, int] = BLOCK
    halo: int = HALO

    def __post_init__(self) -> None:
        if self.method not in ("auto", "components", "watershed"):
            raise ConfigError(f"instance method must be auto, components or watershed, got "
                              f"{self.method!r}")
        if int(self.min_size) < 0 or int(self.min_seed_size) < 0 or int(self.halo) < 0:
            raise ConfigError("min_size, min_seed_size and halo are numbers of voxels >= 0")
        if len(self.block) != 3 or min(int(b) for b in self.block) < 1:
            raise ConfigError(f"block must be three sizes >= 1 (Z, Y, X), got {self.block}")


@dataclass(frozen=True)
class InstanceResult:
    """What :func:`label_instances` wrote: objects, method used, seeds (watershed only)."""

    objects: int
    method: str
    seeds: int = 0


class _Maps:
    """Reads, for a region, the foreground, the seed mask and the watershed elevation."""

    def __init__(self, mask: Any, boundary: Any, distance: Any, config: InstanceConfig) -> None:
        self.mask, self.boundary, self.distance = mask, boundary, distance
        self.config = config

    def foreground(self, region: Region) -> np.ndarray:
        if self.distance is not None and self.mask is None:
            return np.asarray(self.distance[region]) > 0
        values = np.asarray(self.mask[region])
        if np.issubdtype(values.dtype, np.floating):
            return values > self.config.threshold
        return values != 0

    def seeds(self, region: Region) -> np.ndarray:
        t = self.config.seed_threshold
        if self.boundary is not None:
            return self.foreground(region) & (np.asarray(self.boundary[region]) < t)
        return self.foreground(region) & (np.asarray(self.distance[region]) > t)

    def elevation(self, region: Region) -> np.ndarray:
        if self.boundary is not None:
            return np.asarray(self.boundary[region], np.float32)
        return -np.asarray(self.distance[region], np.float32)


def label_instances(mask: Any, out: Any, *, boundary: Any = None, distance: Any = None,
                    config: InstanceConfig | None = None,
                    progress: prog.ProgressCallback | None = None,
                    cancel: prog.CancelToken | None = None) -> InstanceResult:
    """Write object ids (uint32, 0 = background, 1..n) of ``mask`` into ``out``.

    mask: (Z, Y, X) float probabilities or integer {0, 1} (NumPy array or h5py dataset; may be
    None with a distance map, whose positive part is then the foreground). boundary: optional
    (Z, Y, X) float boundary probabilities; distance: optional signed distance map (positive
    inside, e.g. tanh-scaled). out: writable (Z, Y, X) unsigned integer array of the same
    shape. Progress counts blocks over all passes.
    """
    config = config or InstanceConfig()
    source = mask if mask is not None else distance
    if source is None:
        raise ConfigError("label_instances needs a mask or a distance map")
    shape = tuple(int(s) for s in source.shape)
    for name, layer in (("boundary", boundary), ("distance", distance), ("output", out)):
        if layer is not None and tuple(layer.shape) != shape:
            raise ConfigError(f"the {name} map has shape {tuple(layer.shape)}, the mask {shape}")
    method = config.method
    if method == "auto":
        method = "watershed" if boundary is not None or distance is not None else "components"
    if method == "watershed" and boundary is None and distance is None:
        raise ConfigError("the watershed needs a boundary or distance map (a model trained with "
                          "boundary targets); use the components method for a plain mask")
    maps = _Maps(mask, boundary, distance, config)
    blocks = list(_blocks(shape, config.block))
    steps = [0, len(blocks) * (4 if method == "watershed" else 2)]

    def tick() -> None:
        prog.check(cancel)
        steps[0] += 1
        prog.emit(progress, steps[0], steps[1], "blocks", f"instances ({method})")

    if method == "components":
        stitched = _label_blocks(shape, blocks, out, lambda r: ndlabel(maps.foreground(r)), tick)
        n = _relabel(out, blocks, stitched, config.min_size, tick)
        return InstanceResult(n, method)
    with scratch_layer(shape) as seeds:
        stitched = _label_blocks(shape, blocks, seeds, lambda r: ndlabel(maps.seeds(r)), tick)
        n_seeds = _relabel(seeds, blocks, stitched, config.min_seed_size, tick)
        flood = _Flood(maps, seeds, shape, int(config.halo), n_seeds)
        stitched = _label_blocks(shape, blocks, out, flood, tick, seeded=n_seeds)
        n = _relabel(out, blocks, stitched, config.min_size, tick)
    return InstanceResult(n, method, n_seeds)


def ndlabel(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Face-connected components of a bool array: (uint32 ids 1..n, n)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, output=np.uint32)
    return labels, int(n)


class _Flood:
    """Seeded watershed of one block read with a halo; returns core ids and new-object count.

    Seed ids (1..n_seeds) are global already. Mask voxels no seed reaches get ids 1..k of
    their own connected components; the caller offsets them past every seed id."""

    def __init__(self, maps: _Maps, seeds: Any, shape, halo: int, n_seeds: int) -> None:
        self.maps, self.seeds, self.shape, self.halo = maps, seeds, shape, halo
        self.n_seeds = n_seeds

    def __call__(self, core: Region) -> tuple[np.ndarray, int, np.ndarray]:
        from skimage.segmentation import watershed

        window = tuple(slice(max(0, s.start - self.halo), min(n, s.stop + self.halo))
                       for s, n in zip(core, self.shape))
        inner = tuple(slice(c.start - w.start, c.stop - w.start) for c, w in zip(core, window))
        fg = self.maps.foreground(window)
        markers = np.asarray(self.seeds[window]).astype(np.int32, copy=False)
        flooded = watershed(self.maps.elevation(window), markers=markers, mask=fg)
        ids = flooded[inner].astype(np.uint32)
        rest, k = ndlabel(fg[inner] & (ids == 0))
        return ids, k, rest


def _blocks(shape, block) -> Iterator[Region]:
    """Block cores in Z, Y, X order: shape (70, 500, 500), block (32, 384, 384) -> 3 x 2 x 2."""
    ranges = [range(0, n, int(b)) for n, b in zip(shape, block)]
    for z, y, x in itertools.product(*ranges):
        yield tuple(slice(o, min(n, o + int(b))) for o, n, b in zip((z, y, x), shape, block))


class _Stitched:
    """Provisional ids written so far: voxel counts per id and id pairs facing across faces."""

    def __init__(self, seeded: int) -> None:
        self.seeded = seeded  # ids 1..seeded are seed ids (never joined with one another)
        self.next = seeded + 1
        self.sizes = np.zeros(max(1024, seeded + 1), np.int64)
        self.pairs: list[np.ndarray] = []  # (n, 3): id a, id b, voxels in contact

    def count(self, ids: np.ndarray) -> None:
        counts = np.bincount(ids.ravel())
        if len(counts) > len(self.sizes):
            self.sizes = np.concatenate([self.sizes, np.zeros(len(counts) * 2 - len(self.sizes),
                                                              np.int64)])
        self.sizes[:len(counts)] += counts

    def face(self, low: np.ndarray, high: np.ndarray) -> None:
        """Record the id pairs of two facing planes (equal shapes)."""
        touching = (low != 0) & (high != 0) & (low != high)
        if touching.any():
            pair = np.stack([low[touching], high[touching]], 1).astype(np.int64)
            uniq, counts = np.unique(pair, axis=0, return_counts=True)
            self.pairs.append(np.column_stack([uniq, counts]))


def _label_blocks(shape, blocks: list[Region], out: Any, label, tick, *,
                  seeded: int = 0) -> _Stitched:
    """Label every block with ``label(core) -> (ids, n)`` (or the watershed's
    ``(seed ids, n_new, new ids)``), write the core with globally unique provisional ids, and
    record the id pairs facing each other across block faces."""
    stitched = _Stitched(seeded)
    faces: dict[tuple[int, tuple[int, int, int]], np.ndarray] = {}
    for core in blocks:
        result = label(core)
        if len(result) == 3:  # watershed: seed ids kept, unreached objects numbered after
            ids, n, rest = result
            ids[rest != 0] = rest[rest != 0] + np.uint32(stitched.next - 1)
        else:
            ids, n = result
            ids[ids != 0] += np.uint32(stitched.next - 1)
        stitched.next += n
        out[core] = ids
        stitched.count(ids)
        origin = tuple(s.start for s in core)
        for axis in range(3):
            below = list(origin)
            below[axis] -= 1
            key = (axis, tuple(below))
            if key in faces:
                # the lower neighbour's last plane, restricted to this block's extent
                stitched.face(faces.pop(key), np.take(ids, 0, axis=axis))
            # this block's last plane waits for its upper neighbour (none at the volume's end)
            if core[axis].stop < shape[axis]:
                faces[(axis, tuple(o if a != axis else core[axis].stop - 1
                                   for a, o in enumerate(origin)))] = \
                    np.take(ids, ids.shape[axis] - 1, axis=axis).copy()
        tick()
    return stitched


def _roots(stitched: _Stitched) -> np.ndarray:
    """Map every provisional id to its object's representative id (same array index)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = stitched.next
    roots = np.arange(n, dtype=np.int64)
    if not stitched.pairs:
        return roots
    pairs = np.concatenate(stitched.pairs)
    a, b, contact = pairs[:, 0], pairs[:, 1], pairs[:, 2]
    seeded = stitched.seeded
    free = (a > seeded) & (b > seeded)  # two unseeded pieces: the same object
    graph = coo_matrix((np.ones(int(free.sum())), (a[free], b[free])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    # an unseeded piece touching seeded objects joins the one it shares most voxels with
    mixed = (a > seeded) != (b > seeded)
    if seeded and mixed.any():
        piece = np.where(a > seeded, a, b)[mixed]
        seed = np.where(a > seeded, b, a)[mixed]
        comp = component[piece]
        order = np.lexsort((-contact[mixed], comp))  # by component, most contact first
        comp, seed = comp[order], seed[order]
        first = np.r_[True, comp[1:] != comp[:-1]]
        target = np.full(n, -1, np.int64)
        target[comp[first]] = seed[first]
        roots = np.where(target[component] >= 0, target[component], component + n)
        roots[:seeded + 1] = np.arange(seeded + 1)
        return roots
    roots = component.astype(np.int64)
    roots[:seeded + 1] = np.arange(seeded + 1)  # seeds (and 0) keep their own ids
    if seeded:
        roots[seeded + 1:] = component[seeded + 1:] + n
    return roots


def _relabel(out: Any, blocks: list[Region], stitched: _Stitched, min_size: int, tick) -> int:
    """Rewrite ``out`` with consecutive ids 1..n (objects below ``min_size`` -> 0); returns n."""
    roots = _roots(stitched)
    sizes = stitched.sizes[:stitched.next]
    if len(sizes) < stitched.next:
        sizes = np.pad(sizes, (0, stitched.next - len(sizes)))
    uniq, inverse = np.unique(roots, return_inverse=True)
    root_sizes = np.bincount(inverse, weights=sizes, minlength=len(uniq))
    keep = root_sizes >= max(1, int(min_size))
    keep[inverse[0]] = False  # background
    final = np.zeros(len(uniq), np.uint32)
    final[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)
    lut = final[inverse]
    lut[0] = 0
    for core in blocks:
        ids = np.asarray(out[core])
        if ids.any():
            out[core] = lut[ids]
        tick()
    return int(keep.sum())


class scratch_layer:
    """A temporary uint32 (Z, Y, X) array on disk (HDF5 in the temp folder), for seed ids."""

    def __init__(self, shape) -> None:
        self.shape = shape

    def __enter__(self):
        import h5py

        from deepscem.dataset.format import chunk_shape

        fd, self.path = tempfile.mkstemp(suffix=".hdf5", prefix="deepscem-seeds-")
        os.close(fd)
        self.file = h5py.File(self.path, "w")
        return self.file.create_dataset("seeds", shape=self.shape, dtype=np.uint32,
                                        chunks=chunk_shape(self.shape), compression="lzf")

    def __exit__(self, *exc: object) -> None:
        self.file.close()
        os.unlink(self.path)


def block_voxels(config: InstanceConfig) -> int:
    """Voxels of one block with its halo (what bounds memory)."""
    return math.prod(int(b) + 2 * int(config.halo) for b in config.block)
