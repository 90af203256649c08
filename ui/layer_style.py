"""How each overlay layer is drawn: colour, opacity, visibility, threshold (no widgets here).

Styles are kept by layer name (``label_0000``, ``prediction_0001``, ``annotated``), so a
colour chosen for a label applies to that label in every sample and file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepscem.dataset.layers import ANNOTATED, kind_of

from .dataset_tree import split_ref
from .render import colour_instances, compose, layer_colour, outline, to_grey


@dataclass
class LayerStyle:
    """``opacity`` is relative to the view's overlay slider (1.0 = as the slider says);
    ``threshold``: draw a probability layer as the mask ``value >= threshold`` (None: the
    probability ramp)."""

    colour: tuple[int, int, int]
    opacity: float = 1.0
    visible: bool = True
    threshold: float | None = None


def default_style(layer: str) -> LayerStyle:
    if layer == ANNOTATED:  # faint: it covers most of a painted slice
        return LayerStyle(layer_colour(layer), 0.5)
    return LayerStyle(layer_colour(layer))


class LayerStyles(dict):
    """``styles[layer_or_ref]`` -> the :class:`LayerStyle` of that layer name (made on first use)."""

    def __missing__(self, key: str) -> LayerStyle:
        name = split_ref(key)[0]
        if name != key:
            return self[name]
        style = self[name] = default_style(name)
        return style


def compose_planes(planes: dict[str, np.ndarray], layers: list[str], styles: LayerStyles,
                   contrast: tuple[float, float], opacity: float, *,
                   highlight: int | None = None) -> np.ndarray:
    """The RGB (rows, cols, 3) picture of 2D ``planes`` (keyed by layer ref, ``image`` needed):
    the image windowed to ``contrast`` (if ``image`` is in ``layers``), then each visible
    overlay of ``layers`` at ``opacity`` x its own opacity.

    Labels next to a shown prediction are drawn as outlines, so the prediction's fill does
    not hide the reference it is compared with. Instance layers (object ids) get one colour
    per object, the ``highlight`` object outlined (ui.objects).
    """
    if "image" in layers:
        grey = to_grey(planes["image"], *contrast)
    else:
        grey = np.zeros(planes["image"].shape, np.uint8)
    shown = [n for n in layers if n != "image" and n in planes and styles[n].visible]
    instances = [n for n in shown if kind_of(split_ref(n)[0]) == "instance"]
    shown = [n for n in shown if n not in instances]
    compare = any(kind_of(split_ref(n)[0]) == "prediction" for n in shown)
    fills, outlines = [], []
    for ref in shown:
        layer, style = split_ref(ref)[0], styles[ref]
        values = planes[ref]
        if style.threshold is not None and values.dtype.kind == "f":
            values = (values >= style.threshold).astype(np.uint8)
        if compare and kind_of(layer) == "label":
            outlines.append((outline(values), style.colour, min(1.0, style.opacity)))  # opaque, on top
        else:
            fills.append((values, style.colour, opacity * style.opacity))
    rgb = compose(grey, fills + outlines, opacity)
    for ref in instances:
        colour_instances(rgb, planes[ref], opacity * styles[ref].opacity, highlight)
    return rgb
