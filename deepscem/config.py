"""Frozen configuration records shared by the core, the CLI and the GUI dialogs.

Each is a plain dataclass with documented defaults, saved as JSON beside what it
produced (model metadata, training log folder), and built from CLI options or a
dialog. ``to_dict``/``from_dict`` round-trip through JSON; unknown keys are refused
with a clear error so a typo in a saved config does not pass silently.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any, TypeVar

from deepscem.errors import ConfigError

T = TypeVar("T")


# Patches (or tiles) per step: far above what fits any accelerator, low enough to refuse a typo
# (--batch-size 10**20) at once.
MAX_BATCH = 4096


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from a dict written by :func:`to_dict`; unknown keys are an error."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)


@dataclass(frozen=True)
class UNetConfig:
    """A U-Net's architecture (the original's "New model" dialog).

    dim: 2 (slices, input (Y, X, 1)) or 3 (volumes, input (Z, Y, X, 1)).
    block: "residual" or "vgg". kernel_size: convolution size per axis.
    filters: filters at the first level; level l has ``filters * 2**l``.
    blocks_per_level: conv blocks per level. normalization: "batchnorm", "instance" (per
    patch and channel: prediction then depends a little on the tile size) or "none".
    depth: number of poolings (tiles must be multiples of 2**depth).
    outputs: number of output channels (= labels). activation: sigmoid, softmax, tanh, linear.
    context: 2D only: neighbouring slices on either side given as extra input channels
    (2.5D, CDeep3M's 3fm/5fm: context 1 = 3 slices, 2 = 5); input (Y, X, 1 + 2 * context).
    scale: 2D only: the network works at 1/scale of the image's YX resolution (scale x scale
    block means in, bilinear up-sampling of the logits out, inside the model), so a patch or
    tile of the same cost sees scale**2 times the field of view; inputs, outputs and labels stay
    at full resolution (tiles multiples of scale * 2**depth).
    """

    dim: int = 2
    block: str = "residual"
    kernel_size: int = 3
    filters: int = 16
    blocks_per_level: int = 2
    normalization: str = "batchnorm"
    depth: int = 4
    outputs: int = 1
    activation: str = "sigmoid"
    name: str = "unet"
    context: int = 0
    scale: int = 1

    def __post_init__(self) -> None:
        if self.dim not in (2, 3):
            raise ConfigError(f"dimension must be 2 or 3, got {self.dim}")
        if self.block not in ("residual", "vgg"):
            raise ConfigError(f"block must be 'residual' or 'vgg', got {self.block!r}")
        if self.normalization not in ("batchnorm", "instance", "none"):
            raise ConfigError(f"unknown normalization {self.normalization!r}: use batchnorm, instance, none")
        if self.activation not in ("sigmoid", "softmax", "tanh", "linear"):
            raise ConfigError("activation must be sigmoid, softmax, tanh or linear, "
                              f"got {self.activation!r}")
        # Upper bounds far above any useful network, so a typo is refused at once instead of
        # exhausting memory (--filters 100000) or the recursion limit (--blocks-per-level 300).
        for field_name, top in (("kernel_size", 15), ("filters", 2048), ("blocks_per_level", 16),
                                ("outputs", 1000)):
            if not 1 <= int(getattr(self, field_name)) <= top:
                raise ConfigError(f"{field_name} must be between 1 and {top}, got "
                                  f"{getattr(self, field_name)}")
        if not 0 <= int(self.depth) <= 8:
            raise ConfigError(f"depth must be between 0 and 8, got {self.depth}")
        if not 0 <= int(self.context) <= 4 or (int(self.context) and int(self.dim) != 2):
            raise ConfigError(f"context (neighbouring slices per side, 0-4) is for 2D models; got "
                              f"{self.context} for a {self.dim}D model")
        if int(self.scale) not in (1, 2, 4) or (int(self.scale) > 1 and int(self.dim) != 2):
            raise ConfigError(f"scale (1, 2 or 4: the network works at 1/scale of the YX resolution) "
                              f"is for 2D models; got {self.scale} for a {self.dim}D model")

    @property
    def input_channels(self) -> int:
        """Input channels: 1 grey slice, plus 2 * context neighbouring slices for 2.5D."""
        return 1 + 2 * int(self.context)


# Threads building training batches ahead of the step (Keras's ordered enqueuer). With 1, Keras
# hands the sequence to tf.data's from_generator + prefetch instead, which on a 2-core CPU sat
# idle ~20 s at the start of every second or third epoch (bench/README.md, "Training").
BATCH_WORKERS = 2
# On a GPU the training data is held in memory when it takes at most this fraction of the
# memory available (PatchSampler.hold_in_memory): HDF5 reads hold the GIL, so more threads did
# not build batches faster (~540 patches/s of 256², bench/README.md "Batch building on a GPU").
HOLD_FRACTION = 0.25
# Niceness added to those threads (Linux), so that on a CPU shared with other jobs the training
# step's threads get the cores first; the builders run far ahead on a CPU. 0 = leave them.
# The environment variable DEEPSCEM_BATCH_THREAD_NICE overrides it (bench/training.py compares).
BATCH_THREAD_NICE = int(os.environ.get("DEEPSCEM_BATCH_THREAD_NICE", "0"))

# Patches per forward/backward pass on a CPU when TrainConfig.micro_batch_size is None. Training
# memory grows by ~180 MB per patch of 256² in a pass (default U-Net, float32): passes of 2 keep
# the default run (batches of 8) at ~1.2 GiB instead of ~1.9 GiB for whole batches, for ~5 %
# fewer patches/s; passes of 4 peak at ~1.5 GiB (bench/README.md, "Training").
MICRO_BATCH = 2

# Patches per weight update by default (TrainConfig.batch_size, the automatic configuration on a
# CPU). At a fixed CPU budget smaller batches learn more: at 15 CPU-minutes batches of 2 beat 8
# in all four pairs (two seeds; drosophila-vnc +0.020 / +0.023 IoU, Lucchi++ +0.009 / +0.010;
# bench/README.md, "Batch size"). Epoch and validation lengths are set in patches.
DEFAULT_BATCH = 2
# Patches per epoch and per validation pass when their steps are not chosen (see steps_for).
EPOCH_PATCHES = 512
VALIDATION_PATCHES = 64
#: Epochs that mean "until the time limit" (``train --auto``, the GUI's "Choose from the data"):
#: with a time limit and at least this many epochs, progress counts steps without a total.
UNTIL_BUDGET_EPOCHS = 10_000


def steps_for(patches: int, batch_size: int) -> int:
    """Steps of ``batch_size`` that make about ``patches`` patches (at least 1):
    ``steps_for(EPOCH_PATCHES, 8) == 64``, ``steps_for(EPOCH_PATCHES, 2) == 256``."""
    return max(1, int(patches) // max(1, int(batch_size)))


def scaled_patch(patch: tuple[int, int, int], scale: int) -> tuple[int, int, int]:
    """The patch a ``UNetConfig.scale`` model trains on for the same cost per step as ``patch``
    with scale 1: Y and X times ``scale`` (its network sees them at 1/scale).
    ``scaled_patch((1, 256, 256), 2) == (1, 512, 512)``."""
    return (int(patch[0]), int(patch[1]) * int(scale), int(patch[2]) * int(scale))

#: The losses training offers (canonical names; deepscem.models.losses builds them): CLI and GUI, no Keras.
LOSS_NAMES = ("dice", "crossentropy", "mse", "dice+crossentropy", "dice+boundarycrossentropy",
              "dice+topkcrossentropy")

# Fraction of every sample's slices held back for validation when training is given no
# validation data of its own (train --auto, the GUI's Train dialog with the same file ticked).
HOLDOUT = 0.15


@dataclass(frozen=True)
class TrainConfig:
    """How to train (). Patch is (Z, Y, X); a 2D model needs Z = 1.

    loss: "dice", "crossentropy", "mse" or "dice+crossentropy" (their sum; case-insensitive).
    target: "label" (binary masks), "label+boundary" (masks and object boundaries derived
    from them, for a model created with boundary outputs) or "distance" (``label_XXXX_dt``
    maps, for MSE with a tanh/linear output).
    validation_steps = 0 means no validation. mixed_precision: bfloat16 compute; None = on for 2D
    models where the device computes it fast. label_focus: fraction of patches centred on a
    labelled voxel (0..1). Augmentation: rotate (90° in the patch plane), flip (and Z flip
    in 3D), deform (rotation by any angle, zoom, elastic displacement in the patch plane),
    intensity (brightness/contrast/gamma jitter, noise, blur), defects (missing and
    misaligned sections; 2.5D and 3D models only). normalization: how grey values become
    [0, 1] ("minmax" or "percentile LOW HIGH", see deepscem.dataset.normalization); stored
    in the model so prediction repeats it.
    """

    # Defaults chosen for 2D mitochondria on lucchi-pp-sized volumes: Dice + cross-entropy
    # (Dice alone has weak, noisy gradients early on), 8192 patches of 256² (16 epochs of 256
    # steps of 2; ~15 min on an 8-core CPU at ~9 patches/s), half the patches centred on a
    # labelled voxel (8% foreground), LR halved on plateaus and the best epoch kept (IoU wobbles
    # under a fixed LR). Adam at 2e-3, not Keras' 1e-3: at 20 CPU-minutes it gained on both
    # shared data sets with two seeds (drosophila-vnc +0.021 / +0.023 IoU, Lucchi++ +0.007 /
    # +0.010). Batches of DEFAULT_BATCH, not 8: the same patches as 4x the weight updates, which
    # at 15 CPU-minutes gained on both data sets with two seeds (bench/README.md).
    loss: str = "dice+crossentropy"
    batch_size: int = DEFAULT_BATCH
    patch: tuple[int, int, int] = (1, 256, 256)
    steps_per_epoch: int = steps_for(EPOCH_PATCHES, DEFAULT_BATCH)
    epochs: int = 16
    validation_steps: int = steps_for(VALIDATION_PATCHES, DEFAULT_BATCH)
    learning_rate: float = 2e-3
    keep_best: bool = True
    early_stopping: bool = False
    reduce_lr: bool = True
    rotate: bool = True
    flip: bool = True
    deform: bool = False
    intensity: bool = False
    defects: bool = False
    normalization: str = "percentile 0.5 99.5"
    label_focus: float = 0.5
    target: str = "label"
    # bfloat16 compute (float32 weights and output): None = for 2D models where the device
    # computes bfloat16 fast (devices.bf16_supported: GPUs of compute capability >= 8, CPUs with
    # bf16 instructions), else float32; the trainer records what it used. On such a CPU it made
    # 17-29 % more steps per CPU-second at the same IoU on both shared data sets (bench/README.md).
    mixed_precision: bool | None = None
    seed: int | None = None
    # "plateau": halve the LR when the monitored loss stalls (if reduce_lr); "cosine": decay it
    # smoothly to ~0 over the run (its length = epochs x steps, or time_limit_minutes if that
    # ends first), best for a fixed budget; "constant".
    lr_schedule: str = "plateau"
    # Wall-clock budget: training stops after the batch that crosses it (best weights kept).
    time_limit_minutes: float | None = None
    # What the time limit counts: "wall" (elapsed) or "cpu" (this process's CPU time, all
    # threads: the same computation whatever else runs on a shared machine).
    budget_clock: str = "wall"
    # Patches per forward/backward pass. A batch (one weight update) is computed in
    # batch_size / micro_batch_size passes whose gradients are averaged, so training memory
    # follows the micro-batch, not the batch; BatchNorm normalises each pass on its own.
    # None: MICRO_BATCH on a CPU (a batch of 8 x 256² then trains in < 1.5 GiB of RAM),
    # the whole batch on a GPU. Must divide batch_size.
    micro_batch_size: int | None = None
    # Fraction of every sample's slices (the last ones) held back for validation when no
    # validation data of its own is given (none, or the training files): validation then
    # measures slices the model never trained on. 0 = validate on the training data (the
    # seed's habit). Samples too thin to split are validated on as a whole.
    holdout: float = 0.0
    # What keep_best watches: "loss" (validation loss, the seed's) or "score" (validation F1
    # at 0.5; the loss when there is no validation or no score).
    keep_best_on: str = "loss"
    # After training, with validation data of its own (held-back slices or another dataset): move
    # each label's threshold to the one with the best validation IoU (folded into the last layer).
    # Off by default: on drosophila-vnc's 2 held-back slices it chose 0.1, -0.027 test IoU.
    calibrate: bool = False
    # Momentum of an exponential moving average of the weights, kept by the optimizer during
    # training; validation, keep-best and the trained model use the average, the steps move
    # the raw weights (0 = off; 0.99 averages over the last ~100 steps, or passes when a batch
    # is computed in several). At 15 CPU-minutes it lost 0.004 / 0.011 IoU (bench/README.md).
    weight_average: float = 0.0
    # Decoupled weight decay (AdamW): each step shrinks every weight by lr x weight_decay
    # (0 = off, plain Adam; 0.01 is AdamW's usual value).
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.weight_average) < 1.0:
            raise ConfigError(f"weight_average is a momentum in [0, 1) (0.99, or 0 = off), got "
                              f"{self.weight_average}")
        if not 0.0 <= float(self.holdout) < 1.0:
            raise ConfigError(f"holdout is a fraction of the slices in [0, 1), got {self.holdout}")
        if self.budget_clock not in ("wall", "cpu"):
            raise ConfigError(f"budget_clock must be 'wall' or 'cpu', got {self.budget_clock!r}")
        if self.keep_best_on not in ("loss", "score"):
            raise ConfigError(f"keep_best_on must be 'loss' or 'score', got {self.keep_best_on!r}")
        if self.lr_schedule not in ("plateau", "cosine", "constant"):
            raise ConfigError(f"lr_schedule must be plateau, cosine or constant, got {self.lr_schedule!r}")
        if self.time_limit_minutes is not None and float(self.time_limit_minutes) <= 0:
            raise ConfigError(f"time_limit_minutes must be positive, got {self.time_limit_minutes}")
        if len(self.patch) != 3 or any(int(p) < 1 for p in self.patch):
            raise ConfigError(f"patch must be three positive sizes (Z, Y, X), got {self.patch}")
        for field_name, top in (("batch_size", MAX_BATCH), ("steps_per_epoch", 10**9),
                                ("epochs", 10**6)):
            if not 1 <= int(getattr(self, field_name)) <= top:
                raise ConfigError(f"{field_name} must be between 1 and {top}, got "
                                  f"{getattr(self, field_name)}")
        if not (math.isfinite(float(self.learning_rate)) and float(self.learning_rate) > 0):
            raise ConfigError(f"the learning rate must be a number > 0 (typically 1e-4 to 1e-2), got "
                              f"{self.learning_rate}")
        if not 0.0 <= float(self.weight_decay) * float(self.learning_rate) < 1.0:
            raise ConfigError(f"weight_decay must be >= 0 with learning rate x weight decay < 1 (e.g. "
                              f"0.01, or 0 = off), got {self.weight_decay}")
        if self.seed is not None and not 0 <= int(self.seed) < 2**32:
            raise ConfigError(f"the seed must be a whole number between 0 and {2**32 - 1}, got {self.seed}")
        if int(self.validation_steps) < 0:
            raise ConfigError(f"validation_steps must be 0 or more, got {self.validation_steps}")
        if self.micro_batch_size is not None and (
                int(self.micro_batch_size) < 1 or int(self.batch_size) % int(self.micro_batch_size)):
            raise ConfigError(f"micro_batch_size must divide batch_size ({self.batch_size}), got "
                              f"{self.micro_batch_size}: e.g. {max(1, int(self.batch_size) // 2)}")
        if not 0.0 <= float(self.label_focus) <= 1.0:
            raise ConfigError(f"label_focus is a fraction between 0 and 1, got {self.label_focus}")
        if self.target not in ("label", "distance", "label+boundary"):
            raise ConfigError(f"target must be 'label', 'distance' or 'label+boundary', got "
                              f"{self.target!r}")
        parse_normalization(self.normalization)


def parse_normalization(method: str | None) -> tuple[str, float, float]:
    """How grey values map to [0, 1] (see deepscem.dataset.normalization), parsed:
    "minmax" (or None / "", the models written before this option) -> ("minmax", 0, 100);
    "percentile 0.5 99.5" -> ("percentile", 0.5, 99.5). ConfigError otherwise."""
    text = (method or "minmax").strip().lower()
    if text == "minmax":
        return "minmax", 0.0, 100.0
    parts = text.replace(",", " ").split()
    if parts and parts[0] in ("percentile", "percentiles") and len(parts) in (1, 3):
        try:
            low, high = (0.5, 99.5) if len(parts) == 1 else (float(parts[1]), float(parts[2]))
        except ValueError:
            low, high = -1.0, -1.0
        if 0.0 <= low < high <= 100.0:
            return "percentile", low, high
    raise ConfigError("normalisation must be 'minmax' or 'percentile LOW HIGH' with 0 <= LOW < HIGH "
                      f"<= 100 (e.g. 'percentile 0.5 99.5'), got {method!r}")


def run_steps(config: TrainConfig) -> int | None:
    """The training steps of the whole run; None when the time limit, not the epochs, ends it
    (their count then only stands for "many")."""
    if config.time_limit_minutes and config.epochs >= UNTIL_BUDGET_EPOCHS:
        return None
    return config.steps_per_epoch * config.epochs


def micro_batch(config: TrainConfig, *, gpu: bool | None = None) -> int:
    """The patches per pass that ``config`` trains with (see ``TrainConfig.micro_batch_size``).

    Auto (None): the whole batch on a GPU; on a CPU the largest divisor of the batch up to
    MICRO_BATCH, or the whole batch when that would be 1 (an odd batch is not split into
    single patches, which BatchNorm cannot normalise well). ``gpu`` None asks the backend.
    Examples on a CPU (MICRO_BATCH 2): batch 8 -> 2, 6 -> 2, 4 -> 2, 2 -> 2, 5 -> 5, 1 -> 1.
    """
    batch = int(config.batch_size)
    if config.micro_batch_size is not None:
        return int(config.micro_batch_size)
    if gpu is None:
        from deepscem.devices import has_gpu

        gpu = has_gpu()
    if gpu:
        return batch
    divisor = max(d for d in range(1, min(batch, MICRO_BATCH) + 1) if batch % d == 0)
    return divisor if divisor > 1 else batch


# Test-time augmentation: (quarter turns in the YX plane, flip of X) of each transform, by
# the number averaged. Rotations come before flips: on both shared data sets the 180-degree
# rotation bought about half of the 8 transforms' gain and the four rotations nearly all of it
# (bench/README.md, "Test-time augmentation").
TTA_TRANSFORMS: dict[int, tuple[tuple[int, int], ...]] = {
    2: ((0, 0), (2, 0)),
    4: ((0, 0), (1, 0), (2, 0), (3, 0)),
    8: tuple((k, f) for k in range(4) for f in (0, 1)),
}


@dataclass(frozen=True)
class PredictConfig:
    """How to predict (). Patch is the tile (Z, Y, X); None = the model's default
    (larger than its training patch). overlap: fraction of a tile shared with its neighbour
    (0 = none); None (default) = tile and overlap chosen from the volume, the memory budget and
    the network's border effect (deepscem.inference.tile_choice). threshold: None keeps float
    outputs, a value writes uint8 {0, 1}.
    tta: test-time augmentation, the number of transforms of each tile in the YX plane whose
    outputs are averaged: 0 (or False, 1) = off; 2 = the tile and its 180-degree rotation; 4 =
    its four 90-degree rotations; 8 (or True) = the four rotations with and without a flip of X
    (2x, 4x, 8x the prediction time; bench/tta.py). z_smooth: Gaussian smoothing of the outputs along Z,
    sigma in slices (0 = off), before the threshold: slices a 2D model predicted one by one
    then agree with their neighbours; choose it well below the Z extent of the smallest
    object. min_size: after thresholding, remove connected objects of fewer voxels (0 = keep
    all; see deepscem.postprocessing.small_objects). engine: what runs the network
    ("keras", "onnxruntime", "openvino", or "auto": Keras on a GPU, the fastest engine that
    keeps the accuracy on a CPU; see deepscem.inference.engines); precision: None (the
    engine's default), "float32" or "bfloat16" (openvino only).
    """

    patch: tuple[int, int, int] | None = None
    overlap: float | None = None
    batch_size: int = 4
    threshold: float | None = None
    tta: int = 0
    min_size: int = 0
    z_smooth: float = 0.0
    engine: str = "keras"
    precision: str | None = None

    def __post_init__(self) -> None:
        tta = 8 if self.tta is True else 0 if self.tta is False or self.tta == 1 else self.tta
        if tta not in TTA_TRANSFORMS and tta != 0:
            raise ConfigError(f"tta is the number of transforms averaged: 0 (off), 2, 4 or 8, got "
                              f"{self.tta!r}")
        object.__setattr__(self, "tta", int(tta))
        if not 0.0 <= float(self.z_smooth) <= 50.0:
            raise ConfigError(f"z_smooth is a Gaussian sigma in slices between 0 (off) and 50, got "
                              f"{self.z_smooth}")
        if int(self.min_size) < 0:
            raise ConfigError(f"min_size is a number of voxels >= 0, got {self.min_size}")
        if int(self.min_size) > 1 and self.threshold is None:
            raise ConfigError("removing small objects works on binary masks: give a threshold too "
                              "(e.g. --threshold 0.5)")
        if self.patch is not None and (len(self.patch) != 3 or any(int(p) < 1 for p in self.patch)):
            raise ConfigError(f"patch must be three positive sizes (Z, Y, X), got {self.patch}")
        if self.overlap is not None and not 0.0 <= float(self.overlap) < 1.0:
            raise ConfigError(f"overlap is a fraction in [0, 1), got {self.overlap}")
        if not 1 <= int(self.batch_size) <= MAX_BATCH:
            raise ConfigError(f"batch_size must be between 1 and {MAX_BATCH}, got {self.batch_size}")
        if self.engine not in ("auto", "keras", "onnxruntime", "openvino"):
            raise ConfigError(f"engine must be auto, keras, onnxruntime or openvino, got {self.engine!r}")
        if self.threshold is not None and not 0.0 <= float(self.threshold) <= 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {self.threshold}")
