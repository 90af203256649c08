"""Threshold calibration on held-out data (issue 16): the threshold that gives the best IoU
on validation patches the model never trained on, folded into the model's last layer.

A U-Net trained with Dice is not calibrated: on data whose labels draw the object edge
inside the dark membrane band (drosophila-vnc) the best threshold is far above 0.5, on
Lucchi++ it is near 0.5. When asked (``train --calibrate``; off by default: a few held-back
slices can prefer a threshold the rest of the volume does not), after training, with validation
data of its own (held-back slices, ``--holdout`` / ``--auto``, or another validation dataset),
:func:`calibrate` predicts uniformly placed validation patches (no label focus, no
augmentation; a border of each patch left out, where a patch sees less context than a
blended tile), histograms the output per label on labelled and unlabelled voxels (only
annotated voxels for partial labels), and picks the threshold ``t`` of
:data:`THRESHOLDS` with the best IoU. When it beats 0.5 by at least :data:`MIN_GAIN` on at
least :data:`MIN_POSITIVES` labelled voxels, the label's logit bias is lowered by
``logit(t)``: the model's output is then above 0.5 exactly where it was above ``t``, so
every later step (prediction, ``--threshold 0.5``, evaluation, instances, ONNX and
bioimage.io exports) uses the calibrated threshold without knowing about it. Sigmoid models
with the DeepSCEM head (a ``logits`` convolution with a bias) only; boundary channels are
left alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from deepscem.errors import Cancelled
from deepscem.progress import CancelToken, ProgressCallback, check, emit

#: Candidate thresholds (a grid: validation patches are a sample, finer steps would fit noise).
THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(2, 20))  # 0.10 ... 0.95
#: Smallest IoU gain over 0.5 that changes the model (smaller ones are within sampling noise).
MIN_GAIN = 0.005
#: Labelled validation voxels a label needs before its threshold is moved.
MIN_POSITIVES = 5000
#: Validation voxels (inside the patch borders) the calibration looks at, at most.
TARGET_VOXELS = 4_000_000
BINS = 400


@dataclass
class LabelCalibration:
    """The outcome for one label: the chosen threshold (0.5 = unchanged), the validation IoU
    at 0.5 and at the chosen threshold, the labelled voxels it is based on."""

    label: str
    threshold: float
    iou_at_half: float
    iou: float
    positives: int
    applied: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if not self.applied:
            return (f"{self.label}: threshold stays 0.5 (validation IoU {self.iou_at_half:.3f}; "
                    f"best {self.iou:.3f} at {self.threshold:.2f})")
        return (f"{self.label}: threshold {self.threshold:.2f} folded into the model (validation "
                f"IoU {self.iou_at_half:.3f} at 0.5 -> {self.iou:.3f})")


def logits_layer(model: Any) -> Any | None:
    """The DeepSCEM head's ``logits`` convolution when it has a bias, else None."""
    try:
        layer = model.get_layer("logits")
    except ValueError:
        return None
    return layer if getattr(layer, "use_bias", False) and layer.bias is not None else None


