"""Losses and metrics for segmentation, registered as Keras serialisable objects.

Written with ``keras.ops`` only (any backend). Tensors are channels-last:
``y_true`` (batch, [Z,] Y, X, C) binary {0, 1} masks (one channel per label, or one-hot
for softmax); ``y_pred`` the same shape, probabilities in [0, 1] (sigmoid/softmax) or
values for tanh/linear outputs (distance maps, used with MSE).

Names accepted by :func:`get_loss` (case-insensitive, as in the original DeepSCEM's ``--train-model``):
"Dice", "CrossEntropy", "MSE", and "Dice+CrossEntropy"; also "Dice+BoundaryCrossEntropy" and
"Dice+TopKCrossEntropy".

Partial labels: ``y_true`` may carry one channel more than ``y_pred``, the annotated mask
(1 = labelled, 0 = unknown; see :mod:`deepscem.dataset.annotation`). Every loss and metric here
then counts only annotated voxels: a Dice over them, a mean cross-entropy / squared error over
them. Without that channel they are the usual dense losses. The mask travels inside the target
(not as Keras sample weights) because a Dice is a ratio over the batch, not a mean of
per-voxel terms that weights could scale; and the saved losses need no new option.
"""

from __future__ import annotations

import keras
from keras import ops

from deepscem import config
from deepscem.errors import ConfigError

PACKAGE = "deepscem"
PROBABILITY_ACTIVATIONS = ("sigmoid", "softmax")


def _spatial_and_batch_axes(x) -> tuple[int, ...]:
    return tuple(range(len(x.shape) - 1))


def split_mask(y_true, y_pred):
    """(targets, mask) as float32: ``mask`` (..., 1) is the extra last channel of ``y_true``
    when it has one more channel than ``y_pred`` (partial labels), else None (all annotated)."""
    y_true = ops.cast(y_true, "float32")
    channels = y_pred.shape[-1]
    if channels is not None and y_true.shape[-1] == channels + 1:
        return y_true[..., :channels], y_true[..., channels:]
    return y_true, None


def masked_mean(values, mask):
    """Mean of per-voxel ``values`` (batch, [Z,] Y, X) over annotated voxels (all if mask is
    None); 0 when nothing in the batch is annotated (the sampler never draws such a batch)."""
    if mask is None:
        return ops.mean(values)
    mask = mask[..., 0]
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


def soft_dice_per_channel(y_true, y_pred, smooth: float = 1.0):
    """Soft Dice per channel over the whole batch: (C,) float32 in [0, 1].

    Summing over the batch (not per patch) keeps patches without foreground from adding a
    noisy all-or-nothing term; ``smooth`` makes an empty mask with an empty prediction
    score 1 instead of 0/0 = NaN. With a mask channel (see the module docstring) only
    annotated voxels count.
    """
    y_true, mask = split_mask(y_true, y_pred)
    y_pred = ops.cast(y_pred, "float32")
    if mask is not None:
        y_true, y_pred = y_true * mask, y_pred * mask
    axes = _spatial_and_batch_axes(y_pred)
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return (2.0 * intersection + smooth) / (total + smooth)


def voxel_crossentropy(targets, y_pred, categorical: bool = False):
    """Cross-entropy per voxel (batch, [Z,] Y, X) of ``targets`` without a mask channel: binary
    per channel averaged over channels (sigmoid, multi-label) or categorical over one-hot
    channels (softmax)."""
    y_pred = ops.cast(y_pred, "float32")
    if categorical:
        return keras.losses.categorical_crossentropy(targets, y_pred)
    return keras.losses.binary_crossentropy(targets, y_pred)


def crossentropy(y_true, y_pred, categorical: bool = False):
    """Mean cross-entropy (:func:`voxel_crossentropy`) over (annotated) voxels."""
    y_true, mask = split_mask(y_true, y_pred)
    return masked_mean(voxel_crossentropy(y_true, y_pred, categorical), mask)


