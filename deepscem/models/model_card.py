"""The model card of an exported model: who made it, its licence, training data and scores
(:class:`ExportCard`), and the Markdown README of a bioimage.io package (:func:`card_text`)."""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass, field
from typing import Any

from deepscem.models.introspection import model_scale, tile_multiple


@dataclass
class ExportCard:
    """What the model card says beyond the network: who made it, under which licence,
    what it was trained on and how well it scored (all optional but the authors)."""

    authors: list[str] = field(default_factory=lambda: [getpass.getuser() or "DeepSCEM user"])
    license: str = "CC-BY-4.0"
    description: str = ""
    training_data: str = ""           # e.g. "lucchi-pp train (165, 512, 640)"
    scores: dict[str, float] = field(default_factory=dict)  # e.g. {"test IoU": 0.81}
    cite: list[tuple[str, str]] = field(default_factory=list)  # (text, doi or url)


def card_text(info: Any, card: ExportCard, name: str, synthetic: bool) -> str:
    """The model card (Markdown) of the package."""
    unet = getattr(info, "unet", None)
    history = getattr(info, "history", None) or {}
    lines = [f"# {name}", "",
             card.description or f"A {info.dimension}D U-Net trained with DeepSCEM to segment "
             f"{', '.join(info.label_names)} in electron-microscopy images.", "",
             "## Input", "",
             "One grey channel, float32. DeepSCEM maps grey values to [0, 1] with the minimum and "
             "maximum of the whole volume; the package declares this as `scale_range` with "
             "percentiles 0 and 100 over the sample. Every spatial size must be a multiple of "
             f"{tile_multiple(info=info) if unet else 'the network multiple'}"
             + (f" (the network works at 1/{model_scale(info)} of the resolution inside the model)"
                if model_scale(info) > 1 else "") + ".", "",
             "## Output", "",
             f"{info.outputs} channel(s) ({', '.join(info.label_names)}), probabilities in [0, 1] "
             "(threshold 0.5 for a mask).", "",
             "## Training", ""]
    lines.append(f"- training data: {card.training_data or 'not recorded'}")
    if info.patch_size:
        lines.append(f"- patch size (Z, Y, X): {tuple(info.patch_size)}")
    for key, value in history.items():
        if not isinstance(value, (list, dict)):
            lines.append(f"- {key}: {value}")
    if unet is not None:
        lines.append("- architecture: " + ", ".join(
            f"{k}={v}" for k, v in json.loads(json.dumps(unet.__dict__)).items()))
    lines += ["", "## Scores", ""]
    lines += [f"- {k}: {v:.4f}" for k, v in card.scores.items()] or ["- not measured"]
    lines += ["", "## Test tensors", "",
              "A synthetic EM-like image (no sample was given at export)." if synthetic else
              "A central crop of a real sample and the model's output on it.", "",
              "Exported by DeepSCEM (https://github.com/Cyril-Meyer/DeepSCEM)."]
    return "\n".join(lines) + "\n"
