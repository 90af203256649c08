"""Turn one slice and its overlays into an RGB image (pure NumPy, plus the QImage wrap).

Kept apart from the widgets so the maths is testable without a window.
"""

from __future__ import annotations

import numpy as np
from PyQt5.QtGui import QImage

# Colour-blind friendly first (Okabe-Ito), then the rest; labels and predictions get
# different palettes so a label and its prediction can be told apart when both are shown.
LABEL_COLOURS = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (204, 121, 167),
                 (213, 94, 0), (0, 114, 178)]
ANNOTATED_COLOUR = (120, 230, 120)  # a faint green wash over what is annotated
PREDICTION_COLOURS = [(255, 0, 255), (0, 255, 255), (255, 255, 0), (255, 64, 64), (64, 255, 64),
                      (64, 64, 255)]


def layer_colour(layer: str) -> tuple[int, int, int]:
    """``label_0001`` -> the second label colour; ``prediction_0000`` -> first prediction one."""
    if layer == "annotated":
        return ANNOTATED_COLOUR
    digits = "".join(ch for ch in layer.split("_")[1] if ch.isdigit()) if "_" in layer else ""
    index = int(digits) if digits else 0
    palette = PREDICTION_COLOURS if layer.startswith("prediction") else LABEL_COLOURS
    return palette[index % len(palette)]


