"""A model set up for tiled prediction (:class:`Predictor`) and in-memory volume prediction.

A :class:`Predictor` is set up once per model (tile shape rules, test-time augmentation)
and reused for every volume. For each volume it walks a :class:`~deepscem.inference.tiling.TileGrid`
in Z order, sends batches of tiles through ``model.predict_on_batch`` (one compiled forward
call per batch; never a per-tile ``model.predict``), blends the outputs in a Z-slab
accumulator and writes each finished slab into caller-supplied arrays
(:mod:`deepscem.inference.slab_writer`), so peak memory is about
``tile_z x Y x X x outputs x 4`` bytes plus one batch, whatever the volume depth. A 2D model
sees (1, ty, tx) tiles: slice by slice, several tiles per batch.

Other jobs live beside it: :mod:`~deepscem.inference.dataset_prediction` (a whole dataset
file, ``predict_dataset``, importable from here too), :mod:`~deepscem.inference.blocks`
(blocks of a volume, each blended exactly as in one pass), :mod:`~deepscem.inference.volume_job`
(any input volume into .hdf5 / .ome.zarr / .tif, resumable) and
:mod:`~deepscem.inference.distributed` (the same blocks on a Dask cluster).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from deepscem import progress as prog
from deepscem.config import TTA_TRANSFORMS, PredictConfig
from deepscem.dataset.context import context_reader, model_context
from deepscem.errors import DeepScemWarning, ModelError
from deepscem.inference.slab_writer import RowWindow, SlabWriter
from deepscem.inference.tile_choice import auto_batch, auto_grid
from deepscem.inference.tiling import BlendingAccumulator, TileGrid, batched, make_grid, read_tile
from deepscem.models.introspection import (
    SINGLE_SOFTMAX_NOTE,
    ModelInfo,
    check_grey_input,
    model_dimension,
    output_channels,
    single_softmax,
    tile_multiple,
)
from deepscem.postprocessing.zsmooth import ZSmoother, z_radius

Reader = Callable[[tuple[slice, slice, slice]], np.ndarray]

#: Default prediction tile (Z, Y, X) when the config gives none: larger than a typical
#: training patch, as the original DeepSCEM's manual advises (no gradients at prediction time),
#: clamped to the volume.
DEFAULT_TILE_2D = (1, 512, 512)
DEFAULT_TILE_3D = (32, 256, 256)
#: Largest Z-slab blending buffer before a volume is predicted in Y bands (see Predictor.bands).
BUFFER_BYTES = 512 * 2**20


class Predictor:
    """A model set up for tiled prediction; reuse it for every volume.

    model: a Keras model, 2D (B, Y, X, 1) -> (B, Y, X, C) or 3D (B, Z, Y, X, 1) ->
    (B, Z, Y, X, C). info: its ModelInfo (or None: dimension and depth are inferred).
    """

    def __init__(self, model: Any, info: ModelInfo | None = None,
                 config: PredictConfig | None = None, *, forward: Any = None) -> None:
        self.model = model
        self.config = config or PredictConfig()
        # (engine, precision) that runs the forward pass, for the "device:" line
        self.engine = tuple(getattr(forward, "engine", ("custom", "")))
        self.context = 0  # 2.5D slices per side (issue 16), set below for Keras models
        self.normalization = getattr(info, "normalization", None)  # replayed by predict_dataset
        if model is None:  # an imported model (e.g. bioimage.io): ``forward`` and ``info`` say all
            self.dim, self.outputs, self._softmax1 = int(info.dimension), int(info.outputs), False
            self.multiple = ((1,) if self.dim == 2 else ()) + (int(info.tile_multiple),) * self.dim
            self.tile = self._tile_shape(info)
            self._tile_filters = int(getattr(info, "filters", 16))
            self._forward = forward
            # one grey channel (or a 2.5D model's slices); the package's own preprocessing
            # replaces DeepSCEM's mapping
            self.context = int(getattr(info, "context", 0) or 0) if self.dim == 2 else 0
            self.normalization = None
            return
        self.dim = model_dimension(model, info)
        self.outputs = output_channels(model)
        check_grey_input(model)  # one grey channel, or 1 + 2c slices for a 2.5D model
        # 2.5D (issue 16): a 2D model with 1 + 2c input channels sees slices z-c..z+c
        self.context = model_context(model) if self.dim == 2 else 0
        if forward is None:
            from deepscem.inference import engines

            self.engine = engines.resolve(self.config.engine, self.config.precision)
            forward = engines.make_forward(model, *self.engine)
        self._forward = forward
        self._softmax1 = single_softmax(model, info)
        if self._softmax1:
            warnings.warn(SINGLE_SOFTMAX_NOTE, DeepScemWarning, stacklevel=2)
        m = tile_multiple(model, info)
        self.multiple = (1, m, m) if self.dim == 2 else (m, m, m)
        self.tile = self._tile_shape(info)
        self._tile_filters = int(getattr(getattr(info, "unet", None), "filters", 16))

    def _tile_shape(self, info: ModelInfo | None) -> tuple[int, int, int]:
        patch = self.config.patch
        if patch is None:
            train = info.patch_size if info is not None else None
            base = DEFAULT_TILE_2D if self.dim == 2 else DEFAULT_TILE_3D
            # Y, X: at least twice the training patch; Z (3D): at least the training patch.
            patch = base if not train else tuple(
                max(b, (2 if i else 1) * int(t)) for i, (b, t) in enumerate(zip(base, train)))
        patch = tuple(int(p) for p in patch)
        # A 2D model sees one slice at a time: the Z size of the tile is always 1 (a Z given
        # for a 2D model, as the original's dialog asked for, is ignored).
        return (1, *patch[1:]) if self.dim == 2 else patch  # type: ignore[return-value]

    def grid(self, shape_zyx: Sequence[int]) -> TileGrid:
        """The tile grid this predictor uses for a volume of ``shape_zyx``.

        Default (overlap None): see :func:`auto_grid`. With an explicit overlap and the default
        tile, an axis up to 1.5 tiles long is taken whole (one tile instead of two
        mostly-overlapping ones): Lucchi's 512 x 640 slices -> one 512 x 640 tile.
        """
        if self.config.overlap is None:  # the default: tiles and seams sized for this volume
            tile, overlap = auto_grid(shape_zyx, self.tile, self.multiple, self.config,
                                      self._tile_filters)
            return make_grid(tuple(shape_zyx), tile, overlap, self.multiple)  # type: ignore[arg-type]
        tile = self.tile
        if self.config.patch is None:
            tile = tuple(s if s <= 1.5 * t else t for s, t in zip(shape_zyx, tile))
        return make_grid(tuple(shape_zyx), tile, self.config.overlap,  # type: ignore[arg-type]
                         self.multiple)

    def batch_size(self, grid: TileGrid) -> int:
        """Tiles per forward pass: the config's, lowered by the default tiling when its big
        tiles would pass the memory budget (tile_choice.auto_batch)."""
        if self.config.overlap is not None:
            return int(self.config.batch_size)
        return auto_batch(grid.tile_shape, self.config, self._tile_filters)

    def forward(self, tiles: np.ndarray) -> np.ndarray:
        """Model output for a batch of tiles (B, tz, ty, tx) float32 -> (B, tz, ty, tx, C)
        float32, averaged over the config's TTA transforms in the YX plane when TTA is on
        (config.TTA_TRANSFORMS: 2, 4 or 8 rotations / flips)."""
        x = tiles  # 2D: (B, slices, ty, tx), the slices (1, or 1 + 2c for 2.5D) become channels
        if not self.config.tta:
            y = self._run(x)
        else:
            transforms = TTA_TRANSFORMS[self.config.tta]
            spatial = x.shape[2:] if self.dim == 2 else x.shape[1:]
            y = np.zeros(x.shape[:1] + spatial + (self.outputs,), np.float32)
            for k, flip in transforms:
                y += self.transformed(x, k, flip)
            y /= len(transforms)
        return y[:, None] if self.dim == 2 else y

    def transformed(self, x: np.ndarray, k: int, flip: bool) -> np.ndarray:
        """The model's output for ``x`` turned ``k`` quarter turns in YX (and X flipped),
        turned back onto ``x``'s grid: one TTA transform (bench/tta.py scores them one by one)."""
        t = np.rot90(x, k, axes=(-2, -1))
        t = t[..., ::-1] if flip else t
        out = self._run(np.ascontiguousarray(t))
        out = out[..., ::-1, :] if flip else out
        return np.rot90(out, -k, axes=(-3, -2))

    def _run(self, x: np.ndarray) -> np.ndarray:
        x = self._channels_last(x)
        if self._softmax1:  # said once in __init__; Keras would repeat it at every trace
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "You are using a softmax", UserWarning)
                out = self._forward(x)
        else:
            out = self._forward(x)
        if isinstance(out, (list, tuple)) and len(out) == 1:  # a model with one output in a list
            out = out[0]
        out = np.asarray(out, dtype=np.float32)
        if out.shape[:-1] != x.shape[:-1] or out.shape[-1] != self.outputs:
            engine = " ".join(self.engine).strip()
            raise ModelError(f"the {engine} engine returned shape {out.shape} for tiles of shape "
                             f"{x.shape} (expected {x.shape[:-1] + (self.outputs,)}): the model "
                             "must map each tile to a same-size map of its outputs")
        return out

    def _channels_last(self, x: np.ndarray) -> np.ndarray:
        # 2D: (B, slices, ty, tx) -> (B, ty, tx, slices); 3D: (B, tz, ty, tx) -> (..., 1)
        return np.ascontiguousarray(np.moveaxis(x, 1, -1)) if self.dim == 2 else x[..., None]

    @property
    def package_forward(self) -> Any:
        """The forward of an imported (bioimage.io) model that needs volume statistics for
        its preprocessing (``prepare``, ``stats``); None for a Keras model."""
        return self._forward if hasattr(self._forward, "prepare") else None

    def predict_volume(self, read: Reader, shape_zyx: Sequence[int],
                       outputs: Sequence[Any], *, progress: prog.ProgressCallback | None = None,
                       cancel: prog.CancelToken | None = None, done: int = 0,
                       total: int | None = None) -> int:
        """Predict one (Z, Y, X) volume into ``outputs`` (one writable (Z, Y, X) array per model
        output: h5py datasets or NumPy arrays). Float arrays get the blended output in [0, 1]
        (for a sigmoid model); integer arrays get ``output > threshold`` (config threshold,
        0.5 when unset) as {0, 1}.

        read: ``region -> float32 (z, y, x)`` normalised image (e.g. ``Sample.read_image``).
        Progress counts tiles, starting at ``done`` of ``total`` (for multi-volume runs);
        returns the updated ``done``.
        """
        if len(outputs) != self.outputs:
            raise ValueError(f"{len(outputs)} output arrays for a model with {self.outputs} "
                             "outputs")
        total = self.count_tiles(shape_zyx) if total is None else total
        if self.package_forward is not None:  # volume statistics of an imported model
            self.package_forward.prepare(read, shape_zyx)
        z, _, x = (int(s) for s in shape_zyx)
        read = context_reader(read, self.context, z)  # 2.5D: slices z-c..z+c, mirrored at the ends
        for c0, c1, e0, e1 in self.bands(shape_zyx):
            def band_read(r, e0=e0):
                return read((r[0], slice(r[1].start + e0, r[1].stop + e0), r[2]))

            band_outputs = [RowWindow(out, e0, c0, c1) for out in outputs]
            done = self._predict_block(band_read, (z, e1 - e0, x), band_outputs,
                                       progress, cancel, done, total)
        return done

    def bands(self, shape_zyx: Sequence[int]) -> list[tuple[int, int, int, int]]:
        """Y bands (core_start, core_stop, read_start, read_stop) the volume is predicted in.

        One band (the whole Y range) unless the Z-slab blending buffer (tile_z x Y x X x
        outputs float32) would exceed :data:`BUFFER_BYTES`, as for a 3D model on very wide
        slices (e.g. 32-deep tiles on 8192 x 8192 slices: 8 GiB). Then each band reads a
        quarter tile more on either side (a halo) and writes only its core, so written voxels
        near a band border still had context: memory stays bounded whatever the slice size,
        for about a fifth more computation (8192 x 8192: bands of 320 rows + 2 x 64).
        """
        z, y, x = (int(s) for s in shape_zyx)
        grid = self.grid(shape_zyx)
        tz, ty = min(grid.tile_shape[0], z), grid.tile_shape[1]
        # Z smoothing holds up to 4 * radius more slices (see ZSmoother)
        row_bytes = (tz + 4 * z_radius(self.config.z_smooth)) * x * self.outputs * 4
        if row_bytes * y <= BUFFER_BYTES or y <= 3 * ty:
            return [(0, y, 0, y)]
        halo = ty // 4  # as much context as a seam between tiles overlapping by half that
        # Bands read exactly ty + n steps of rows, so their tiles sit on the same step as in
        # one big grid and the halo is the only extra work.
        overlap = self.config.overlap
        if overlap is None:
            overlap = auto_grid(shape_zyx, self.tile, self.multiple, self.config,
                                self._tile_filters)[1]
        step = max(1, int(ty * (1.0 - overlap)))
        read_rows = ty + max(1, (BUFFER_BYTES // row_bytes - ty) // step) * step
        core = max(1, read_rows - 2 * halo)
        bands = []
        for c0 in range(0, y, core):
            c1 = min(y, c0 + core)
            e1 = min(y, c1 + halo)
            # the last, possibly thin band still reads read_rows rows of real data
            bands.append((c0, c1, max(0, min(c0 - halo, e1 - read_rows)), e1))
        return bands

    def count_tiles(self, shape_zyx: Sequence[int]) -> int:
        """Tiles :meth:`predict_volume` runs for a volume of ``shape_zyx`` (progress total)."""
        z, _, x = (int(s) for s in shape_zyx)
        return sum(len(self.grid((z, e1 - e0, x))) for _, _, e0, e1 in self.bands(shape_zyx))

    def _predict_block(self, read: Reader, shape_zyx: tuple[int, int, int],
                       outputs: Sequence[Any], progress: prog.ProgressCallback | None,
                       cancel: prog.CancelToken | None, done: int, total: int) -> int:
        grid = self.grid(shape_zyx)
        acc = BlendingAccumulator(grid, self.outputs)
        writer = SlabWriter(outputs, 0.5 if self.config.threshold is None
                             else float(self.config.threshold))
        sink = writer.add
        if self.config.z_smooth > 0:
            sink = ZSmoother(float(self.config.z_smooth), shape_zyx[0], writer.add).add

        def load(batch: list) -> np.ndarray:
            return np.stack([read_tile(read, t) for t in batch]).astype(np.float32, copy=False)

        # Tiles are generated lazily (a 100 GB volume has millions), and the next batch is
        # read in a thread while the model runs on this one.
        batches = batched(grid, self.batch_size(grid))
        batch = next(batches)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(load, batch)
            while batch:
                prog.check(cancel)
                data = pending.result()
                upcoming = next(batches, [])
                if upcoming:
                    pending = pool.submit(load, upcoming)
                y = self.forward(data)
                for tile, out in zip(batch, y):
                    for z0, block in acc.add(tile, out):
                        sink(z0, block)
                done += len(batch)
                prog.emit(progress, done, total, "tiles", "predict")
                batch = upcoming
        for z0, block in acc.finish():
            sink(z0, block)
        writer.flush()
        return done


def predict_volume(model: Any, image: Any, outputs: Sequence[Any],
                   config: PredictConfig | None = None, *, info: ModelInfo | None = None,
                   progress: prog.ProgressCallback | None = None,
                   cancel: prog.CancelToken | None = None) -> None:
    """Predict a (Z, Y, X) float32 image in [0, 1] (NumPy array or h5py dataset) into
    ``outputs`` (one writable (Z, Y, X) array per model output; see
    :meth:`Predictor.predict_volume`)."""
    predictor = Predictor(model, info, config)
    predictor.predict_volume(lambda r: np.asarray(image[r], np.float32), image.shape, outputs,
                             progress=progress, cancel=cancel)


def __getattr__(name: str) -> Any:
    # A compatibility alias: predict_dataset lives in dataset_prediction (which depends on this
    # module, not the other way round); `from deepscem.inference.predictor import
    # predict_dataset` keeps working, resolved at first use.
    if name == "predict_dataset":
        import importlib

        return importlib.import_module("deepscem.inference.dataset_prediction").predict_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
