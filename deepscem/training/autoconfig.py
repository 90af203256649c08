"""Automatic training configuration from the data (nnU-Net's idea, sized for a CPU first).

:func:`summarize` looks at the training files once (sample shapes, voxel sizes when stored,
and the measured similarity of neighbouring slices); :func:`choose` turns that, the memory
budget and the device into an :class:`AutoConfig`: 2D / 2.5D / 3D, the patch, batch and
patches per pass, a validation split of held-back slices when no validation data is given,
keep-best on the validation score, and a time budget. Every choice carries its reason, the
CLI prints them before training starts, and the trainer stores them in the model.

Anisotropy: with a stored voxel size it is Z / mean(Y, X). Without one it is measured: the
correlation of neighbouring slices is compared with the correlation of the same slices
shifted in Y / X by 1, 2, 3... pixels, and the in-plane shift at which the two agree is the
anisotropy. On the shared data: Lucchi++ (5 nm isotropic) neighbouring slices correlate at
0.88, as do pixels 1 apart in-plane -> 1.0; drosophila-vnc (4.6 nm pixels, ~50 nm
sections) at 0.34, as pixels ~9 apart -> 9 (true ratio ~10.8).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from deepscem.config import (
    DEFAULT_BATCH,
    EPOCH_PATCHES,
    HOLDOUT,
    UNTIL_BUDGET_EPOCHS,
    VALIDATION_PATCHES,
    TrainConfig,
    steps_for,
)

#: Memory of a training process besides the activations (Python, TensorFlow, the model,
#: gradient accumulation; MiB) and per 256² patch in a pass, float32 default U-Net: peak RSS
#: measured 1006 / 1181 / 1534 MB at 1 / 2 / 4 patches per pass (bench/README.md "Training").
BASE_MIB = 900
PATCH_MIB_256 = 180
#: Default memory budget for training on a CPU (GiB): the issue's 1.5 GiB bound.
MEMORY_GIB = 1.5
#: Default time budgets (minutes): what the CPU benches measure; a GPU gets more steps anyway.
MINUTES_CPU = 15.0
MINUTES_GPU = 30.0
#: Pixels shifted in-plane when measuring anisotropy (beyond: "more than this").
MAX_LAG = 24


@dataclass(frozen=True)
class DataSummary:
    """What :func:`summarize` found: shapes (Z, Y, X) per sample, voxel sizes (Z, Y, X nm,
    None when not stored), neighbouring-slice correlation and anisotropy (None for samples of
    one slice), the number of labels."""

    shapes: list[tuple[int, int, int]]
    voxel_sizes: list[tuple[float, float, float] | None]
    slice_correlation: float | None
    anisotropy: float | None
    anisotropy_source: str
    n_labels: int


@dataclass(frozen=True)
class AutoConfig:
    """The automatic choices and why. dim: 2 or 3; context: 2.5D slices per side (2D only);
    patch (Z, Y, X); batch_size and micro_batch (patches per pass); holdout: fraction of
    slices held back for validation (0 = use the validation data given); time budget;
    keep_best: keep the best validation epoch's weights (False: the final ones)."""

    dim: int
    context: int
    patch: tuple[int, int, int]
    batch_size: int
    micro_batch: int
    holdout: float
    keep_best_on: str
    time_limit_minutes: float
    keep_best: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "patch": list(self.patch)}

    def lines(self) -> list[str]:
        """Human-readable lines for the console (one per choice, with its reason)."""
        return [f"auto: {reason}" for reason in self.reasons]


