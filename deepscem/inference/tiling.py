"""Sliding-window tiling of (Z, Y, X) volumes: tile origins, padding and smooth blending.

Pure NumPy, no Keras: the predictor feeds these tiles through a model, a GUI can drive the
same generator tile by tile, and tests check it with an identity "model".

How a volume is covered, per axis (Z, Y, X independently):

* the tile size is rounded up to a multiple of what the network needs (``2**depth`` for a
  U-Net of that depth; 1 for the Z axis of a 2D model, which sees one slice at a time);
* if the volume is at least one tile long, tiles lie fully inside it and are spread evenly
  with at least the requested overlap, the last one flush with the far border
  (no "shape must be a multiple of the tile");
* if the volume is shorter than the tile, the tile shrinks to the volume size rounded up to
  the network multiple and the missing part is filled by mirroring (``np.pad`` reflect), then
  cropped off the output.

Overlapping outputs are blended: each tile's output is multiplied by a smooth window that is
high in the centre and low (but not zero: a floor) at the border, summed, and divided by the
summed window. The window is a product of 1D windows and the tile origins form a grid, so the
summed window is the outer product of three 1D sums: no weight volume is ever stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from deepscem.errors import ConfigError

T = TypeVar("T")
Shape3 = tuple[int, int, int]

#: Lowest window value (relative to the centre): tile borders weigh little where another tile
#: covers the same voxels, yet a voxel covered only by a tile border still gets a defined value.
WINDOW_FLOOR = 0.02


def round_up(n: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= n (n >= 1): round_up(100, 16) -> 112."""
    return int(math.ceil(n / multiple) * multiple)


def tile_origins(size: int, tile: int, overlap: float) -> list[int]:
    """Start positions of tiles of length ``tile`` covering ``size`` voxels on one axis.

    Neighbouring tiles share at least ``overlap * tile`` voxels; steps are spread evenly so the
    last tile ends exactly at ``size``. Worked examples:

    * volume 110, tile 64, overlap 0.5 -> wanted step 32, 3 tiles, actual step 23 -> 0, 23, 46
    * volume 128, tile 64, overlap 0   -> 0, 64
    * volume 130, tile 64, overlap 0   -> 3 tiles needed, step 33 -> 0, 33, 66 (a little overlap)
    * volume 40,  tile 64 (longer than the volume) -> 0 (the tile is padded, see TileGrid)
    """
    if size < 1 or tile < 1:
        raise ConfigError(f"sizes must be positive, got volume {size} and tile {tile}")
    if not 0.0 <= overlap < 1.0:
        raise ConfigError(f"overlap is a fraction in [0, 1), got {overlap}")
    if tile >= size:
        return [0]
    wanted_step = max(1, int(tile * (1.0 - overlap)))
    n = int(math.ceil((size - tile) / wanted_step)) + 1
    step = (size - tile) / (n - 1)
    return [int(round(i * step)) for i in range(n)]


def window_1d(n: int, kind: str = "cosine", floor: float = WINDOW_FLOOR) -> np.ndarray:
    """A 1D blending window of length n, float64, peak 1, values in [floor, 1].

    kind: "cosine" (Hann: sin^2, smooth to the border), "gaussian" (sigma = n / 8, as in
    nnU-Net) or "flat" (all ones: plain averaging). n == 1 gives [1].
    """
    if n == 1 or kind == "flat":
        return np.ones(n)
    t = np.arange(n) + 0.5
    if kind == "cosine":
        w = np.sin(np.pi * t / n) ** 2
    elif kind == "gaussian":
        w = np.exp(-0.5 * ((t - n / 2) / (n / 8)) ** 2)
    else:
        raise ConfigError(f"blending window must be cosine, gaussian or flat, got {kind!r}")
    w = w / w.max()
    return np.maximum(w, floor)


@dataclass(frozen=True)
class Tile:
    """One tile of a grid. ``origin`` (z, y, x) is where it starts in the volume; ``region``
    the part of the volume it reads (clipped to the volume); ``pad`` how many voxels are
    mirrored after that region on each axis to reach the grid's tile shape.
    """

    index: int
    origin: Shape3
    region: tuple[slice, slice, slice]
    pad: Shape3

    @property
    def valid_shape(self) -> Shape3:
        """Shape of the part of the tile that lies inside the volume."""
        return tuple(s.stop - s.start for s in self.region)  # type: ignore[return-value]


