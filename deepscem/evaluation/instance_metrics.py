"""Instance scores: average precision at IoU 0.5 / 0.75 and how objects were got wrong.

Objects on either side are the ids of an ``instance_XXXX`` layer, or else the connected
components of the label / prediction mask (labelled out of core into temporary files).
Overlaps are counted slab by slab (a contingency table of id pairs), so memory follows the
number of overlapping pairs, not the volume.

**AP** (as MitoEM / COCO): predicted objects are ranked by a confidence score (here their
size, larger first, as no per-object probability is stored) and matched one to one to
reference objects with IoU >= t (for t >= 0.5 a match is unique); AP is the area under the
interpolated precision-recall curve (101 recall points, COCO's rule). No objects on either
side: AP 1.0; objects on one side only: 0.0.

**Error counts** (at IoU 0.5): ``matched``; a reference object is ``split`` when unmatched
and at least two predicted objects lie mostly (> 50 % of their voxels) inside it; a predicted
object is ``merged`` when unmatched and at least two reference objects lie mostly inside it;
``missed``: other unmatched reference objects; ``false``: other unmatched predicted objects
(those lying mostly inside a split object or a merge's reference objects are not counted).

Worked example (tests/evaluation/test_instance_metrics.py): reference objects A, B; the
prediction has one object covering A and B (merged) and a speck elsewhere (false) ->
matched 0, merged 1, false 1, AP50 0.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepscem import progress as prog

THRESHOLDS = (0.5, 0.75)
SLAB_VOXELS = 1 << 23


@dataclass
class InstanceScores:
    """Per-side object sizes and overlaps reduced to what AP and the counts need.

    pred_scores: one score per predicted object (its size); pred_iou: its best IoU with a
    reference object under one-to-one matching, per threshold (bool: matched at t).
    """

    n_reference: int = 0
    pred_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pred_matched: dict[float, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: InstanceScores) -> InstanceScores:
        keys = set(self.counts) | set(other.counts)
        return InstanceScores(
            self.n_reference + other.n_reference,
            np.concatenate([self.pred_scores, other.pred_scores]),
            {t: np.concatenate([self.pred_matched.get(t, np.zeros(0, bool)),
                                other.pred_matched.get(t, np.zeros(0, bool))])
             for t in THRESHOLDS},
            {k: self.counts.get(k, 0) + other.counts.get(k, 0) for k in keys})

    def average_precision(self, t: float) -> float:
        n_pred = len(self.pred_scores)
        if self.n_reference == 0 or n_pred == 0:
            return 1.0 if self.n_reference == n_pred else 0.0
        order = np.argsort(-self.pred_scores, kind="stable")
        tp = np.cumsum(self.pred_matched[t][order])
        precision = tp / np.arange(1, n_pred + 1)
        recall = tp / self.n_reference
        # interpolated precision: the best precision at any recall >= r
        best = np.maximum.accumulate(precision[::-1])[::-1]
        points = np.linspace(0, 1, 101)
        index = np.searchsorted(recall, points, side="left")
        return float(np.mean(np.where(index < n_pred, best[np.minimum(index, n_pred - 1)], 0.0)))

    def as_dict(self) -> dict[str, Any]:
        out = {"ap50": self.average_precision(0.5), "ap75": self.average_precision(0.75),
               "reference_instances": self.n_reference,
               "segmentation_instances": int(len(self.pred_scores))}
        out.update({f"instances_{k}": v for k, v in self.counts.items()})
        return out


def score_ids(reference: Any, segmentation: Any, *, cancel=None) -> InstanceScores:
    """Scores of two (Z, Y, X) id volumes (NumPy or h5py, 0 = background)."""
    ref_ids, ref_sizes, seg_ids, seg_sizes, pairs, inter = _contingency(reference, segmentation,
                                                                        cancel)
    ri = np.searchsorted(ref_ids, pairs[:, 0]) if len(pairs) else np.zeros(0, int)
    si = np.searchsorted(seg_ids, pairs[:, 1]) if len(pairs) else np.zeros(0, int)
    iou = inter / (ref_sizes[ri] + seg_sizes[si] - inter) if len(pairs) else np.zeros(0)
    matched = {}
    for t in THRESHOLDS:
        flags = np.zeros(len(seg_ids), bool)
        used_r: set[int] = set()
        for k in np.argsort(-iou, kind="stable"):
            if iou[k] < t:
                break
            if ri[k] not in used_r and not flags[si[k]]:
                used_r.add(int(ri[k]))
                flags[si[k]] = True
        matched[t] = flags
    counts = _error_counts(len(ref_ids), len(seg_ids), ref_sizes, seg_sizes, ri, si, inter, iou)
    return InstanceScores(len(ref_ids), seg_sizes.astype(np.float64), matched, counts)


def _contingency(reference, segmentation, cancel):
    shape = tuple(int(s) for s in reference.shape)
    depth = max(1, SLAB_VOXELS // max(1, shape[1] * shape[2]))
    ref_sizes: dict[int, int] = {}
    seg_sizes: dict[int, int] = {}
    pair_parts = []
    for z0 in range(0, shape[0], depth):
        prog.check(cancel)
        r = np.asarray(reference[z0:z0 + depth]).astype(np.int64).ravel()
        s = np.asarray(segmentation[z0:z0 + depth]).astype(np.int64).ravel()
        for values, sizes in ((r, ref_sizes), (s, seg_sizes)):
            ids, n = np.unique(values[values != 0], return_counts=True)
            for i, c in zip(ids.tolist(), n.tolist()):
                sizes[i] = sizes.get(i, 0) + c
        both = (r != 0) & (s != 0)
        if both.any():
            pairs, n = np.unique(np.stack([r[both], s[both]], 1), axis=0, return_counts=True)
            pair_parts.append(np.column_stack([pairs, n]))
    ref_ids = np.array(sorted(ref_sizes), np.int64)
    seg_ids = np.array(sorted(seg_sizes), np.int64)
    pairs = np.zeros((0, 2), np.int64)
    inter = np.zeros(0, np.float64)
    if pair_parts:
        allp = np.concatenate(pair_parts)
        pairs, inverse = np.unique(allp[:, :2], axis=0, return_inverse=True)
        inter = np.bincount(inverse.ravel(), allp[:, 2]).astype(np.float64)
    return (ref_ids, np.array([ref_sizes[i] for i in ref_ids], np.float64), seg_ids,
            np.array([seg_sizes[i] for i in seg_ids], np.float64), pairs, inter)


def _error_counts(n_ref, n_seg, ref_sizes, seg_sizes, ri, si, inter, iou) -> dict[str, int]:
    matched = iou >= 0.5  # one to one above 0.5
    ref_matched = np.zeros(n_ref, bool)
    seg_matched = np.zeros(n_seg, bool)
    ref_matched[ri[matched]] = True
    seg_matched[si[matched]] = True
    # "mostly inside": more than half of the object's voxels
    seg_in_ref = inter > 0.5 * seg_sizes[si]   # predicted piece inside a reference object
    ref_in_seg = inter > 0.5 * ref_sizes[ri]   # reference object inside a predicted one
    pieces = np.bincount(ri[seg_in_ref], minlength=n_ref)
    swallowed = np.bincount(si[ref_in_seg], minlength=n_seg)
    split = ~ref_matched & (pieces >= 2)
    merged = ~seg_matched & (swallowed >= 2)
    explained_ref = np.zeros(n_ref, bool)
    explained_ref[ri[ref_in_seg & merged[si]]] = True
    explained_seg = np.zeros(n_seg, bool)
    explained_seg[si[seg_in_ref & split[ri]]] = True
    return {"matched": int(ref_matched.sum()), "split": int(split.sum()),
            "merged": int(merged.sum()),
            "missed": int((~ref_matched & ~split & ~explained_ref).sum()),
            "false": int((~seg_matched & ~merged & ~explained_seg).sum())}


def score_layers(ref_sample, ref_layer: str, seg_sample, seg_layer: str, *,
                 threshold: float = 0.5, cancel=None) -> InstanceScores:
    """Instance scores of a label index: each side's ``instance_XXXX`` when present, else the
    connected components of ``ref_layer`` / ``seg_layer`` (labelled into temporary files)."""
    from deepscem.dataset.layers import index_of, instance_name
    from deepscem.postprocessing.instances import InstanceConfig, label_instances, scratch_layer

    with ExitStack() as stack:
        volumes = []
        for sample, layer in ((ref_sample, ref_layer), (seg_sample, seg_layer)):
            ids_layer = instance_name(index_of(layer))
            if ids_layer in sample.group:
                volumes.append(sample.layer(ids_layer))
                continue
            ids = stack.enter_context(scratch_layer(sample.shape))
            label_instances(sample.layer(layer), ids, cancel=cancel,
                            config=InstanceConfig(method="components", threshold=threshold))
            volumes.append(ids)
        return score_ids(*volumes, cancel=cancel)