def summarize(paths: Sequence[str | os.PathLike], *, max_samples: int = 4) -> DataSummary:
    """Shapes, voxel sizes and neighbouring-slice similarity of the samples in ``paths``
    (similarity measured on at most ``max_samples`` samples of 3+ slices; cheap: a few slices
    each)."""
    from deepscem.dataset import Dataset

    shapes, sizes, corrs, anisos = [], [], [], []
    n_labels = 0
    for path in paths:
        with Dataset.open(path) as ds:
            n_labels = ds.n_labels
            for name in ds.sample_names():
                sample = ds.sample(name)
                shapes.append(tuple(int(s) for s in sample.shape))
                vs = sample.group.attrs.get("voxel_size")
                sizes.append(tuple(float(v) for v in vs) if vs is not None and len(vs) == 3 else None)
                if sample.shape[0] >= 3 and len(corrs) < max_samples:
                    c, a = measure_anisotropy(sample.layer("image"))
                    corrs.append(c)
                    anisos.append(a)
    known = [s for s in sizes if s]
    if known:
        ratios = [z / max(1e-9, (y + x) / 2) for z, y, x in known]
        anisotropy, source = float(np.median(ratios)), "voxel size"
    elif anisos:
        anisotropy, source = float(np.median(anisos)), "measured"
    else:
        anisotropy, source = None, "single slices"
    return DataSummary(shapes, sizes, float(np.mean(corrs)) if corrs else None, anisotropy, source,
                       n_labels)