@dataclass(frozen=True)
class TileGrid:
    """The tiles covering a (Z, Y, X) volume, in z, y, x order (z slowest).

    Build with :func:`make_grid`. ``tile_shape`` is what the model receives (every axis a
    multiple of the network multiple); ``origins`` the start positions per axis.
    """

    volume_shape: Shape3
    tile_shape: Shape3
    origins: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
    window_kind: str = "cosine"

    def __len__(self) -> int:
        return len(self.origins[0]) * len(self.origins[1]) * len(self.origins[2])

    def __iter__(self) -> Iterator[Tile]:
        index = 0
        for z in self.origins[0]:
            for y in self.origins[1]:
                for x in self.origins[2]:
                    origin = (z, y, x)
                    stops = [min(o + t, s) for o, t, s in
                             zip(origin, self.tile_shape, self.volume_shape)]
                    region = tuple(slice(o, e) for o, e in zip(origin, stops))
                    pad = tuple(t - (e - o) for o, e, t in zip(origin, stops, self.tile_shape))
                    yield Tile(index, origin, region, pad)  # type: ignore[arg-type]
                    index += 1

    def window_axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The 1D windows (float64) along Z, Y and X for this grid's tile shape.

        An axis covered by a single tile gets a flat window: nothing to blend there.
        """
        return tuple(  # type: ignore[return-value]
            window_1d(t, self.window_kind if len(o) > 1 else "flat")
            for t, o in zip(self.tile_shape, self.origins))

    def window(self) -> np.ndarray:
        """The (tz, ty, tx) float32 blending window: outer product of :meth:`window_axes`."""
        wz, wy, wx = self.window_axes()
        return (wz[:, None, None] * wy[None, :, None] * wx[None, None, :]).astype(np.float32)

    def weight_sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Summed window per axis (float64, lengths Z, Y and X): at voxel (z, y, x) the tiles'
        weights add up to ``sz[z] * sy[y] * sx[x]``. Every value is >= the window floor.
        """
        sums = []
        for size, tile, origins, w in zip(self.volume_shape, self.tile_shape, self.origins,
                                          self.window_axes()):
            s = np.zeros(max(size, tile))
            for o in origins:
                s[o:o + tile] += w
            sums.append(s[:size])
        return tuple(sums)  # type: ignore[return-value]


def fit_tile_shape(volume_shape: Shape3, tile_shape: Shape3, multiple: Shape3) -> Shape3:
    """The tile actually used per axis: the requested size rounded up to ``multiple``, but no
    larger than the volume rounded up to ``multiple``.

    Example (multiple 16): volume (1, 96, 300), tile (1, 256, 256) -> (1, 96, 256);
    volume (5, 40, 40), tile (32, 64, 64), multiple (4, 4, 4) -> (8, 40, 40).
    """
    fitted = []
    for size, tile, m in zip(volume_shape, tile_shape, multiple):
        if size < 1 or tile < 1 or m < 1:
            raise ConfigError(f"sizes must be positive, got volume {volume_shape}, "
                              f"tile {tile_shape}, multiple {multiple}")
        fitted.append(min(round_up(tile, m), round_up(size, m)))
    return tuple(fitted)  # type: ignore[return-value]


def make_grid(volume_shape: Shape3, tile_shape: Shape3, overlap: float = 0.25,
              multiple: Shape3 = (1, 1, 1), window: str = "cosine") -> TileGrid:
    """Tiles of (about) ``tile_shape`` covering ``volume_shape`` with the given overlap.

    volume_shape, tile_shape, multiple: (Z, Y, X). overlap: fraction in [0, 1).
    window: blending window kind (see :func:`window_1d`).
    """
    volume_shape = tuple(int(s) for s in volume_shape)  # type: ignore[assignment]
    tile = fit_tile_shape(volume_shape, tuple(int(t) for t in tile_shape),  # type: ignore[arg-type]
                          tuple(int(m) for m in multiple))  # type: ignore[arg-type]
    window_1d(2, window)  # validates the kind early
    origins = tuple(tuple(tile_origins(s, t, overlap)) for s, t in zip(volume_shape, tile))
    return TileGrid(volume_shape, tile, origins, window)  # type: ignore[arg-type]