def histograms(model: Any, batches: Iterable[tuple[np.ndarray, np.ndarray]], n_labels: int,
               with_mask: bool, margin: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(positives, negatives): (n_labels, BINS) counts of the model's output on labelled and
    unlabelled voxels of ``batches`` ((x, y) as the training sequences give them; y's first
    ``n_labels`` channels are the labels, its last the annotated mask when ``with_mask``),
    ``margin`` voxels left out at each side of every spatial axis."""
    pos = np.zeros((n_labels, BINS), np.int64)
    neg = np.zeros((n_labels, BINS), np.int64)
    for x, y in batches:
        out = np.asarray(model.predict_on_batch(x), np.float32)
        inner = (slice(None),) + tuple(slice(m, s - m) for m, s in zip(margin, out.shape[1:-1]))
        out, y = out[inner], y[inner]
        keep = y[..., -1] > 0.5 if with_mask else np.ones(y.shape[:-1], bool)
        for c in range(n_labels):
            bins = np.clip((out[..., c][keep] * BINS).astype(np.int64), 0, BINS - 1)
            labelled = y[..., c][keep] > 0.5
            pos[c] += np.bincount(bins[labelled], minlength=BINS)
            neg[c] += np.bincount(bins[~labelled], minlength=BINS)
    return pos, neg


def iou_curve(pos: np.ndarray, neg: np.ndarray, thresholds=THRESHOLDS) -> np.ndarray:
    """IoU of ``output > t`` for each t, from one label's histograms (bins of width 1/BINS:
    ``> t`` counts the bins from round(t * BINS) on)."""
    total = pos.sum()
    tp_from = np.cumsum(pos[::-1])[::-1]  # labelled voxels in bins k..end
    fp_from = np.cumsum(neg[::-1])[::-1]
    scores = []
    for t in thresholds:
        k = int(round(t * BINS))
        tp, fp = tp_from[k], fp_from[k]
        union = total + fp
        scores.append(tp / union if union else 1.0)
    return np.asarray(scores, np.float64)


def choose(pos: np.ndarray, neg: np.ndarray, labels: list[str]) -> list[LabelCalibration]:
    """Per label: the best threshold of :data:`THRESHOLDS`, applied when it beats 0.5 by
    :data:`MIN_GAIN` on at least :data:`MIN_POSITIVES` labelled voxels."""
    half = THRESHOLDS.index(0.5)
    result = []
    for c, name in enumerate(labels):
        curve = iou_curve(pos[c], neg[c])
        best = int(np.argmax(curve))
        positives = int(pos[c].sum())
        applied = bool(positives >= MIN_POSITIVES and curve[best] - curve[half] >= MIN_GAIN)
        result.append(LabelCalibration(name, THRESHOLDS[best] if applied else 0.5,
                                       float(curve[half]), float(curve[best]), positives, applied))
    return result


def fold_threshold(model: Any, channel: int, threshold: float) -> None:
    """Lower the logit bias of ``channel`` by logit(threshold): sigmoid output > 0.5 now
    where it was > ``threshold``."""
    layer = logits_layer(model)
    bias = np.array(layer.bias.numpy(), np.float32)
    bias[channel] -= np.float32(math.log(threshold / (1.0 - threshold)))
    layer.bias.assign(bias)


def calibrate_on(model: Any, sampler: Any, patch: tuple[int, int, int], dim: int, micro: int,
                 seed: int, label_names: list[str], progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> list[LabelCalibration]:
    """Calibrate ``model`` on patches of the validation ``sampler`` (a training PatchSampler of
    held-out data): up to :data:`TARGET_VOXELS` voxels inside the patch borders, in batches of
    ``micro`` patches, placed uniformly (label focus off); each label's chosen threshold is
    folded into the model. A cancel returns [] with the model unchanged."""
    from deepscem.training.sequence import PatchSequence

    dims = patch[1:] if dim == 2 else patch
    margin = tuple(p // 8 for p in dims)
    inner = int(np.prod([p - 2 * m for p, m in zip(dims, margin)]))
    count = int(np.clip(math.ceil(TARGET_VOXELS / max(1, inner) / micro), 4, 64))
    sequence = PatchSequence(sampler, micro, 1, dim=dim)  # a batch builder: batches drawn with rng
    rng = np.random.default_rng([seed, 11])

    def batches():
        for i in range(count):
            emit(progress, i, count, "batches", "calibrate")
            check(cancel)
            yield sequence.batch(rng)
        emit(progress, count, count, "batches", "calibrate")

    focus, sampler.label_focus = sampler.label_focus, 0.0  # uniform placement
    try:
        pos, neg = histograms(model, batches(), sampler.n_labels, sampler.with_mask, margin)
    except Cancelled:  # the user is waiting: the trained model as it is
        return []
    finally:
        sampler.label_focus = focus
    labels = list(label_names)[:sampler.n_labels]
    labels += [f"label {i}" for i in range(len(labels), sampler.n_labels)]
    result = choose(pos, neg, labels)
    for channel, row in enumerate(result):
        if row.applied:
            fold_threshold(model, channel, row.threshold)
    return result
