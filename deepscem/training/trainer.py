"""Train a U-Net on patches streamed from dataset files: ``train(model, info, ...) -> TrainResult``.

One call does the whole run: checks (model outputs vs dataset labels, patch vs samples and
model depth, target vs output activation) before anything heavy starts, samplers and
PyDatasets, compile, ``fit`` with the callbacks of :mod:`.callbacks`, the best weights put
back, BatchNorm statistics recomputed, and the model's metadata updated.

A batch of ``config.batch_size`` patches (one weight update) is computed in passes of
``deepscem.config.micro_batch(config)`` patches whose gradients Keras' optimizer averages
(``gradient_accumulation_steps``): memory follows the pass, not the batch. Progress, cancel,
the time limit and the LR schedule count steps (weight updates), not passes.

Targets per output activation (``config.target`` "label"): sigmoid outputs learn each label as
an independent binary mask (binary and multi-label). Softmax outputs get the labels as
channels too, with no background channel (the original's convention): a voxel outside every
label has an all-zero target, so cross-entropy ignores it and Dice counts it only through
false positives; give a softmax model an explicit background label if that matters.
``config.target`` "distance" trains on the ``label_XXXX_dt`` maps with a tanh or linear output
(MSE); a mask is then the prediction thresholded at 0.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from deepscem.config import BATCH_THREAD_NICE, BATCH_WORKERS, TrainConfig, micro_batch, run_steps, to_dict
from deepscem.dataset.normalization import canonical as canonical_normalization
from deepscem.devices import bf16_supported, has_gpu
from deepscem.errors import ConfigError, DeepScemWarning, ModelError
from deepscem.models.introspection import (
    SINGLE_SOFTMAX_NOTE,
    ModelInfo,
    check_grey_input,
    model_dimension,
    output_activation,
    output_channels,
    round_to_multiple,
    single_softmax,
    tile_multiple,
)
from deepscem.outputs import same_files
from deepscem.progress import CancelToken, ProgressCallback, check, emit
from deepscem.training import batchnorm, precision
from deepscem.training.augment import Augmentation
from deepscem.training.calibration import LabelCalibration, calibrate_on, logits_layer
from deepscem.training.callbacks import (
    AverageWeights,
    Budget,
    BudgetAndSchedule,
    EpochLog,
    KeepBest,
    NanGuard,
    ProgressAndCancel,
    RunState,
)
from deepscem.training.sampler import PatchSampler, hold_budget, hold_while_budget_lasts
from deepscem.training.sequence import PatchSequence
from deepscem.training.stop_reasons import StopReason

# Training patches whose statistics replace BatchNorm's moving averages at the end.
BATCHNORM_PATCHES = 128


@dataclass
class TrainResult:
    """What :func:`train` returns.

    model: the trained model (best weights when ``keep_best``), float32.
    info: the model's metadata with patch size, label names and ``history`` filled in.
    history: per-epoch columns (``{"loss": [...], "val_loss": [...], "lr": [...], ...}``).
    stopped_reason: a :class:`StopReason` (compares equal to its text); ``message`` says more.
    """

    model: keras.Model
    info: ModelInfo
    history: dict[str, list]
    stopped_reason: StopReason
    message: str = ""
    best_epoch: int | None = None
    steps_done: int = 0
    batchnorm_batches: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: per label, the threshold calibration on held-out data (empty when none was made)
    calibration: list[LabelCalibration] = field(default_factory=list)


def train(model: keras.Model, info: ModelInfo, train_paths: Sequence[str | os.PathLike],
          valid_paths: Sequence[str | os.PathLike] | None, config: TrainConfig, *,
          log_path: str | os.PathLike | None = None, progress: ProgressCallback | None = None,
          cancel: CancelToken | None = None, workers: int = BATCH_WORKERS,
          run_eagerly: bool = False) -> TrainResult:
    """Train ``model`` on random patches of the samples in ``train_paths``.

    valid_paths: files for validation (may be the training files); None, empty, or
    ``config.validation_steps == 0`` trains without validation (keep best, early stopping
    and LR reduction then watch the training loss). With ``config.holdout`` > 0 and no
    validation files of their own (None, or the training files), the last ``holdout`` of
    every sample's slices is held back for validation and never trained on.
    log_path: per-epoch CSV.
    Progress: one report per training batch (stage "train", unit "batches", metrics
    ``loss``, ``epoch``, ``val_loss``...). Cancel stops after the current batch and returns
    the best model so far (``stopped_reason`` "cancelled"); it does not raise.
    workers: threads building batches ahead of the training step (see
        ``deepscem.config.BATCH_WORKERS`` for why the default is not 1).
    run_eagerly: skip tf.function tracing (~5 s on a CPU); only worth it for runs of a
    few steps (tests, debugging).
    Raises ModelError / ConfigError / DatasetError before training when model, options
    and data do not fit together.
    """
    check(cancel)
    config = precision.resolved(config, info)
    run = _prepare(model, info, config)
    samplers: list[PatchSampler] = []
    try:
        train_sampler, valid_sampler = _samplers(run, train_paths, valid_paths, config, samplers,
                                                 progress, cancel)
        seed = int(config.seed) if config.seed is not None else int(np.random.SeedSequence().entropy % 2**31)
        train_seq, valid_seq = _sequences(run, train_sampler, valid_sampler, config, seed, workers)
        work = _compiled(model, run, config, run_eagerly)
        state = RunState(passes_per_step=run.passes, keep_best=bool(config.keep_best))
        callbacks, early, monitor = _callbacks(state, config, valid_seq is not None, progress, cancel,
                                               log_path)
        work.fit(train_seq, epochs=config.epochs, validation_data=valid_seq, callbacks=callbacks, verbose=0)
        if early is not None and early.stopped_epoch > 0:
            state.stop(StopReason.EARLY_STOPPING, f"no improvement of {monitor} for {early.patience} epochs")
        trained = state.steps_done > 0 and state.reason != StopReason.NAN
        n_bn = _recompute_batchnorm(work, train_sampler, run, state, seed, progress) if trained else 0
        if work is not model:
            model.set_weights(work.get_weights())
        calibration = _calibrate(model, info, run, config, (train_sampler, valid_sampler), state,
                                 seed, progress, cancel)
    finally:
        for sampler in samplers:
            sampler.close()

    history = _columns(state.rows)
    validated = valid_paths if valid_sampler is not None and valid_paths else (
        train_paths if valid_sampler is not None else None)
    new_info = _updated_info(info, config, run.patch, train_sampler.label_names, history, state,
                             train_paths, validated, run.micro, calibration)
    return TrainResult(model=model, info=new_info, history=history, stopped_reason=state.reason,
                       message=state.message, best_epoch=state.best_epoch, steps_done=state.steps_done,
                       batchnorm_batches=n_bn, rows=state.rows, calibration=calibration)


@dataclass
class _Run:
    """What the checks found out about model and options (shared by the steps of train)."""

    dim: int
    outputs: int
    context: int
    patch: tuple[int, int, int]
    loss: Any
    metrics: list
    micro: int
    passes: int
    augmentation: Augmentation


def _prepare(model: keras.Model, info: ModelInfo, config: TrainConfig) -> _Run:
    """Check model vs options (before anything heavy) and work out the run's shapes."""
    from deepscem.dataset.context import model_context
    from deepscem.models.losses import get_loss, get_metrics

    check_grey_input(model)
    dim = model_dimension(model)
    outputs = output_channels(model)
    activation = output_activation(model, info)
    patch = tuple(int(p) for p in config.patch)
    _check_patch(patch, dim, model, info)
    if config.target == "distance" and activation in ("sigmoid", "softmax"):
        raise ConfigError(f"distance-map targets lie in [-1, 1] and need a tanh or linear output; this "
                          f"model's output is {activation}: train on labels or use another model")
    if single_softmax(model, info):
        warnings.warn(SINGLE_SOFTMAX_NOTE, DeepScemWarning, stacklevel=3)
    # A batch of config.batch_size patches = `passes` forward/backward passes of `micro`
    # patches; Keras' optimizer averages their gradients and updates once per batch.
    micro = micro_batch(config)
    augmentation = Augmentation(rotate=config.rotate, flip=config.flip, deform=config.deform,
                                intensity=config.intensity, defects=config.defects, dim=dim)
    return _Run(dim=dim, outputs=outputs, context=model_context(model), patch=patch,
                loss=get_loss(config.loss, activation), metrics=get_metrics(activation),
                micro=micro, passes=int(config.batch_size) // micro, augmentation=augmentation)


def _samplers(run: _Run, train_paths, valid_paths, config: TrainConfig, opened: list[PatchSampler],
              progress: ProgressCallback | None, cancel: CancelToken | None):
    """(training sampler, validation sampler or None); every sampler opened is appended to
    ``opened`` (the caller closes them). Label-focus indexes are built here (progress)."""
    validate = config.validation_steps > 0
    same = not valid_paths or same_files(valid_paths, train_paths)
    holdout = float(config.holdout) if validate and same else 0.0
    common = dict(target=config.target, label_focus=config.label_focus, context=run.context,
                  normalization=config.normalization)
    train_sampler = PatchSampler(train_paths, run.patch, role="training",
                                 z_fraction=(0.0, 1.0 - holdout) if holdout else None, **common)
    opened.append(train_sampler)
    valid_sampler = None
    if validate and holdout:  # held-back slices of the training files
        valid_sampler = PatchSampler(train_paths, run.patch, role="validation",
                                     z_fraction=(1.0 - holdout, 1.0), **common)
        opened.append(valid_sampler)
    elif validate and valid_paths and same:
        valid_sampler = train_sampler  # the original DeepSCEM's habit: one file for both; index it once
    elif validate and valid_paths:
        valid_sampler = PatchSampler(valid_paths, run.patch, role="validation", **common)
        opened.append(valid_sampler)
    for sampler, role in ((train_sampler, "training"), (valid_sampler, "validation")):
        if sampler is not None:
            _check_outputs(run.outputs, sampler, role)
    # Partial labels anywhere: both sequences carry the annotated mask (the losses and metrics
    # then count only annotated voxels).
    for sampler in opened:
        sampler.with_mask = any(sm.with_mask for sm in opened)
    hold_while_budget_lasts(opened, hold_budget(has_gpu()), progress)  # on a GPU
    if config.label_focus > 0:
        for i, sampler in enumerate(opened):
            emit(progress, i, len(opened), "datasets", "index labels")
            sampler.build_index()
            check(cancel)
        emit(progress, len(opened), len(opened), "datasets", "index labels")
    return train_sampler, valid_sampler


def _sequences(run: _Run, train_sampler: PatchSampler, valid_sampler: PatchSampler | None,
               config: TrainConfig, seed: int, workers: int):
    """The training PyDataset (passes of ``run.micro`` patches) and the validation one (whole
    batches, the same patches every epoch, no augmentation) or None."""
    train_seq = PatchSequence(train_sampler, run.micro, config.steps_per_epoch * run.passes, dim=run.dim,
                              augmentation=run.augmentation, seed=seed, workers=workers,
                              thread_nice=BATCH_THREAD_NICE)
    valid_seq = None
    if valid_sampler is not None:
        valid_seq = PatchSequence(valid_sampler, config.batch_size, config.validation_steps, dim=run.dim,
                                  seed=seed + 1, fixed=True, workers=workers)
    return train_seq, valid_seq


def _compiled(model: keras.Model, run: _Run, config: TrainConfig, run_eagerly: bool) -> keras.Model:
    """The model to fit (a bfloat16 copy with mixed precision), compiled with Adam and gradient
    accumulation over the passes of a batch; BatchNorm momentum capped and fused (batchnorm.py)."""
    if config.mixed_precision and not bf16_supported():
        warnings.warn("mixed precision asked for, but this device has no fast bfloat16: "
                      "training may be slower than in float32", DeepScemWarning, stacklevel=3)
    work = model
    if config.mixed_precision:
        keep = precision.float32_layers(model, run.micro, run.patch)
        work = precision.with_policy(model, precision.MIXED, keep)
    batchnorm.prepare_for_training(work)
    optimizer = keras.optimizers.Adam(config.learning_rate, weight_decay=config.weight_decay or None,
                                      use_ema=bool(config.weight_average),
                                      ema_momentum=float(config.weight_average) or 0.99,
                                      gradient_accumulation_steps=run.passes if run.passes > 1 else None)
    work.compile(optimizer=optimizer, loss=run.loss, metrics=run.metrics, run_eagerly=run_eagerly)
    return work


def _callbacks(state: RunState, config: TrainConfig, validated: bool, progress, cancel, log_path):
    """(callbacks, the EarlyStopping callback or None, the monitored log key)."""
    monitor = "val_loss" if validated else "loss"
    # keep best on the validation score (F1 at 0.5) when asked and there is one; else the loss
    best_on = "val_f1" if validated and config.keep_best_on == "score" else monitor
    average = [AverageWeights(state)] if config.weight_average else []
    budget = Budget.minutes(config.time_limit_minutes, config.budget_clock)
    callbacks: list[keras.callbacks.Callback] = average + [
        NanGuard(state),
        ProgressAndCancel(state, run_steps(config), progress, cancel, budget=budget),
        EpochLog(state, log_path),
        KeepBest(state, best_on, restore=config.keep_best, fallback=monitor),
    ]
    early = None
    if config.early_stopping:
        early = keras.callbacks.EarlyStopping(monitor=monitor, patience=max(3, config.epochs // 8),
                                              min_delta=1e-4)
        callbacks.append(early)
    if budget.seconds or config.lr_schedule == "cosine":
        callbacks.append(BudgetAndSchedule(state, total_steps=config.steps_per_epoch * config.epochs,
                                           budget=budget, cosine=config.lr_schedule == "cosine",
                                           lr0=config.learning_rate))
    if config.reduce_lr and config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=0.5, patience=2, min_delta=1e-4, min_lr=config.learning_rate / 64))
    return callbacks + [a.finish for a in average], early, monitor