def read_tile(read: Callable[[tuple[slice, slice, slice]], np.ndarray], tile: Tile) -> np.ndarray:
    """Read ``tile.region`` with ``read`` (e.g. ``lambda r: volume[r]``) and mirror-pad it to
    the tile shape. Returns (tz, ty, tx) in the reader's dtype.
    """
    data = read(tile.region)
    if any(tile.pad):
        data = np.pad(data, [(0, p) for p in tile.pad], mode="reflect")
    return data


def iter_tiles(read: Callable[[tuple[slice, slice, slice]], np.ndarray],
               grid: TileGrid) -> Iterator[tuple[Tile, np.ndarray]]:
    """Yield ``(tile, data)`` for every tile of ``grid`` in order, data (tz, ty, tx) padded.

    The generator a caller drives tile by tile (and can stop at any time).
    """
    for tile in grid:
        yield tile, read_tile(read, tile)


def batched(items: Iterable[T], n: int) -> Iterator[list[T]]:
    """Group an iterable into lists of n (the last may be shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


class BlendingAccumulator:
    """Blend tile outputs into Z slabs; completed slabs come out in Z order.

    Tiles must be added in grid order (z origins non-decreasing). Memory is one buffer of
    ``tile_z x Y x X x channels`` float32, whatever the volume depth: once a tile starting at
    z0 arrives, no later tile touches z < z0, so those rows are finished, normalised and
    returned.

    >>> grid = make_grid((3, 10, 10), (1, 8, 8), overlap=0.5)
    >>> acc = BlendingAccumulator(grid, channels=1)
    >>> done = [b for t in grid for b in acc.add(t, np.ones((1, 8, 8, 1), np.float32))]
    >>> done += acc.finish(); [(z0, b.shape) for z0, b in done]
    [(0, (1, 10, 10, 1)), (1, (1, 10, 10, 1)), (2, (1, 10, 10, 1))]
    """

    def __init__(self, grid: TileGrid, channels: int) -> None:
        self.grid = grid
        self.channels = int(channels)
        z, y, x = grid.volume_shape
        depth = min(grid.tile_shape[0], z)
        self._buffer = np.zeros((depth, y, x, self.channels), np.float32)
        self._start = 0  # volume z of buffer row 0
        self._window = grid.window()[..., None]
        self._sums = grid.weight_sums()

    def add(self, tile: Tile, output: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Accumulate one tile's output (tz, ty, tx, channels), padded size or cropped to the
        tile's valid shape. Returns the slabs completed by this tile as (z_start, array of
        (dz, Y, X, channels) float32), usually none or one.
        """
        if output.shape[-1] != self.channels:
            raise ValueError(f"tile output has {output.shape[-1]} channels, "
                             f"expected {self.channels}")
        z0 = tile.origin[0]
        done = self._flush_to(z0) if z0 > self._start else []
        dz, dy, dx = tile.valid_shape
        y0, x0 = tile.origin[1:]
        target = self._buffer[z0 - self._start:z0 - self._start + dz, y0:y0 + dy, x0:x0 + dx]
        target += output[:dz, :dy, :dx] * self._window[:dz, :dy, :dx]
        return done

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """Normalise and return what remains (call once after the last tile)."""
        return self._flush_to(self.grid.volume_shape[0])

    def _flush_to(self, z_stop: int) -> list[tuple[int, np.ndarray]]:
        n = z_stop - self._start
        sz, sy, sx = self._sums
        norm = (sz[self._start:z_stop, None, None] * sy[None, :, None] * sx[None, None, :])
        block = self._buffer[:n] / norm.astype(np.float32)[..., None]
        # Shift the unfinished rows to the front; the freed rows start again from zero.
        self._buffer[:len(self._buffer) - n] = self._buffer[n:]
        self._buffer[len(self._buffer) - n:] = 0
        start, self._start = self._start, z_stop
        return [(start, block)]