def measure_anisotropy(image, *, slices: int = 6, crop: int = 512) -> tuple[float, float]:
    """(mean correlation of neighbouring slices, anisotropy) of a (Z, Y, X) array-like (NumPy
    or h5py: raw grey values do, correlation ignores the intensity scale), from ``slices``
    pairs of centre crops of at most ``crop``² pixels (see the module docstring). Z >= 2.
    Anisotropy lies in [1, MAX_LAG]."""
    depth, ny, nx = (int(s) for s in image.shape)
    y0, x0 = max(0, (ny - crop) // 2), max(0, (nx - crop) // 2)
    starts = np.unique(np.linspace(0, depth - 2, min(slices, depth - 1)).round().astype(int))
    z_corr, lag_corr = [], {k: [] for k in range(1, MAX_LAG + 1)}
    for z in starts:
        pair = np.asarray(image[int(z):int(z) + 2, y0:y0 + crop, x0:x0 + crop], np.float64)
        z_corr.append(_corr(pair[0], pair[1]))
        for k in lag_corr:
            if k < min(pair.shape[1:]):
                lag_corr[k].append((_corr(pair[0][:, :-k], pair[0][:, k:])
                                    + _corr(pair[0][:-k], pair[0][k:])) / 2)
    zc = float(np.mean(z_corr))
    curve = [(k, float(np.mean(v))) for k, v in lag_corr.items() if v]
    return zc, _lag_where(curve, zc)


def _lag_where(curve: list[tuple[int, float]], value: float) -> float:
    """The in-plane shift at which the (decreasing) correlation ``curve`` falls to ``value``,
    interpolated linearly; 1.0 when it is already at or below it at 1 pixel; the last lag
    when it never gets there."""
    if not curve or value >= curve[0][1]:
        return 1.0
    for (k0, c0), (k1, c1) in zip(curve, curve[1:]):
        if c1 <= value:
            return float(k0 + (c0 - value) / max(1e-9, c0 - c1) * (k1 - k0))
    return float(curve[-1][0])


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / denominator if denominator > 0 else 1.0


def choose(summary: DataSummary, *, validation_given: bool, gpu: bool = False,
           memory_gib: float = MEMORY_GIB, minutes: float | None = None,
           context: int | None = None, dim: int | None = None, scale: int = 1) -> AutoConfig:
    """The automatic configuration for data like ``summary`` (see the module docstring).

    validation_given: the user named validation files other than the training files (then
    no slices are held back). context / dim: the user's choice when given (not overridden).
    scale: the model's ``UNetConfig.scale`` (its patch is that much larger in Y and X, at the
    network's cost of a patch that much smaller).
    """
    reasons: list[str] = []
    depth = min(s[0] for s in summary.shapes)
    plane = min(min(s[1], s[2]) for s in summary.shapes)
    aniso = summary.anisotropy
    described = ("no stack (single slices)" if aniso is None else
                 f"anisotropy {aniso:.1f} ({summary.anisotropy_source}"
                 + (f", neighbouring slices correlate {summary.slice_correlation:.2f})"
                    if summary.slice_correlation is not None else ")"))
    if dim is None:
        # 3D learns far less per CPU-minute (Lucchi++: IoU 0.50 in 8 min against 0.89 for 2D in
        # 15); only near-isotropic stacks deep enough for 3D patches, and only on a GPU, get it.
        dim = 3 if gpu and aniso is not None and aniso < 2.0 and depth >= 32 else 2
        reasons.append(f"{dim}D model: {described}"
                       + ("" if dim == 3 else "; 3D only for isotropic stacks on a GPU"))
    else:
        reasons.append(f"{dim}D model (as created): {described}")
    if context is None:
        context = _context_for(aniso, depth) if dim == 2 else 0
        reasons.append(f"context {context} slice(s) per side ({1 + 2 * context} input channels): "
                       + _context_reason(aniso, depth, context))
    else:
        reasons.append(f"context {context} slice(s) per side (as created)")
    patch = _patch(dim, depth, plane, gpu, scale)
    batch, micro = _batch(patch, gpu, memory_gib, scale)
    reasons.append(f"patch {patch}, batch {batch} in passes of {micro} "
                   f"({'GPU' if gpu else f'{memory_gib:g} GiB memory budget'})")
    holdout = 0.0 if validation_given else HOLDOUT
    if holdout and depth < 2 * patch[0] + 1:
        holdout = 0.0
        reasons.append("validation on the training data: the samples are too thin to hold slices back")
    elif holdout:
        reasons.append(f"validation on the last {holdout:.0%} of every sample's slices, held back "
                       "from training (no validation data given)")
    keep = "score"
    # The cosine schedule ends near LR 0, so the last weights are the most trained; keep-best on
    # a few held-back slices picked an early epoch by noise on drosophila-vnc (test IoU 0.753
    # against 0.786 for the last weights; on Lucchi++ the best epoch was the last one anyway).
    # nnU-Net predicts with its final checkpoint for the same reason.
    reasons.append("keep the final weights (the learning rate decays to ~0 over the budget); the "
                   "validation F1 of every epoch is logged (--keep-best keeps the best instead)")
    budget = float(minutes) if minutes else (MINUTES_GPU if gpu else MINUTES_CPU)
    reasons.append(f"time budget {budget:g} minutes, learning rate decayed over it (cosine)")
    return AutoConfig(dim=dim, context=context, patch=patch, batch_size=batch, micro_batch=micro,
                      holdout=holdout, keep_best_on=keep, time_limit_minutes=budget,
                      keep_best=False, reasons=reasons)


def for_model(train: Sequence[str | os.PathLike], valid: Sequence[str | os.PathLike], *, dim: int,
              context: int, scale: int = 1, gpu: bool = False,
              memory_gib: float | None = None) -> tuple[AutoConfig, str | None]:
    """(choice, hint) for training an existing model (its ``dim``, 2.5D ``context`` and
    ``scale`` kept) on the datasets ``train``, validated on ``valid`` (none, or the training
    files themselves: slices are held back). hint: for an untrained 2D model whose context is
    not the one the data call for, a sentence saying so (the context belongs to the model).
    What ``train --auto`` and the GUI's Train dialog "Choose from the data" use."""
    from deepscem.outputs import same_files

    own_validation = bool(valid) and not same_files(valid, train)  # as train() decides it
    summary = summarize(train)
    choice = choose(summary, validation_given=own_validation, gpu=gpu,
                    memory_gib=memory_gib or MEMORY_GIB, context=context, dim=dim, scale=scale)
    hint = None
    if dim == 2:
        wanted = choose(summary, validation_given=own_validation, gpu=gpu).context
        if wanted != context:
            hint = (f"a 2.5D model of {1 + 2 * wanted} slices (context {wanted}) suits this data; this "
                    f"model has context {context} (create one with 'run.py model create --context "
                    f"{wanted}' or the New model dialog)")
    return choice, hint


def measured_context(paths: Sequence[str | os.PathLike]) -> tuple[int, str]:
    """(context, why): the 2.5D context a 2D model gets for the datasets at ``paths``
    (``model create --context auto --data``, the GUI's New model "auto")."""
    choice = choose(summarize(paths), validation_given=True, dim=2)
    return choice.context, next(r for r in choice.reasons if r.startswith("context"))


def _context_for(aniso: float | None, depth: int) -> int:
    if aniso is None or depth < 3:
        return 0
    return CONTEXT_ISOTROPIC if aniso < 3.0 else CONTEXT_ANISOTROPIC


def _context_reason(aniso: float | None, depth: int, context: int) -> str:
    if aniso is None or depth < 3:
        return "single slices have no neighbours"
    kind = "near-isotropic" if aniso < 3.0 else "anisotropic"
    return f"{kind} stack (see bench/README.md, 2.5D)"


#: 2.5D context chosen per kind of stack (bench/quality.py, 4 CPU-minutes, shared machine; see
#: bench/README.md): on Lucchi++ (isotropic) 3 slices scored IoU 0.860 against 0.795 for single
#: slices; on drosophila-vnc (anisotropy ~9) 0.611 against 0.703, so anisotropic stacks stay 2D.
CONTEXT_ISOTROPIC = 1
CONTEXT_ANISOTROPIC = 0


def _patch(dim: int, depth: int, plane: int, gpu: bool, scale: int = 1) -> tuple[int, int, int]:
    """Largest multiple of 16 up to 256 (512 on a GPU) that fits the smallest sample plane;
    3D: 16 slices (32 on a GPU) by 96² (128² on a GPU), as deep as the samples allow.
    A 2D model of ``scale`` s: multiples of 16 s up to s times as large."""
    def fit(size: int, limit: int, multiple: int = 16) -> int:
        return max(multiple, min(limit, size // multiple * multiple))

    if dim == 2:
        side = fit(plane, (512 if gpu else 256) * scale, 16 * scale)
        return (1, side, side)
    side = fit(plane, 128 if gpu else 96)
    return (max(16, min(32 if gpu else 16, depth // 16 * 16)), side, side)


def _batch(patch: tuple[int, int, int], gpu: bool, memory_gib: float,
           scale: int = 1) -> tuple[int, int]:
    """(batch, patches per pass): DEFAULT_BATCH on a CPU (small batches learn more per
    CPU-minute, bench/README.md), 16 on a GPU (not measured there); on a CPU the pass holds as
    many patches as the memory budget allows (PATCH_MIB_256 per 256² patch), a divisor of the batch."""
    batch = 16 if gpu else DEFAULT_BATCH
    if gpu:
        return batch, batch
    per_patch = PATCH_MIB_256 * math.prod(patch) / 256**2 / scale**2  # the network's patch
    fits = max(1, int((memory_gib * 1024 - BASE_MIB) // max(1.0, per_patch)))
    micro = max(d for d in range(1, batch + 1) if d <= fits and batch % d == 0)
    return batch, micro


def apply(config: TrainConfig, auto: AutoConfig) -> TrainConfig:
    """``config`` with the automatic choices that belong to training (dim and context belong
    to the model: see ``model create --context``)."""
    return dataclasses.replace(config, patch=auto.patch, batch_size=auto.batch_size,
                               micro_batch_size=auto.micro_batch, holdout=auto.holdout,
                               keep_best=auto.keep_best, keep_best_on=auto.keep_best_on,
                               time_limit_minutes=auto.time_limit_minutes, lr_schedule="cosine",
                               epochs=max(config.epochs, UNTIL_BUDGET_EPOCHS),
                               # epochs of >= 256 patches (the validation F1 is logged per epoch)
                               steps_per_epoch=max(32, steps_for(EPOCH_PATCHES // 2, auto.batch_size)),
                               validation_steps=(steps_for(VALIDATION_PATCHES, auto.batch_size)
                                                 if config.validation_steps else 0))
