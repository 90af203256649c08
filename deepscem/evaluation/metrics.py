"""Segmentation scores: voxel-level F1 (Dice), IoU (Jaccard), precision, recall, and
object-level figures (connected objects, their mean volume, object F1 at IoU >= 0.5).

Masks are boolean (Z, Y, X) arrays. Layers are binarised with :func:`binarize`: integer
layers (labels, thresholded predictions) count any non-zero voxel as foreground, float
layers (raw predictions) count voxels strictly above the threshold (default 0.5; the
original DeepSCEM counted any non-zero float as foreground, which is ``threshold=0``).

Empty masks: when the reference and the segmentation are both empty, F1, IoU, precision and
recall are all 1.0 (nothing to find, nothing wrongly found), never NaN. When only one side
is empty, F1 and IoU are 0.0, and the undefined one of precision/recall (no predicted
voxels / no reference voxels) is 0.0 too. The same rules apply to object-level F1.

Dataset-level evaluation (matching samples and labels, the report) is :func:`evaluate`,
implemented in :mod:`deepscem.evaluation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    pass

#: IoU an object pair needs to count as a match in object-level F1.
OBJECT_IOU = 0.5


def binarize(layer: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Foreground mask (bool, same shape) of a label or prediction layer.

    Integer/bool layers: non-zero is foreground (labels and thresholded predictions are
    already {0, 1}). Float layers: ``value > threshold``.
    """
    if np.issubdtype(layer.dtype, np.floating):
        return layer > threshold
    return layer != 0


@dataclass(frozen=True)
class VoxelCounts:
    """Confusion counts of a binary segmentation against a reference (voxels)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    total: int = 0

    def __add__(self, other: VoxelCounts) -> VoxelCounts:
        return VoxelCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn,
                           self.total + other.total)

    @classmethod
    def of(cls, reference: np.ndarray, segmentation: np.ndarray,
           within: np.ndarray | None = None) -> VoxelCounts:
        """Counts for two boolean masks of the same shape; only voxels where ``within`` is
        true (the reference's annotated voxels) when given."""
        total = int(reference.size)
        if within is not None:
            reference, segmentation = reference & within, segmentation & within
            total = int(np.count_nonzero(within))
        tp = int(np.count_nonzero(reference & segmentation))
        return cls(tp, int(np.count_nonzero(segmentation)) - tp,
                   int(np.count_nonzero(reference)) - tp, total)

    def scores(self) -> dict[str, float]:
        """f1, iou, precision and recall in [0, 1] (both masks empty -> all 1.0)."""
        return ratio_scores(self.tp, self.fp, self.fn)


def ratio_scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    """F1, IoU, precision, recall from true/false positives and false negatives.

    >>> ratio_scores(3, 1, 2)["f1"], ratio_scores(3, 1, 2)["iou"]
    (0.6666666666666666, 0.5)
    >>> ratio_scores(0, 0, 0)
    {'f1': 1.0, 'iou': 1.0, 'precision': 1.0, 'recall': 1.0}
    """
    if tp + fp + fn == 0:
        return {"f1": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0}
    return {
        "f1": 2 * tp / (2 * tp + fp + fn),
        "iou": tp / (tp + fp + fn),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
    }


@dataclass(frozen=True)
class ObjectCounts:
    """Object-level figures: connected objects on each side and how many were matched.

    reference_voxels / segmentation_voxels: foreground voxels inside those objects (for the
    mean object volume). matched: pairs with IoU >= :data:`OBJECT_IOU` (one-to-one).
    """

    reference_objects: int = 0
    segmentation_objects: int = 0
    reference_voxels: int = 0
    segmentation_voxels: int = 0
    matched: int = 0

    def __add__(self, other: ObjectCounts) -> ObjectCounts:
        return ObjectCounts(*(a + b for a, b in zip(self._values(), other._values())))

    def _values(self) -> tuple[int, ...]:
        return (self.reference_objects, self.segmentation_objects, self.reference_voxels,
                self.segmentation_voxels, self.matched)

    def scores(self) -> dict[str, float | int | None]:
        """Object counts, mean object volume (voxels; None without objects) and object F1,
        precision and recall (both sides without objects -> 1.0)."""
        r = ratio_scores(self.matched, self.segmentation_objects - self.matched,
                         self.reference_objects - self.matched)
        return {
            "reference_objects": self.reference_objects,
            "segmentation_objects": self.segmentation_objects,
            "reference_mean_volume": (self.reference_voxels / self.reference_objects
                                      if self.reference_objects else None),
            "segmentation_mean_volume": (self.segmentation_voxels / self.segmentation_objects
                                         if self.segmentation_objects else None),
            "matched_objects": self.matched,
            "object_f1": r["f1"],
            "object_precision": r["precision"],
            "object_recall": r["recall"],
        }


def connected_objects(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the connected objects of a boolean (Z, Y, X) mask, face connectivity
    (6 neighbours in 3D, 4 within a slice). Returns (int32 labels, number of objects)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, output=np.int32)
    return labels, int(n)


def object_counts(reference: np.ndarray, segmentation: np.ndarray,
                  iou: float = OBJECT_IOU) -> ObjectCounts:
    """Match connected objects of two boolean masks one-to-one by IoU >= ``iou``.

    Pairs are taken greedily in decreasing IoU (for IoU > 0.5 a match is unique anyway).
    Memory: the whole sample, about 9 bytes per voxel (two int32 label volumes and masks).
    """
    ref_labels, n_ref = connected_objects(reference)
    seg_labels, n_seg = connected_objects(segmentation)
    ref_sizes = np.bincount(ref_labels.ravel(), minlength=n_ref + 1)
    seg_sizes = np.bincount(seg_labels.ravel(), minlength=n_seg + 1)
    matched = 0
    if n_ref and n_seg:
        both = (ref_labels > 0) & (seg_labels > 0)
        pair = ref_labels[both].astype(np.int64) * (n_seg + 1) + seg_labels[both]
        pairs, inter = np.unique(pair, return_counts=True)
        r, s = np.divmod(pairs, n_seg + 1)
        pair_iou = inter / (ref_sizes[r] + seg_sizes[s] - inter)
        used_r: set[int] = set()
        used_s: set[int] = set()
        for k in np.argsort(-pair_iou, kind="stable"):
            if pair_iou[k] < iou:
                break
            if r[k] not in used_r and s[k] not in used_s:
                used_r.add(int(r[k]))
                used_s.add(int(s[k]))
                matched += 1
    return ObjectCounts(n_ref, n_seg, int(ref_sizes[1:].sum()), int(seg_sizes[1:].sum()),
                        matched)

