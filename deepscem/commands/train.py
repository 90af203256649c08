"""``run.py train MODEL_IN MODEL_OUT TRAIN_DS VALID_DS [options]`` and the original DeepSCEM's
``--train-model``.

Paths and options are checked before Keras is imported; the model, the datasets and the
patch are checked against each other before the first batch (``training.trainer``).
Ctrl+C (or SIGTERM) once stops after the current batch, saves the best model so far and exits 1;
twice aborts without saving.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from deepscem.config import (
    BATCH_WORKERS,
    EPOCH_PATCHES,
    LOSS_NAMES,
    VALIDATION_PATCHES,
    TrainConfig,
    scaled_patch,
    steps_for,
)
from deepscem.errors import ConfigError, DatasetError, DeepScemError, Interrupted, ModelError
from deepscem.outputs import check_output
from deepscem.training.stop_reasons import StopReason

_DEFAULT = TrainConfig()


def _note_given(namespace, dest: str) -> None:
    """Record that option ``dest`` was given on the command line, so --auto fills in only what
    the user left out."""
    namespace.given = set(getattr(namespace, "given", set())) | {dest}


class _Given(argparse.Action):
    """A plain "store" that also notes the option was given (see _note_given)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _note_given(namespace, self.dest)


class _GivenFlag(argparse.BooleanOptionalAction):
    """--flag / --no-flag that also notes it was given (see _note_given)."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        _note_given(namespace, self.dest)


def register(subparsers) -> None:
    """Long because it is one flat argparse declaration per action and option, read top to
    bottom like the --help it produces; split, the options of one command would scatter."""
    d = _DEFAULT
    p = subparsers.add_parser(
        "train", help="train a model on random patches of dataset samples",
        description="Train MODEL_IN on random patches streamed from the samples of TRAIN_DS, "
                    "validate on VALID_DS (may be the same file), and write the trained model to "
                    "MODEL_OUT with its metadata (patch size, labels, normalisation, history) and a "
                    "per-epoch CSV log beside it. 2D models train on single slices (patch Z = 1).")
    p.add_argument("model_in", metavar="MODEL_IN", help="model file to start from (.keras or .h5, "
                   "including the original DeepSCEM's); create one with 'run.py model create'")
    p.add_argument("model_out", metavar="MODEL_OUT", help="trained model file to write (.keras or .h5)")
    p.add_argument("train_ds", metavar="TRAIN_DS",
                   help="training dataset file (.hdf5); several files: separate with commas")
    p.add_argument("valid_ds", metavar="VALID_DS",
                   help="validation dataset file(s) (.hdf5, comma-separated); may be TRAIN_DS")
    p.add_argument("--loss", default=d.loss, type=str.lower,
                   choices=LOSS_NAMES,
                   help="Dice, cross-entropy, MSE (with --target distance), Dice+cross-entropy, "
                        "Dice + a cross-entropy that weighs voxels within 3 px of a label boundary "
                        "6x, or Dice + the cross-entropy of the hardest 10 %% of voxels "
                        "(default %(default)s)")
    p.add_argument("--batch-size", type=int, action=_Given, default=d.batch_size, metavar="B",
                   help="patches per training step (weight update) (default %(default)s: at a fixed "
                        "CPU budget small batches learned more than 8; bench/README.md)")
    p.add_argument("--micro-batch", type=int, action=_Given, default=None, metavar="M",
                   help="patches per forward/backward pass: each batch is computed in B/M passes whose "
                        "gradients are averaged, so memory follows M, not B; must divide B "
                        "(default: 2 on a CPU, B on a GPU; 0 = B)")
    p.add_argument("--patch", nargs=3, action=_Given, type=int, default=list(d.patch),
                   metavar=("Z", "Y", "X"),
                   help="patch size; Z = 1 for 2D models; sizes multiples of 2**depth (x the "
                        "model's scale) (default %(default)s, Y and X x the model's --scale)")
    p.add_argument("--steps-per-epoch", type=int, action=_Given, default=d.steps_per_epoch, metavar="S",
                   help=f"training steps (batches) per epoch (default: {EPOCH_PATCHES} patches, "
                        "i.e. %(default)s steps of the default batch)")
    p.add_argument("--epochs", type=int, action=_Given, default=d.epochs, metavar="E",
                   help="default %(default)s")
    p.add_argument("--validation-steps", type=int, action=_Given, default=d.validation_steps,
                   metavar="V", help=f"validation batches per epoch; 0 = no validation (default: "
                                     f"{VALIDATION_PATCHES} patches, i.e. %(default)s batches of the "
                                     f"default batch)")
    p.add_argument("--lr", type=float, default=d.learning_rate, metavar="LR",
                   help="initial learning rate of Adam (default %(default)s)")
    p.add_argument("--weight-average", type=float, default=d.weight_average, metavar="MOMENTUM",
                   help="validate, keep and save a moving average of the weights, e.g. 0.99 (the "
                        "last ~100 steps); 0 = the weights as trained (default %(default)s)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, metavar="WD",
                   help="decoupled weight decay (AdamW): each step shrinks the weights by LR x WD, "
                        "e.g. 0.01; 0 = plain Adam (default %(default)s)")
    flag = argparse.BooleanOptionalAction
    p.add_argument("--keep-best", action=_GivenFlag, default=d.keep_best,
                   help="keep the weights of the epoch with the lowest validation loss (training "
                        "loss without validation) (default: on; off with --auto)")
    p.add_argument("--early-stopping", action=flag, default=d.early_stopping,
                   help="stop when the monitored loss stops improving (default: off)")
    p.add_argument("--reduce-lr", action=flag, default=d.reduce_lr,
                   help="halve the learning rate when the loss plateaus for 2 epochs (default: on)")
    p.add_argument("--lr-schedule", choices=("plateau", "cosine", "constant"), default=d.lr_schedule,
                   action=_Given,
                   help="plateau: halve the LR when the loss stalls (with --reduce-lr); cosine: decay "
                        "it smoothly to ~0 over the run, best with --time-limit; constant "
                        "(default %(default)s)")
    p.add_argument("--time-limit", type=float, action=_Given, default=None, metavar="MINUTES",
                   help="stop after this many minutes of training (after the current batch), keeping "
                        "the best weights; with --lr-schedule cosine the LR decays over this time")
    _add_data_and_auto_options(p, d)
    p.add_argument("--label-focus", type=float, default=d.label_focus, metavar="FRACTION",
                   help="fraction of patches centred on a labelled voxel, labels chosen evenly so "
                        "rare labels are seen; 0..1, or a percentage up to 100 (default %(default)s)")
    p.add_argument("--target", choices=("label", "distance"), default=d.target,
                   help="learn the labels, or their distance maps label_XXXX_dt (MSE with a "
                        "tanh/linear output; add them with 'run.py dataset distance-transform') "
                        "(default %(default)s)")
    p.add_argument("--mixed-precision", action=flag, default=d.mixed_precision,
                   help="compute in bfloat16 (faster on GPUs of compute capability >= 8 and CPUs "
                        "with bf16 instructions, slower elsewhere) (default: on for 2D models where "
                        "it is faster, off elsewhere)")
    p.add_argument("--seed", type=int, default=None, help="random seed for repeatable patches")
    p.add_argument("--workers", type=int, default=BATCH_WORKERS, metavar="N",
                   help="threads building batches (default %(default)s; 1 hands batching to tf.data, "
                        "which can stall ~20 s at the start of an epoch)")
    p.add_argument("--log", metavar="CSV", help="per-epoch CSV log (default: MODEL_OUT with .csv)")
    p.add_argument("--overwrite", action="store_true", help="replace MODEL_OUT and its CSV log if they exist")
    p.set_defaults(func=run)


def _add_data_and_auto_options(p, d: TrainConfig) -> None:
    """Augmentation, normalisation, validation split and --auto (issue 16)."""
    flag = argparse.BooleanOptionalAction
    p.add_argument("--rotate", action=flag, default=d.rotate,
                   help="random 90-degree rotations in the patch plane (default: on)")
    p.add_argument("--flip", action=flag, default=d.flip,
                   help="random flips (Y, X, and Z for 3D) (default: on)")
    p.add_argument("--deform", action=flag, default=d.deform,
                   help="random rotation by any angle, zoom (0.83-1.2x) and smooth elastic displacement "
                        "in the patch plane, on half the patches (default: off)")
    p.add_argument("--intensity", action=flag, default=d.intensity,
                   help="random brightness/contrast/gamma, noise and blur (default: off)")
    p.add_argument("--defects", action=flag, default=d.defects,
                   help="EM section defects: missing and misaligned neighbouring sections, for 2.5D "
                        "(model create --context) and 3D models (default: off)")
    p.add_argument("--normalization", default=d.normalization, metavar="METHOD",
                   help="grey values to [0, 1]: 'minmax' (the volume's min/max) or 'percentile LOW HIGH' "
                        "(those percentiles of each volume; robust to specks and borders); stored in "
                        "the model and repeated by prediction (default %(default)r)")
    p.add_argument("--holdout", type=float, default=d.holdout, metavar="FRACTION", action=_Given,
                   help="without validation data of its own (VALID_DS = TRAIN_DS), validate on the last "
                        "FRACTION of every sample's slices and never train on them (default "
                        "%(default)s: validate on the training data, as the seed does)")
    p.add_argument("--keep-best-on", choices=("loss", "score"), default=d.keep_best_on, action=_Given,
                   help="what --keep-best watches: validation loss, or validation F1 (default "
                        "%(default)s)")
    p.add_argument("--calibrate", action=flag, default=d.calibrate,
                   help="after training, with validation data of its own (--holdout, --auto, or a "
                        "VALID_DS other than TRAIN_DS): move each label's threshold to the one with "
                        "the best validation IoU, folded into the model so that 0.5 means it "
                        "(default: off; a few held-back slices can choose a threshold that the rest "
                        "of the volume does not share)")
    p.add_argument("--auto", action="store_true",
                   help="choose patch, batch, passes, held-back validation slices (scored every "
                        "epoch; the final weights kept) and a time budget from the data and the "
                        "memory budget (printed before training, stored in the model); options "
                        "given explicitly win")
    p.add_argument("--memory", type=float, default=None, metavar="GIB",
                   help="with --auto: memory budget for training on a CPU (default 1.5 GiB)")


def run(args: argparse.Namespace) -> int:
    focus = args.label_focus / 100.0 if 1.0 < args.label_focus <= 100.0 else args.label_focus
    micro = args.batch_size if args.micro_batch == 0 else args.micro_batch  # None: auto
    given = set(getattr(args, "given", set()))
    # not chosen: epochs and validation passes of the default number of patches, whatever the batch
    steps = args.steps_per_epoch if "steps_per_epoch" in given else steps_for(EPOCH_PATCHES, args.batch_size)
    validation = (args.validation_steps if "validation_steps" in given
                  else steps_for(VALIDATION_PATCHES, args.batch_size))
    config = TrainConfig(loss=args.loss, batch_size=args.batch_size, patch=tuple(args.patch),
                         steps_per_epoch=steps, epochs=args.epochs,
                         validation_steps=validation, learning_rate=args.lr,
                         keep_best=args.keep_best, early_stopping=args.early_stopping,
                         reduce_lr=args.reduce_lr, rotate=args.rotate, flip=args.flip, deform=args.deform,
                         intensity=args.intensity, label_focus=focus, target=args.target,
                         mixed_precision=args.mixed_precision, seed=args.seed,
                         lr_schedule=args.lr_schedule, time_limit_minutes=args.time_limit,
                         micro_batch_size=micro, defects=args.defects, normalization=args.normalization,
                         holdout=args.holdout, keep_best_on=args.keep_best_on,
                         calibrate=args.calibrate, weight_average=args.weight_average,
                         weight_decay=args.weight_decay)
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    return train_files(args.model_in, args.model_out, _split(args.train_ds), _split(args.valid_ds), config,
                       log_path=args.log, overwrite=args.overwrite, workers=args.workers,
                       auto=(given, args.memory) if args.auto else None,
                       patch_given="patch" in given)


def run_legacy(values: dict[str, str]) -> int:
    """The original DeepSCEM's ``--train-model`` with its 12 values (``cli.TRAIN_MODEL_FIELDS``).

    As the original: keep the best checkpoint (validation loss), write the CSV log next to
    MODEL_OUT, save the model (replacing MODEL_OUT). Other options keep TrainConfig's defaults.
    """
    def number(field: str) -> int:
        try:
            return int(values[field])
        except ValueError:
            raise ConfigError(f"--train-model {field.upper()} must be a whole number, "
                              f"got {values[field]!r}") from None

    check_files(values["model_in"], values["model_out"], [values["train_dataset"]],
                [values["valid_dataset"]], overwrite=True)  # before the slow Keras import
    from deepscem.models.losses import canonical_loss_name

    config = TrainConfig(loss=canonical_loss_name(values["loss"]), batch_size=number("batch_size"),
                         patch=(number("patch_z"), number("patch_y"), number("patch_x")),
                         steps_per_epoch=number("steps_per_epoch"), epochs=number("epochs"),
                         validation_steps=number("validation_steps"), keep_best=True)
    return train_files(values["model_in"], values["model_out"], [values["train_dataset"]],
                       [values["valid_dataset"]], config, overwrite=True)


def _split(text: str) -> list[str]:
    """Comma-separated dataset files; an existing file whose name holds a comma is one file."""
    if Path(text).is_file():
        return [text]
    return [p for p in (s.strip() for s in text.split(",")) if p]


def train_files(model_in: str, model_out: str, train_ds: list[str], valid_ds: list[str],
                config: TrainConfig, *, log_path: str | None = None, overwrite: bool = False,
                workers: int = BATCH_WORKERS, auto: tuple[set, float | None] | None = None,
                patch_given: bool = True) -> int:
    """Load, train with a tqdm bar, save; returns 0. A NaN/inf loss saves the last good weights
    and then raises DeepScemError (exit code 1). auto: (options given explicitly, memory budget
    in GiB or None) to fill in the others from the data (deepscem.training.autoconfig).
    patch_given False: the patch is the default one, scaled by the model's ``scale`` (a network
    at half the resolution trains on patches twice as large, for the same cost per step)."""
    model_in_path, out, log = check_files(model_in, model_out, train_ds, valid_ds, log_path,
                                          overwrite=overwrite)

    from deepscem.devices import describe_device
    from deepscem.models.introspection import model_scale
    from deepscem.models.storage import H5_SUFFIXES, KERAS_SUFFIXES, load_model, save_model

    if out.suffix.lower() not in (*KERAS_SUFFIXES, *H5_SUFFIXES):
        raise ModelError(f"MODEL_OUT must end in .keras or .h5, got {out.name}")
    from deepscem.devices import cpu_name
    from deepscem.progress import CancelToken, TqdmProgress, process_cancelled, process_token
    from deepscem.training.precision import resolved
    from deepscem.training.trainer import train

    model, info = load_model(model_in_path)
    config = resolved(config, info)  # e.g. bfloat16 where fast (said below), as train() would
    if not patch_given and model_scale(info) > 1:
        config = dataclasses.replace(config, patch=scaled_patch(config.patch, model_scale(info)))
    if auto is not None:
        config = _auto_config(config, model, info, train_ds, valid_ds, *auto)
    device = describe_device()
    print(f"device: {device}" + (f" ({cpu_name()})" if device.endswith("CPU") else ""))
    print(f"model: {model_in_path.name}, {info.dimension}D, {info.outputs} output(s), "
          f"{model.count_params():,} parameters")
    print(f"training on {', '.join(train_ds)}; validating on "
          f"{', '.join(valid_ds) if config.validation_steps else 'nothing (validation steps 0)'}")
    print(_describe(config))
    # The command line's Ctrl+C/SIGTERM token (deepscem.interrupts): the first signal stops
    # after the current batch and the best weights so far are saved; a second aborts.
    cancel = process_token() or CancelToken()
    with TqdmProgress() as bar:
        result = train(model, info, train_ds, valid_ds, config, log_path=log, progress=bar,
                       cancel=cancel, workers=workers)
    save_model(result.model, out, result.info, overwrite=True)
    best = "" if result.best_epoch is None or not config.keep_best else \
        f" (weights of epoch {result.best_epoch + 1})"
    for row in result.calibration:
        print("calibration: " + row.describe())
    print(f"{result.stopped_reason}: {result.steps_done} steps; wrote {out}{best} and {log}")
    if result.stopped_reason == StopReason.NAN:
        raise DeepScemError(f"{result.message}; saved them to {out}")
    if process_cancelled():
        raise Interrupted(f"{process_cancelled()} after {result.steps_done} steps; saved the best "
                          f"weights so far to {out}{best}")
    return 0


def _describe(config: TrainConfig) -> str:
    """The run's line before training: patch, batch (and passes), length, loss, LR, precision."""
    from deepscem.config import micro_batch, run_steps

    micro = micro_batch(config)
    passes = f" in {config.batch_size // micro} passes of {micro}" if micro < config.batch_size else ""
    length = (f"epochs of {config.steps_per_epoch} steps until the {config.time_limit_minutes:g}-minute "
              "time limit" if run_steps(config) is None else
              f"{config.steps_per_epoch} steps x {config.epochs} epochs")
    return (f"patch {tuple(config.patch)}, batch {config.batch_size}{passes}, {length}, "
            f"loss {config.loss}, lr {config.learning_rate}{', bfloat16' if config.mixed_precision else ''}")


