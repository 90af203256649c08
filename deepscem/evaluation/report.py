"""Evaluate a segmentation dataset against a reference dataset (GUI button 11, CLI ``evaluate``).

Samples are matched by name and layers by label index: the reference side uses its
``label_XXXX`` layers (or ``prediction_XXXX`` when it has no labels), the segmentation side
its ``prediction_XXXX`` layers (or ``label_XXXX``), so label-vs-prediction,
prediction-vs-prediction and label-vs-label comparisons all work. Scores follow
:mod:`deepscem.evaluation.metrics` (threshold, empty-mask rule). Anything that cannot be compared (a
sample on one side only, a missing label index, different shapes) is listed in
``report.problems``; the rest is still scored.

Partial labels (:mod:`deepscem.dataset.annotation`): when a reference sample says which voxels
are annotated, only those are scored (the others are unknown, neither hit nor miss), object
figures are skipped for it (an object may cross unknown voxels), and a sample with nothing
annotated (a volume added without labels) is not scored; ``problems`` says so for each.

Voxel counts are streamed slab by slab; object-level figures need a whole sample's masks
(about 9 bytes per voxel) and can be switched off with ``objects=False``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepscem import progress as prog
from deepscem.evaluation.instance_metrics import InstanceScores, score_layers
from deepscem.evaluation.metrics import ObjectCounts, VoxelCounts, binarize, object_counts
from deepscem.outputs import atomic_write

#: Voxels read per slab when streaming voxel counts (bounds memory, not results).
SLAB_VOXELS = 1 << 25
#: Samples larger than this get no object figures (they need ~9 bytes per voxel at once);
#: the report says so in ``problems``.
OBJECT_VOXEL_LIMIT = 1 << 28
OVERALL = "(all)"


@dataclass(frozen=True)
class EvaluationRow:
    """Scores of one label of one sample (or of all samples pooled: sample == "(all)")."""

    sample: str
    label: int
    voxels: VoxelCounts
    objects: ObjectCounts | None = None
    reference_layer: str = ""
    segmentation_layer: str = ""
    instances: InstanceScores | None = None

    def as_dict(self) -> dict[str, Any]:
        """Flat record: label, sample, f1, iou, precision, recall, counts, object figures."""
        row: dict[str, Any] = {"label": self.label, "sample": self.sample}
        row.update(self.voxels.scores())
        row.update(tp=self.voxels.tp, fp=self.voxels.fp, fn=self.voxels.fn,
                   voxels=self.voxels.total)
        if self.objects is not None:
            row.update(self.objects.scores())
        if self.instances is not None:
            row.update(self.instances.as_dict())
        row.update(reference_layer=self.reference_layer,
                   segmentation_layer=self.segmentation_layer)
        return row


@dataclass
class EvaluationReport:
    """Per sample/label rows, pooled rows per label (voxel counts summed over samples), and
    the problems found while matching the two datasets."""

    reference: str
    segmentation: str
    threshold: float
    rows: list[EvaluationRow] = field(default_factory=list)
    overall: list[EvaluationRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.rows + self.overall]

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "segmentation": self.segmentation,
                "threshold": self.threshold, "rows": [r.as_dict() for r in self.rows],
                "overall": [r.as_dict() for r in self.overall], "problems": list(self.problems)}

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        with atomic_write(path) as fh:
            fh.write(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def to_csv(self, path: str | Path) -> Path:
        """One line per row, the original's columns first (label, sample, f1, iou)."""
        path = Path(path)
        records = self.records()
        columns: list[str] = []
        for rec in records:
            columns += [k for k in rec if k not in columns]
        with atomic_write(path, newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns or ["label", "sample", "f1", "iou"])
            writer.writeheader()
            writer.writerows(records)
        return path

    def format_table(self) -> str:
        """A fixed-width table for the terminal, problems listed below it."""
        head = ("sample", "label", "F1", "IoU", "precision", "recall", "ref obj", "seg obj",
                "obj F1", "AP50", "AP75")
        lines = [tuple(head)]
        for row in self.rows + self.overall:
            d = row.as_dict()
            lines.append((row.sample, str(row.label), *(f"{d[k]:.4f}" for k in
                          ("f1", "iou", "precision", "recall")),
                          *(str(d.get(k, "-")) for k in ("reference_objects",
                                                         "segmentation_objects")),
                          f"{d['object_f1']:.4f}" if "object_f1" in d else "-",
                          *(f"{d[k]:.4f}" if k in d else "-" for k in ("ap50", "ap75"))))
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                          for i, (c, w) in enumerate(zip(line, widths))) for line in lines]
        text.insert(1, "  ".join("-" * w for w in widths))
        text.append(f"(threshold {self.threshold} for float predictions; both masks empty "
                    "scores 1.0)")
        text += [f"warning: {p}" for p in self.problems]
        return "\n".join(text)


