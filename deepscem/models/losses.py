"""Losses and metrics for segmentation, registered as Keras serialisable objects.

Written with ``keras.ops`` only (any backend). Tensors are channels-last:
``y_true`` (batch, [Z,] Y, X, C) binary {0, 1} masks (one channel per label, or one-hot
for softmax); ``y_pred`` the same shape, probabilities in [0, 1] (sigmoid/softmax) or
values for tanh/linear outputs (distance maps, used with MSE).

Names accepted by :func:`get_loss` (case-insensitive, as in the original DeepSCEM's ``--train-model``):
"Dice", "CrossEntropy", "MSE", and "Dice+CrossEntropy".
"""

from __future__ import annotations

import keras
from keras import ops

from deepscem.errors import ConfigError

PACKAGE = "deepscem"
PROBABILITY_ACTIVATIONS = ("sigmoid", "softmax")


def _spatial_and_batch_axes(x) -> tuple[int, ...]:
    return tuple(range(len(x.shape) - 1))


def soft_dice_per_channel(y_true, y_pred, smooth: float = 1.0):
    """Soft Dice per channel over the whole batch: (C,) float32 in [0, 1].

    Summing over the batch (not per patch) keeps patches without foreground from adding a
    noisy all-or-nothing term; ``smooth`` makes an empty mask with an empty prediction
    score 1 instead of 0/0 = NaN.
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    axes = _spatial_and_batch_axes(y_pred)
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return (2.0 * intersection + smooth) / (total + smooth)


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
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        if self.categorical:
            ce = keras.losses.categorical_crossentropy(y_true, y_pred)
        else:
            ce = keras.losses.binary_crossentropy(y_true, y_pred)
        dice = 1.0 - ops.mean(soft_dice_per_channel(y_true, y_pred, self.smooth))
        return ops.mean(ce) + dice

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth, "categorical": self.categorical}


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
}
LOSS_NAMES = ("dice", "crossentropy", "mse", "dice+crossentropy")


def canonical_loss_name(name: str) -> str:
    """"Dice" -> "dice", "CrossEntropy"/"bce" -> "crossentropy", ...; ConfigError if unknown."""
    canonical = LOSS_ALIASES.get(_normalize_name(str(name)))
    if canonical is None:
        raise ConfigError(f"unknown loss {name!r}; choose one of Dice, CrossEntropy, MSE, "
                          "Dice+CrossEntropy")
    return canonical


def get_loss(name: str, activation: str = "sigmoid") -> keras.losses.Loss:
    """The loss called ``name`` for a model whose output activation is ``activation``.

    Dice and cross-entropy need probabilities (sigmoid or softmax); with softmax the
    cross-entropy is categorical (one-hot targets), with sigmoid binary per channel
    (multi-label). MSE fits any activation (tanh/linear for distance maps).
    """
    loss = canonical_loss_name(name)
    if loss == "mse":
        return keras.losses.MeanSquaredError(name="mse")
    if activation not in PROBABILITY_ACTIVATIONS:
        raise ConfigError(f"the {loss} loss needs a sigmoid or softmax output, this model has "
                          f"{activation}; use MSE, or a model with a sigmoid output")
    categorical = activation == "softmax"
    if loss == "dice":
        return DiceLoss()
    if loss == "crossentropy":
        if categorical:
            return keras.losses.CategoricalCrossentropy(name="crossentropy")
        return keras.losses.BinaryCrossentropy(name="crossentropy")
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
        y_pred = ops.cast(y_pred, "float32")
        truth = ops.cast(ops.cast(y_true, "float32") >= self.threshold, "float32")
        if self.one_hot:
            pred = ops.one_hot(ops.argmax(y_pred, axis=-1), ops.shape(y_pred)[-1], dtype="float32")
        else:
            pred = ops.cast(y_pred >= self.threshold, "float32")
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
    return [keras.metrics.MeanAbsoluteError(name="mae")]