# TrainConfig fields --auto sets, by the CLI option (argparse dest) that overrides each.
_AUTO_FIELDS = {"patch": "patch", "batch_size": "batch_size", "micro_batch_size": "micro_batch",
                "holdout": "holdout", "keep_best": "keep_best", "keep_best_on": "keep_best_on",
                "time_limit_minutes": "time_limit", "lr_schedule": "lr_schedule", "epochs": "epochs",
                "steps_per_epoch": "steps_per_epoch", "validation_steps": "validation_steps"}


def _auto_config(config: TrainConfig, model, info, train_ds: list[str], valid_ds: list[str],
                 given: set, memory: float | None) -> TrainConfig:
    """``config`` with the automatic choices for the options not given; prints every choice."""
    from deepscem.dataset.context import model_context
    from deepscem.devices import has_gpu
    from deepscem.models.introspection import model_scale
    from deepscem.training import autoconfig

    choice, hint = autoconfig.for_model(train_ds, valid_ds, dim=info.dimension,
                                        context=model_context(model), scale=model_scale(info),
                                        gpu=has_gpu(), memory_gib=memory)
    if hint and not info.history:
        print(f"auto: hint: {hint}")
    auto = autoconfig.apply(config, choice)
    kept = {f: getattr(config, f) for f, dest in _AUTO_FIELDS.items() if dest in given}
    for line in choice.lines():
        print(line)
    if kept:
        print("auto: kept as given: " + ", ".join(f"{k}={v}" for k, v in kept.items()))
    return dataclasses.replace(auto, **kept)