def evaluate(reference_path: str | Path, segmentation_path: str | Path, *,
             threshold: float = 0.5, objects: bool = True, instances: bool = True,
             progress: prog.ProgressCallback | None = None,
             cancel: prog.CancelToken | None = None) -> EvaluationReport:
    """Score every matching (sample, label) of ``segmentation_path`` against
    ``reference_path`` (both DeepSCEM dataset files). Float layers are foreground above
    ``threshold``; integer layers where non-zero. Progress counts (sample, label) pairs.
    ``instances``: also AP-50/AP-75 and split/merge counts (:mod:`.instance_metrics`), from
    ``instance_XXXX`` layers or connected components, streamed (any sample size).
    """
    from deepscem.dataset import Dataset

    report = EvaluationReport(str(reference_path), str(segmentation_path), float(threshold))
    with Dataset.open(reference_path) as ref, Dataset.open(segmentation_path) as seg:
        ref_names, seg_names = ref.sample_names(), seg.sample_names()
        for name in ref_names:
            if name not in seg_names:
                report.problems.append(f"sample {name!r} is in the reference but not in the "
                                       "segmentation: not scored")
        for name in seg_names:
            if name not in ref_names:
                report.problems.append(f"sample {name!r} is in the segmentation but not in the "
                                       "reference: not scored")
        jobs = []
        for name in (n for n in ref_names if n in seg_names):
            if _annotated_enough(ref.sample(name), report.problems):
                jobs += _match_layers(ref.sample(name), seg.sample(name), report.problems)
        pooled: dict[int, tuple[VoxelCounts, ObjectCounts | None]] = {}
        pooled_instances: dict[int, InstanceScores] = {}
        too_big: set[str] = set()
        for done, (rs, ss, index, rl, sl) in enumerate(jobs):
            prog.emit(progress, done, len(jobs), "layers", "evaluate")
            partial = rs.has_annotation()  # objects may cross unknown voxels: voxel scores only
            fits = int(np.prod(rs.shape)) <= OBJECT_VOXEL_LIMIT
            with_objects = objects and fits and not partial
            if objects and not fits and rs.name not in too_big:
                too_big.add(rs.name)
                report.problems.append(
                    f"sample {rs.name!r} has {int(np.prod(rs.shape)):,} voxels, more than "
                    f"{OBJECT_VOXEL_LIMIT:,}: object figures skipped (they need the whole sample "
                    "in memory); voxel scores are complete")
            voxels, objs = _score(rs, ss, rl, sl, threshold, with_objects, cancel)
            inst = score_layers(rs, rl, ss, sl, threshold=threshold, cancel=cancel) \
                if instances and not partial else None
            if inst is not None:
                pooled_instances[index] = pooled_instances.get(index, InstanceScores()) + inst
            report.rows.append(EvaluationRow(rs.name, index, voxels, objs, rl, sl, inst))
            v0, o0 = pooled.get(index, (VoxelCounts(), ObjectCounts() if objects else None))
            pooled[index] = (v0 + voxels, o0 + objs if o0 is not None and objs else None)
        prog.emit(progress, len(jobs), len(jobs), "layers", "evaluate")
    report.overall = [EvaluationRow(OVERALL, i, v, o, instances=pooled_instances.get(i))
                      for i, (v, o) in sorted(pooled.items())]
    return report


def _annotated_enough(rs: Any, problems: list[str]) -> bool:
    """False (with a problem noted) for a reference sample with nothing annotated; a note for a
    partially annotated one."""
    if not rs.has_annotation():
        return True
    fraction = rs.annotated_fraction()
    if fraction == 0:
        problems.append(f"sample {rs.name!r} has nothing annotated in the reference (a volume to "
                        "predict or to paint): not scored")
        return False
    problems.append(f"sample {rs.name!r}: only its annotated voxels ({100 * fraction:.1f} %) are "
                    "scored; no object or instance figures")
    return True


def _indexed_layers(sample: Any, prefer: str) -> tuple[str, dict[int, str]]:
    """(kind, {label index: layer name}) using ``prefer`` layers, else the other kind."""
    kinds = {"label": sample.label_layers(), "prediction": sample.prediction_layers()}
    other = "prediction" if prefer == "label" else "label"
    kind = prefer if kinds[prefer] else other
    return kind, {int(layer.rsplit("_", 1)[1]): layer for layer in kinds[kind]}


def _match_layers(rs: Any, ss: Any, problems: list[str]) -> list[tuple]:
    if tuple(rs.shape) != tuple(ss.shape):
        problems.append(f"sample {rs.name!r} has shape {tuple(rs.shape)} in the reference but "
                        f"{tuple(ss.shape)} in the segmentation: not scored")
        return []
    rkind, rmap = _indexed_layers(rs, "label")
    skind, smap = _indexed_layers(ss, "prediction")
    if not rmap or not smap:
        side = "reference" if not rmap else "segmentation"
        problems.append(f"sample {rs.name!r} has no label or prediction layers in the {side}: "
                        "not scored")
        return []
    jobs = []
    for index in sorted(set(rmap) | set(smap)):
        if index not in smap:
            problems.append(f"sample {rs.name!r}: label {index} has no {skind}_{index:04d} in "
                            "the segmentation: not scored")
        elif index not in rmap:
            problems.append(f"sample {rs.name!r}: label {index} has no {rkind}_{index:04d} in "
                            "the reference: not scored")
        else:
            jobs.append((rs, ss, index, rmap[index], smap[index]))
    return jobs


def _score(rs: Any, ss: Any, ref_layer: str, seg_layer: str, threshold: float, objects: bool,
           cancel: prog.CancelToken | None) -> tuple[VoxelCounts, ObjectCounts | None]:
    z, y, x = (int(s) for s in rs.shape)
    step = max(1, SLAB_VOXELS // max(1, y * x))
    counts = VoxelCounts()
    masks = (np.zeros((z, y, x), bool), np.zeros((z, y, x), bool)) if objects else None
    for z0 in range(0, z, step):
        prog.check(cancel)
        region = (slice(z0, min(z, z0 + step)), slice(0, y), slice(0, x))
        r = binarize(np.asarray(rs.read_layer(ref_layer, region)), threshold)
        s = binarize(np.asarray(ss.read_layer(seg_layer, region)), threshold)
        within = rs.read_annotated(region) != 0 if rs.has_annotation() else None
        counts = counts + VoxelCounts.of(r, s, within)
        if masks is not None:
            masks[0][region], masks[1][region] = r, s
    if masks is None:
        return counts, None
    prog.check(cancel)
    return counts, object_counts(*masks)