@keras.saving.register_keras_serializable(package=PACKAGE)
class CrossEntropyLoss(keras.losses.Loss):
    """Cross-entropy (binary for sigmoid outputs, categorical for softmax) over annotated voxels."""

    def __init__(self, categorical: bool = False, name: str = "crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.categorical = bool(categorical)

    def call(self, y_true, y_pred):
        return crossentropy(y_true, y_pred, self.categorical)

    def get_config(self):
        return {**super().get_config(), "categorical": self.categorical}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MeanSquaredErrorLoss(keras.losses.Loss):
    """Squared error averaged over channels and (annotated) voxels (distance maps, any output)."""

    def __init__(self, name: str = "mse", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true, mask = split_mask(y_true, y_pred)
        per_voxel = ops.mean(ops.square(y_true - ops.cast(y_pred, "float32")), axis=-1)
        return masked_mean(per_voxel, mask)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiceLoss(keras.losses.Loss):
    """1 - mean over channels of the soft Dice (binary and multi-label alike)."""

    def __init__(self, smooth: float = 1.0, name: str = "dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smooth = float(smooth)

    def call(self, y_true, y_pred):
        return 1.0 - ops.mean(soft_dice_per_channel(y_true, y_pred, self.smooth))

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiceCrossEntropyLoss(keras.losses.Loss):
    """Dice loss + cross-entropy (binary for sigmoid, categorical for softmax), equal weights.

    Cross-entropy gives useful gradients early (when the Dice overlap is ~0), Dice keeps
    rare labels from being drowned by the background.
    """

    def __init__(self, smooth: float = 1.0, categorical: bool = False,
                 name: str = "dice_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smooth = float(smooth)
        self.categorical = bool(categorical)

    def call(self, y_true, y_pred):
        dice = 1.0 - ops.mean(soft_dice_per_channel(y_true, y_pred, self.smooth))
        return crossentropy(y_true, y_pred, self.categorical) + dice

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth, "categorical": self.categorical}


def boundary_band(y_true, radius: int):
    """1 where a voxel lies within ``radius`` voxels of a label boundary (either side), per
    channel: a max-pool dilation minus a min-pool erosion of the binary targets."""
    size = 2 * int(radius) + 1
    dilated = ops.max_pool(y_true, size, strides=1, padding="same")
    eroded = -ops.max_pool(-y_true, size, strides=1, padding="same")
    return dilated - eroded


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiceBoundaryCrossEntropyLoss(keras.losses.Loss):
    """Dice + a cross-entropy that weighs voxels near label boundaries ``1 + weight`` times
    (the U-Net paper's border weighting, here a band of ``radius`` voxels on both sides of
    every boundary), normalised by the mean weight so its scale matches plain cross-entropy.

    For labels drawn along the middle of a membrane (drosophila-vnc's mitochondria) the
    boundary voxels are where a model errs: this spends more of the gradient on them.
    """

    def __init__(self, smooth: float = 1.0, categorical: bool = False, radius: int = 3,
                 weight: float = 5.0, name: str = "dice_boundary_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smooth, self.categorical = float(smooth), bool(categorical)
        self.radius, self.weight = int(radius), float(weight)

    def call(self, y_true, y_pred):
        dice = 1.0 - ops.mean(soft_dice_per_channel(y_true, y_pred, self.smooth))
        targets, mask = split_mask(y_true, y_pred)
        p = ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1.0 - 1e-7)
        # unannotated voxels (partial labels) count as background here, so that what the
        # labels say off the annotated voxels cannot change the weights
        band = boundary_band(targets if mask is None else targets * mask, self.radius)
        if self.categorical:
            weights = 1.0 + self.weight * ops.max(band, axis=-1)
            weighted = -ops.sum(targets * ops.log(p), axis=-1) * weights
        else:
            per_channel = -(targets * ops.log(p) + (1.0 - targets) * ops.log(1.0 - p))
            channel_weights = 1.0 + self.weight * band
            weighted = ops.mean(per_channel * channel_weights, axis=-1)
            weights = ops.mean(channel_weights, axis=-1)
        ce = masked_mean(weighted, mask) / ops.maximum(masked_mean(weights, mask), 1.0)
        return ce + dice

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth, "categorical": self.categorical,
                "radius": self.radius, "weight": self.weight}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiceTopKCrossEntropyLoss(keras.losses.Loss):
    """Dice + the mean cross-entropy of the hardest ``fraction`` of the (annotated) voxels of
    the batch (nnU-Net's TopK loss, k = 10 %): easy background stops diluting the gradient, which
    then goes to what the model still gets wrong (dark membranes, edges) wherever it is.

    The voxels are ranked by a sort, so k may follow the annotated count and any backend traces it.
    Measured at 15 CPU-minutes it lowered precision on drosophila-vnc and left Lucchi++ unchanged
    (bench/README.md, "One run at a time"): an option, not the default.
    """

    def __init__(self, smooth: float = 1.0, categorical: bool = False, fraction: float = 0.1,
                 name: str = "dice_topk_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 < float(fraction) <= 1.0:
            raise ConfigError(f"the TopK fraction must be in (0, 1], got {fraction}")
        self.smooth, self.categorical, self.fraction = float(smooth), bool(categorical), float(fraction)

    def call(self, y_true, y_pred):
        dice = 1.0 - ops.mean(soft_dice_per_channel(y_true, y_pred, self.smooth))
        targets, mask = split_mask(y_true, y_pred)
        per_voxel = voxel_crossentropy(targets, y_pred, self.categorical)
        # unannotated voxels cost 0, so they rank last and are never among the top k
        counted = ops.ones_like(per_voxel) if mask is None else mask[..., 0]
        ranked = ops.sort(ops.reshape(per_voxel * counted, (-1,)))  # ascending: the top k last
        k = ops.maximum(ops.ceil(self.fraction * ops.sum(counted)), 1.0)
        n = ops.shape(ranked)[0]
        top = ops.cast(ops.arange(n, dtype="float32") >= ops.cast(n, "float32") - k, "float32")
        return ops.sum(ranked * top) / k + dice

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth, "categorical": self.categorical,
                "fraction": self.fraction}


def _normalize_name(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "").replace(" ", "")


LOSS_ALIASES = {
    "dice": "dice",
    "crossentropy": "crossentropy", "ce": "crossentropy", "bce": "crossentropy",
    "binarycrossentropy": "crossentropy", "cce": "crossentropy",
    "categoricalcrossentropy": "crossentropy",
    "mse": "mse", "meansquarederror": "mse",
    "dice+crossentropy": "dice+crossentropy", "dicecrossentropy": "dice+crossentropy",
    "dicece": "dice+crossentropy", "dice+ce": "dice+crossentropy",
    "dice+boundarycrossentropy": "dice+boundarycrossentropy",
    "diceboundarycrossentropy": "dice+boundarycrossentropy", "dice+boundaryce": "dice+boundarycrossentropy",
    "dice+topkcrossentropy": "dice+topkcrossentropy", "dicetopkcrossentropy": "dice+topkcrossentropy",
    "dice+topk": "dice+topkcrossentropy", "dice+topkce": "dice+topkcrossentropy",
}
LOSS_NAMES = config.LOSS_NAMES


def canonical_loss_name(name: str) -> str:
    """"Dice" -> "dice", "CrossEntropy"/"bce" -> "crossentropy", ...; ConfigError if unknown."""
    canonical = LOSS_ALIASES.get(_normalize_name(str(name)))
    if canonical is None:
        raise ConfigError(f"unknown loss {name!r}; choose one of Dice, CrossEntropy, MSE, "
                          "Dice+CrossEntropy, Dice+BoundaryCrossEntropy, Dice+TopKCrossEntropy")
    return canonical


def get_loss(name: str, activation: str = "sigmoid") -> keras.losses.Loss:
    """The loss called ``name`` for a model whose output activation is ``activation``.

    Dice and cross-entropy need probabilities (sigmoid or softmax); with softmax the
    cross-entropy is categorical (one-hot targets), with sigmoid binary per channel
    (multi-label). MSE fits any activation (tanh/linear for distance maps).
    """
    loss = canonical_loss_name(name)
    if loss == "mse":
        return MeanSquaredErrorLoss()
    if activation not in PROBABILITY_ACTIVATIONS:
        raise ConfigError(f"the {loss} loss needs a sigmoid or softmax output, this model has "
                          f"{activation}; use MSE, or a model with a sigmoid output")
    categorical = activation == "softmax"
    if loss == "dice":
        return DiceLoss()
    if loss == "crossentropy":
        return CrossEntropyLoss(categorical=categorical)
    if loss == "dice+boundarycrossentropy":
        return DiceBoundaryCrossEntropyLoss(categorical=categorical)
    if loss == "dice+topkcrossentropy":
        return DiceTopKCrossEntropyLoss(categorical=categorical)
    return DiceCrossEntropyLoss(categorical=categorical)


class _ConfusionMetric(keras.metrics.Metric):
    """Counts true/false positives and false negatives over all channels and batches.

    Predictions and targets are binarised at ``threshold`` (softmax outputs: argmax one-hot).
    """

    def __init__(self, threshold: float = 0.5, one_hot: bool = False, name: str | None = None,
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = float(threshold)
        self.one_hot = bool(one_hot)
        self.tp = self.add_variable(shape=(), initializer="zeros", name="tp", dtype="float32")
        self.fp = self.add_variable(shape=(), initializer="zeros", name="fp", dtype="float32")
        self.fn = self.add_variable(shape=(), initializer="zeros", name="fn", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, mask = split_mask(y_true, y_pred)
        y_pred = ops.cast(y_pred, "float32")
        truth = ops.cast(y_true >= self.threshold, "float32")
        if self.one_hot:
            pred = ops.one_hot(ops.argmax(y_pred, axis=-1), ops.shape(y_pred)[-1], dtype="float32")
        else:
            pred = ops.cast(y_pred >= self.threshold, "float32")
        if mask is not None:  # unannotated voxels are neither hits nor misses
            truth, pred = truth * mask, pred * mask
        self.tp.assign_add(ops.sum(truth * pred))
        self.fp.assign_add(ops.sum((1.0 - truth) * pred))
        self.fn.assign_add(ops.sum(truth * (1.0 - pred)))

    def reset_state(self):
        for v in (self.tp, self.fp, self.fn):
            v.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold, "one_hot": self.one_hot}


@keras.saving.register_keras_serializable(package=PACKAGE)
class F1Score(_ConfusionMetric):
    """F1 (= Dice) of the thresholded masks: 2TP / (2TP + FP + FN); 1.0 when both are empty."""

    def __init__(self, threshold: float = 0.5, one_hot: bool = False, name: str = "f1", **kwargs):
        super().__init__(threshold=threshold, one_hot=one_hot, name=name, **kwargs)

    def result(self):
        denominator = 2.0 * self.tp + self.fp + self.fn
        return ops.where(denominator > 0, 2.0 * self.tp / ops.maximum(denominator, 1.0), 1.0)


@keras.saving.register_keras_serializable(package=PACKAGE)
class IoUScore(_ConfusionMetric):
    """IoU (Jaccard) of the thresholded masks: TP / (TP + FP + FN); 1.0 when both are empty."""

    def __init__(self, threshold: float = 0.5, one_hot: bool = False, name: str = "iou", **kwargs):
        super().__init__(threshold=threshold, one_hot=one_hot, name=name, **kwargs)

    def result(self):
        denominator = self.tp + self.fp + self.fn
        return ops.where(denominator > 0, self.tp / ops.maximum(denominator, 1.0), 1.0)


def get_metrics(activation: str = "sigmoid") -> list[keras.metrics.Metric]:
    """Metrics to compile with: F1 and IoU at 0.5 for probability outputs (argmax for
    softmax), mean absolute error for tanh/linear outputs."""
    if activation in PROBABILITY_ACTIVATIONS:
        one_hot = activation == "softmax"
        return [F1Score(one_hot=one_hot), IoUScore(one_hot=one_hot)]
    return [MeanAbsoluteError()]


@keras.saving.register_keras_serializable(package=PACKAGE)
class MeanAbsoluteError(keras.metrics.Metric):
    """Absolute error averaged over channels and (annotated) voxels of all batches."""

    def __init__(self, name: str = "mae", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total", dtype="float32")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, mask = split_mask(y_true, y_pred)
        per_voxel = ops.mean(ops.abs(y_true - ops.cast(y_pred, "float32")), axis=-1)
        weight = ops.ones_like(per_voxel) if mask is None else mask[..., 0]
        self.total.assign_add(ops.sum(per_voxel * weight))
        self.count.assign_add(ops.sum(weight))

    def reset_state(self):
        for v in (self.total, self.count):
            v.assign(0.0)

    def result(self):
        return self.total / ops.maximum(self.count, 1.0)