def to_grey(raw: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Window ``raw`` (any dtype, (Y, X)) to uint8 with contrast ``lo``..``hi`` (raw units).

    8/16-bit images go through a lookup table (one entry per possible value), which is
    ~10x faster than float maths on a 4096² slice.
    """
    if raw.dtype.kind in "iu" and raw.dtype.itemsize <= 2:
        info = np.iinfo(raw.dtype)
        lut = _window(np.arange(info.min, info.max + 1, dtype=np.float32), lo, hi)
        return lut[raw.astype(np.int64) - info.min] if info.min else lut[raw]
    return _window(raw, lo, hi)


def _window(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    span = float(hi) - float(lo)
    if span <= 0:  # constant image or collapsed window: black/white step, never NaN
        return np.where(values.astype(np.float32) > lo, 255, 0).astype(np.uint8)
    scaled = (values.astype(np.float32) - float(lo)) * (255.0 / span)
    return np.clip(scaled, 0, 255).astype(np.uint8)


#: Float maps (probabilities, distance maps) below this are not drawn, and the rest is
#: ramped from it to 1: a model's 0.02-0.05 background would otherwise tint the whole slice.
FLOAT_FLOOR = 0.1


def overlay_weight(values: np.ndarray) -> np.ndarray:
    """Per-pixel overlay strength in [0, 1]: masks as they are ({0, 1} or {0, 255}); float maps
    ramped from :data:`FLOAT_FLOOR` (0) to 1 (1).

    Distance maps (``label_XXXX_dt``, tanh of the signed distance, inside > 0) show their
    inside part.
    """
    weight = values.astype(np.float32)
    if values.dtype.kind in "iub":
        return np.clip(weight / 255.0 if weight.max(initial=0) > 1 else weight, 0.0, 1.0)
    return np.clip((np.nan_to_num(weight) - FLOAT_FLOOR) / (1.0 - FLOAT_FLOOR), 0.0, 1.0)


def outline(mask: np.ndarray) -> np.ndarray:
    """The inner boundary of a (Y, X) mask: foreground pixels with a background 4-neighbour
    (image borders count as foreground, so a mask touching the border is not outlined there)."""
    inside = mask > 0
    core = inside.copy()
    core[1:, :] &= inside[:-1, :]
    core[:-1, :] &= inside[1:, :]
    core[:, 1:] &= inside[:, :-1]
    core[:, :-1] &= inside[:, 1:]
    return (inside & ~core).astype(np.uint8)


def compose(grey: np.ndarray, overlays: list[tuple], opacity: float = 0.45) -> np.ndarray:
    """Blend coloured overlays on a grey uint8 (Y, X) image; returns uint8 (Y, X, 3).

    ``overlays``: ``(values (Y, X), (r, g, b))`` drawn at ``opacity``, or
    ``(values, (r, g, b), own_opacity)``; later ones are drawn over earlier ones.

    Only pixels an overlay visibly changes are blended (a label usually covers a few % of
    the slice), so a 4096² slice with a mask costs tens of ms, not seconds.
    """
    rgb = np.empty(grey.shape + (3,), np.uint8)  # C order, so ``flat`` below is a view
    rgb[...] = grey[..., None]
    flat = rgb.reshape(-1, 3)
    for values, colour, *own in overlays:
        alpha_max = float(own[0]) if own else float(opacity)
        values = values.reshape(-1)
        if values.dtype == np.uint8 or values.dtype == bool:
            index = np.flatnonzero(values)  # flat indices: much faster than a boolean gather
            weight = values[index].astype(np.float32)
            if weight.size and weight.max() > 1:  # {0, 255} masks
                weight /= 255.0
        else:
            weight = overlay_weight(values)
            index = np.flatnonzero(weight * alpha_max > 0.5 / 255)  # below that nothing changes
            weight = weight[index]
        if not index.size:
            continue
        alpha = (weight * alpha_max)[:, None]
        blended = flat[index].astype(np.float32) * (1.0 - alpha) + np.asarray(colour, np.float32) * alpha
        flat[index] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return rgb


def to_qimage(rgb: np.ndarray) -> QImage:
    """A deep-copied QImage of a uint8 (Y, X, 3) array (safe after the array is freed)."""
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format_RGB888)
    return image.copy()


def instance_colours(ids: np.ndarray) -> np.ndarray:
    """A distinct, stable colour per object id: (..., 3) uint8 for an id array (0 -> black).

    Hue steps by the golden ratio (neighbouring ids get far-apart hues), saturation and value
    cycle slightly, so thousands of objects stay distinguishable from their neighbours.
    """
    ids = np.asarray(ids, np.int64)
    hue = (ids * 0.618033988749895) % 1.0
    sat = 0.65 + 0.35 * ((ids * 7) % 3) / 2
    val = 0.75 + 0.25 * ((ids * 5) % 2)
    h6 = hue * 6
    c = val * sat
    x = c * (1 - np.abs(h6 % 2 - 1))
    zero = np.zeros_like(c)
    sector = h6.astype(np.int64) % 6
    table = [(c, x, zero), (x, c, zero), (zero, c, x), (zero, x, c), (x, zero, c), (c, zero, x)]
    rgb = np.zeros(ids.shape + (3,), np.float64)
    for k, (r, g, b) in enumerate(table):
        pick = sector == k
        rgb[pick] = np.stack([r[pick], g[pick], b[pick]], -1)
    rgb += (val - c)[..., None]
    rgb[ids == 0] = 0
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)


def colour_instances(rgb: np.ndarray, ids: np.ndarray, opacity: float,
                     highlight: int | None = None) -> np.ndarray:
    """Blend an instance layer (Y, X ids) on ``rgb`` (Y, X, 3), one colour per object; the
    ``highlight`` object is drawn stronger with a white outline. Modifies and returns ``rgb``."""
    ids = np.asarray(ids)
    index = np.flatnonzero(ids.reshape(-1))
    if not index.size:
        return rgb
    flat = rgb.reshape(-1, 3)
    values = ids.reshape(-1)[index]
    alpha = np.full((len(index), 1), float(opacity), np.float32)
    if highlight is not None:
        alpha[values == highlight] = min(1.0, 0.35 + float(opacity))
    colours = instance_colours(values).astype(np.float32)
    flat[index] = np.clip(flat[index] * (1 - alpha) + colours * alpha + 0.5, 0, 255).astype(np.uint8)
    if highlight is not None:
        edge = outline(ids == highlight).astype(bool)
        rgb[edge] = (255, 255, 255)
    return rgb
