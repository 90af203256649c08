"""Partial labels in the losses and metrics: a mask channel after the targets makes every loss
count only annotated voxels (hand-computed values, and equality with the dense loss on the
annotated voxels alone)."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from deepscem.models import losses

# 4 voxels of one 2D patch (batch 1, Y 2, X 2, one label); the mask keeps the first two.
TRUTH = np.array([1, 0, 1, 0], np.float32).reshape(1, 2, 2, 1)
PRED = np.array([0.8, 0.6, 0.2, 0.9], np.float32).reshape(1, 2, 2, 1)
MASK = np.array([1, 1, 0, 0], np.float32).reshape(1, 2, 2, 1)


def with_mask(truth, mask):
    return np.concatenate([truth, mask], axis=-1)


@pytest.mark.parametrize("name, expected", [
    # Dice over voxels 1-2: (2 * 0.8 + 1) / (1 + 1.4 + 1)
    ("dice", 1 - 2.6 / 3.4),
    ("crossentropy", (-math.log(0.8) - math.log(0.4)) / 2),
    ("mse", (0.2 ** 2 + 0.6 ** 2) / 2),
    ("dice+crossentropy", 1 - 2.6 / 3.4 + (-math.log(0.8) - math.log(0.4)) / 2),
])
def test_masked_losses_by_hand(name, expected):
    loss = losses.get_loss(name, "sigmoid" if name != "mse" else "linear")
    assert float(loss(with_mask(TRUTH, MASK), PRED)) == pytest.approx(expected, rel=1e-5)
    # an all-ones mask is the dense loss
    ones = np.ones_like(MASK)
    assert float(loss(with_mask(TRUTH, ones), PRED)) == pytest.approx(float(loss(TRUTH, PRED)), rel=1e-6)


@pytest.mark.parametrize("name, activation", [
    ("dice", "sigmoid"), ("crossentropy", "sigmoid"), ("mse", "tanh"), ("dice+crossentropy", "sigmoid"),
    ("crossentropy", "softmax"), ("dice", "softmax"),
])
def test_masked_equals_dense_on_annotated_voxels(rng, name, activation):
    """Multi-label (3 channels), 3D patches: the masked loss = the dense loss of the annotated
    voxels gathered into one (1, n, 1, 1, C) patch."""
    shape = (2, 3, 4, 5)
    truth = (rng.random(shape + (3,)) > 0.6).astype(np.float32)
    pred = rng.random(shape + (3,)).astype(np.float32)
    if activation == "softmax":
        truth = np.eye(3, dtype=np.float32)[rng.integers(0, 3, shape)]
        pred = pred / pred.sum(-1, keepdims=True)
    mask = (rng.random(shape + (1,)) > 0.5).astype(np.float32)
    keep = mask[..., 0] > 0
    loss = losses.get_loss(name, activation)
    masked = float(loss(with_mask(truth, mask), pred))
    dense = float(loss(truth[keep].reshape(1, -1, 1, 1, 3), pred[keep].reshape(1, -1, 1, 1, 3)))
    assert masked == pytest.approx(dense, rel=1e-5)
    # what is under the mask's zeros does not matter
    scrambled = np.where(mask > 0, pred, rng.random(pred.shape).astype(np.float32))
    assert float(loss(with_mask(truth, mask), scrambled)) == pytest.approx(masked, rel=1e-5)


def test_masked_metrics():
    pred = np.array([1, 1, 0, 1], np.float32).reshape(1, 2, 2, 1)  # voxel 4 a FP, outside the mask
    for metric, expected in ((losses.F1Score(), 2 / 3), (losses.IoUScore(), 0.5)):
        metric.update_state(with_mask(TRUTH, MASK), pred)  # annotated: TP 1, FP 1, FN 0
        assert float(metric.result()) == pytest.approx(expected)
    mae = losses.MeanAbsoluteError()
    mae.update_state(with_mask(TRUTH, MASK), PRED)
    assert float(mae.result()) == pytest.approx((0.2 + 0.6) / 2)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(mae))
    assert restored.name == "mae"


def test_nothing_annotated_gives_zero_not_nan():
    zeros = np.zeros_like(MASK)
    for name in ("crossentropy", "mse"):
        assert float(losses.get_loss(name, "sigmoid")(with_mask(TRUTH, zeros), PRED)) == 0.0
