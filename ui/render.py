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
PREDICTION_COLOURS = [(255, 0, 255), (0, 255, 255), (255, 255, 0), (255, 64, 64), (64, 255, 64),
                      (64, 64, 255)]


def layer_colour(layer: str) -> tuple[int, int, int]:
    """``label_0001`` -> the second label colour; ``prediction_0000`` -> first prediction one."""
    digits = "".join(ch for ch in layer.split("_")[1] if ch.isdigit()) if "_" in layer else ""
    index = int(digits) if digits else 0
    palette = PREDICTION_COLOURS if layer.startswith("prediction") else LABEL_COLOURS
    return palette[index % len(palette)]


def to_grey(raw: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Window ``raw`` (any dtype, (Y, X)) to uint8 with contrast ``lo``..``hi`` (raw units)."""
    span = float(hi) - float(lo)
    if span <= 0:  # constant image or collapsed window: mid grey where above lo, never NaN
        return np.where(raw.astype(np.float32) > lo, 255, 0).astype(np.uint8)
    scaled = (raw.astype(np.float32) - float(lo)) * (255.0 / span)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def overlay_weight(values: np.ndarray) -> np.ndarray:
    """Per-pixel overlay strength in [0, 1]: masks as they are, float maps clipped.

    Distance maps (``label_XXXX_dt``, tanh of the signed distance, inside > 0) show their
    inside part.
    """
    weight = values.astype(np.float32)
    if values.dtype == np.uint8 and weight.max(initial=0) > 1:
        weight = weight / 255.0
    return np.clip(np.nan_to_num(weight), 0.0, 1.0)


def compose(grey: np.ndarray, overlays: list[tuple[np.ndarray, tuple[int, int, int]]],
            opacity: float = 0.45) -> np.ndarray:
    """Blend coloured overlays on a grey uint8 (Y, X) image; returns uint8 (Y, X, 3)."""
    rgb = np.repeat(grey[..., None].astype(np.float32), 3, axis=2)
    for values, colour in overlays:
        alpha = overlay_weight(values)[..., None] * float(opacity)
        rgb = rgb * (1.0 - alpha) + np.asarray(colour, np.float32) * alpha
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def to_qimage(rgb: np.ndarray) -> QImage:
    """A deep-copied QImage of a uint8 (Y, X, 3) array (safe after the array is freed)."""
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format_RGB888)
    return image.copy()