def _recompute_batchnorm(work: keras.Model, train_sampler: PatchSampler, run: _Run, state: RunState,
                         seed: int, progress: ProgressCallback | None) -> int:
    """Replace BatchNorm's moving statistics by averages over fresh training patches, in
    passes of the training micro-batch (the statistics BatchNorm trained with), with the
    kept weights; only flips and 90° rotations (``exact()``), so they describe the real images."""
    from deepscem.training.batchnorm import recompute_batchnorm

    rng = np.random.default_rng([seed, 7])
    plain = PatchSequence(train_sampler, run.micro, 1, dim=run.dim, seed=seed,
                          augmentation=run.augmentation.exact())
    # After a cancel the user is waiting: fewer batches (still far better than none).
    cancelled = state.reason == StopReason.CANCELLED
    patches = min(BATCHNORM_PATCHES // 4 if cancelled else BATCHNORM_PATCHES, max(2, state.steps_done) * 8)
    count = -(-patches // run.micro)

    def batches():
        for i in range(count):
            emit(progress, i, count, "batches", "batchnorm")
            yield plain.batch(rng)[0]
        emit(progress, count, count, "batches", "batchnorm")

    return recompute_batchnorm(work, batches())


def _calibrate(model: keras.Model, info: ModelInfo, run: _Run, config: TrainConfig,
               samplers: tuple[PatchSampler, PatchSampler | None], state: RunState, seed: int,
               progress: ProgressCallback | None, cancel: CancelToken | None) -> list[LabelCalibration]:
    """Threshold calibration (deepscem.training.calibration) when there is validation data of
    its own, a finished run and a sigmoid label model with DeepSCEM's head; else []."""
    train_sampler, valid_sampler = samplers
    if not (config.calibrate and valid_sampler is not None and valid_sampler is not train_sampler
            and state.steps_done > 0 and state.reason not in (StopReason.CANCELLED, StopReason.NAN)
            and config.target != "distance" and output_activation(model, info) == "sigmoid"
            and logits_layer(model) is not None):
        return []
    return calibrate_on(model, valid_sampler, run.patch, run.dim, run.micro, seed,
                        train_sampler.label_names, progress, cancel)


def _check_patch(patch: tuple[int, int, int], dim: int, model: keras.Model, info: ModelInfo) -> None:
    if dim == 2 and patch[0] != 1:
        raise ConfigError(f"a 2D model trains on single slices: use a patch with Z = 1, not {patch}")
    multiple = tile_multiple(model, info)
    axes = patch[1:] if dim == 2 else patch
    if any(p % multiple for p in axes):
        fitting = tuple(round_to_multiple(p, multiple) for p in axes)
        raise ConfigError(f"patch {patch} does not fit this model: every {'Y, X' if dim == 2 else 'Z, Y, X'} "
                          f"size must be a multiple of {multiple} (scale x 2**depth), e.g. {fitting}")


def _check_outputs(outputs: int, sampler: PatchSampler, role: str) -> None:
    if outputs != sampler.channels:
        if sampler.channels != sampler.n_labels:
            raise ModelError(f"the model has {outputs} output(s); with boundary targets the "
                             f"{role} dataset's {sampler.n_labels} label(s) need "
                             f"{sampler.channels}")
        raise ModelError(f"the model has {outputs} output(s) but the {role} dataset has {sampler.n_labels} "
                         f"label(s); use a model with {sampler.n_labels} output(s) or another dataset")


def _columns(rows: list[dict[str, Any]]) -> dict[str, list]:
    """CSV rows -> {column: values}; columns never filled (val_* without validation) left out."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    columns = {k: [None if row.get(k, "") == "" else row[k] for row in rows] for k in keys}
    return {k: v for k, v in columns.items() if any(x is not None for x in v)}


def _updated_info(info: ModelInfo, config: TrainConfig, patch: tuple[int, int, int], label_names: list[str],
                  history: dict[str, list], state: RunState, train_paths, valid_paths,
                  micro: int, calibration: Sequence[LabelCalibration] = ()) -> Any:
    record = {
        "config": to_dict(config),
        "micro_batch": micro,
        "epochs": history,
        "stopped_reason": state.reason.value,
        "message": state.message,
        "best_epoch": state.best_epoch,
        "steps": state.steps_done,
        "train_datasets": [Path(p).name for p in train_paths],
        "valid_datasets": [Path(p).name for p in valid_paths] if valid_paths else [],
        "calibration": [c.as_dict() for c in calibration],
    }
    previous = info.history
    if isinstance(previous, dict) and previous:
        record["previous"] = previous
    values: dict[str, Any] = {"patch_size": patch, "history": _jsonable(record),
                              "normalization": canonical_normalization(config.normalization)}
    if label_names and len(label_names) == info.outputs:
        values["label_names"] = list(label_names)
    return dataclasses.replace(info, **values)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