def check_files(model_in: str, model_out: str, train_ds: list[str], valid_ds: list[str],
                log_path: str | None = None, *, overwrite: bool) -> tuple[Path, Path, Path]:
    """The inputs exist, and every file training writes (MODEL_OUT and its CSV log) can be written
    and destroys no input, checked before the model loads: a run of hours is never thrown away
    at the end. Returns (MODEL_IN, MODEL_OUT, log) paths."""
    model_in, out = Path(model_in), Path(model_out)
    if not model_in.is_file():
        raise ModelError(f"model file {model_in} does not exist; create one with 'run.py model create'")
    for path in [*train_ds, *valid_ds]:
        if not Path(path).is_file():
            raise DatasetError(f"dataset file {path} does not exist")
    log = Path(log_path) if log_path else out.with_suffix(".csv")
    inputs = [("MODEL_IN", model_in), *(("a training dataset (TRAIN_DS)", p) for p in train_ds),
              *(("a validation dataset (VALID_DS)", p) for p in valid_ds)]
    check_output(out, inputs=inputs, overwrite=overwrite, what="MODEL_OUT", error=ModelError)
    check_output(log, inputs=[*inputs, ("MODEL_OUT", out)], overwrite=overwrite,
                 what="CSV log", error=ModelError)
    return model_in, out, log

