"""bioimage.io pre/postprocessing operations, applied by DeepSCEM to its own tiles.

Only what a one-channel segmentation model needs: ``ensure_dtype``, ``scale_range``,
``zero_mean_unit_variance`` (statistics over the whole volume, see
:func:`volume_statistics`), ``fixed_zero_mean_unit_variance``, ``scale_linear``, ``clip``,
``sigmoid`` and ``binarize`` with one value (not per channel lists of several values).
Arrays are float32, any shape: the operations are elementwise once the statistics are known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deepscem.errors import ModelError

STATISTICAL = ("scale_range", "zero_mean_unit_variance")
POINTWISE = ("ensure_dtype", "sigmoid", "clip", "scale_linear", "binarize",
             "fixed_zero_mean_unit_variance")
#: Pointwise operations with fixed values: they assume the raw grey values unless a
#: statistical normalisation came first.
RAW_VALUES = ("scale_linear", "fixed_zero_mean_unit_variance", "clip", "binarize")


def _scalar(value: Any, what: str) -> float:
    values = np.ravel(np.asarray(value, dtype=np.float64))
    if values.size != 1:
        raise ModelError(f"{what} gives {values.size} values (one per channel); DeepSCEM runs "
                         "one-channel models")
    return float(values[0])


def check_processing(pre: Sequence[Any], post: Sequence[Any], name: str) -> None:
    """ModelError unless DeepSCEM can apply these operations (see module doc)."""
    normalised = False
    for op in pre:
        op_id = str(op.id)
        if op_id not in STATISTICAL + POINTWISE:
            raise ModelError(f"{name} preprocesses its input with {op_id!r}, which DeepSCEM "
                             "does not apply")
        if op_id in RAW_VALUES and not normalised:
            raise ModelError(f"{name} applies {op_id} with fixed values to raw grey values; "
                             "DeepSCEM hands models min-max normalised images, so it cannot "
                             "reproduce that input")
        normalised = normalised or op_id in STATISTICAL
        _check_kwargs(op, name)
    for op in post:
        if str(op.id) not in POINTWISE:
            raise ModelError(f"{name} postprocesses its output with {str(op.id)!r}, which "
                             "DeepSCEM does not apply")
        _check_kwargs(op, name)


def _check_kwargs(op: Any, name: str) -> None:
    kwargs = getattr(op, "kwargs", None)
    if str(op.id) == "clip" and (getattr(kwargs, "min_percentile", None) is not None
                                 or getattr(kwargs, "max_percentile", None) is not None):
        raise ModelError(f"{name} clips at percentiles, which DeepSCEM does not apply")


def volume_statistics(read: Any, shape_zyx: Sequence[int], pre: Sequence[Any],
                      max_voxels: int) -> dict[str, float]:
    """Statistics of the statistical operations in ``pre``, over an evenly strided sample of at
    most ~``max_voxels`` voxels of the (Z, Y, X) volume (``read(region) -> float32``), each
    computed on the output of the operations before it. Keys "<index>:lo"/"<index>:hi" (range)
    and "<index>:mean"/"<index>:std"."""
    z, y, x = (int(s) for s in shape_zyx)
    n_slices = max(1, min(z, 32))
    stride = max(1, int(np.ceil(np.sqrt(y * x * n_slices / max_voxels))))
    zs = np.unique(np.linspace(0, z - 1, n_slices).round().astype(int))
    sample = np.concatenate([np.asarray(read((slice(k, k + 1), slice(0, y), slice(0, x))),
                                        np.float32)[:, ::stride, ::stride].ravel() for k in zs])
    stats: dict[str, float] = {}
    for i, op in enumerate(pre):
        op_id, kwargs = str(op.id), getattr(op, "kwargs", None)
        if op_id == "scale_range":
            lo, hi = np.percentile(sample, [kwargs.min_percentile, kwargs.max_percentile])
            stats[f"{i}:lo"], stats[f"{i}:hi"] = float(lo), float(hi)
        elif op_id == "zero_mean_unit_variance":
            stats[f"{i}:mean"], stats[f"{i}:std"] = float(sample.mean()), float(sample.std())
        sample = _apply(i, op, sample, stats)
    return stats


def apply_ops(data: np.ndarray, ops: Sequence[Any], stats: dict[str, float]) -> np.ndarray:
    """``data`` (float32) through ``ops`` in order, with statistics from
    :func:`volume_statistics` (for preprocessing; {} for postprocessing)."""
    for i, op in enumerate(ops):
        data = _apply(i, op, data, stats)
    return data.astype(np.float32, copy=False)


def _apply(i: int, op: Any, data: np.ndarray, stats: dict[str, float]) -> np.ndarray:
    op_id, kw = str(op.id), getattr(op, "kwargs", None)
    if op_id == "ensure_dtype":
        return data.astype(str(kw.dtype)).astype(np.float32)
    if op_id == "sigmoid":
        return 1.0 / (1.0 + np.exp(-data))
    if op_id == "clip":
        return np.clip(data, kw.min, kw.max)
    if op_id == "binarize":
        return (data > _scalar(kw.threshold, "binarize")).astype(np.float32)
    if op_id == "scale_linear":
        return data * _scalar(kw.gain, "scale_linear") + _scalar(kw.offset, "scale_linear")
    if op_id == "fixed_zero_mean_unit_variance":
        return (data - _scalar(kw.mean, op_id)) / _scalar(kw.std, op_id)
    if op_id == "scale_range":
        lo, hi = stats[f"{i}:lo"], stats[f"{i}:hi"]
        return (data - lo) / (hi - lo + kw.eps)
    if op_id == "zero_mean_unit_variance":
        return (data - stats[f"{i}:mean"]) / (stats[f"{i}:std"] + kw.eps)
    raise ModelError(f"unsupported bioimage.io operation {op_id!r}")
