"""Loss values on hand-computed cases: perfect, worst, ignored pixels, empty masks."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from keras import ops

from segkit.losses import LOSSES, SegmentationLoss, bce_dice, cross_entropy, soft_dice

IGNORE = 255


def value(x) -> float:
    return float(ops.convert_to_numpy(x))


def test_binary_cross_entropy_by_hand():
    y_true = np.array([[[1, 0]]], np.uint8)[..., None]
    y_pred = np.array([[[0.8, 0.4]]], np.float32)[..., None]
    expected = -(math.log(0.8) + math.log(0.6)) / 2
    assert value(cross_entropy(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)


def test_multiclass_cross_entropy_by_hand_ignores_boundary_pixels():
    y_true = np.array([[[0, 2, IGNORE]]], np.uint8)[..., None]
    y_pred = np.array([[[[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.9, 0.05, 0.05]]]], np.float32)
    expected = -(math.log(0.7) + math.log(0.6)) / 2
    assert value(cross_entropy(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_ignored_pixels_contribute_nothing(name):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, (2, 8, 8, 1)).astype(np.uint8)
    y_true[:, :3] = IGNORE
    y_pred = rng.uniform(0.05, 0.95, (2, 8, 8, 1)).astype(np.float32)
    changed = y_pred.copy()
    changed[:, :3] = 1 - changed[:, :3]  # anything at all where the label is ignored
    assert value(LOSSES[name](y_true, y_pred)) == pytest.approx(
        value(LOSSES[name](y_true, changed))
    )


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_perfect_prediction_is_near_zero_and_worst_is_large(name):
    y_true = np.zeros((1, 4, 4, 1), np.uint8)
    y_true[0, 1:3, 1:3] = 1
    perfect = y_true.astype(np.float32)
    worst = 1 - perfect
    assert value(LOSSES[name](y_true, perfect)) < 1e-5
    assert value(LOSSES[name](y_true, worst)) > 0.9


def test_soft_dice_by_hand_with_smooth_term():
    y_true = np.array([[[1, 1, 0, 0]]], np.uint8)[..., None]
    y_pred = np.array([[[1.0, 0.5, 0.5, 0.0]]], np.float32)[..., None]
    # intersection 1.5, sum(p) 2, sum(t) 2, smooth 1 -> 1 - (3 + 1) / (4 + 1)
    assert value(soft_dice(y_true, y_pred, smooth=1.0)) == pytest.approx(1 - 4 / 5)


def test_empty_mask_predicted_empty_has_zero_dice_loss():
    y_true = np.zeros((1, 4, 4, 1), np.uint8)
    assert value(soft_dice(y_true, np.zeros((1, 4, 4, 1), np.float32))) == pytest.approx(0.0)
    # ... and predicting foreground on an empty mask is penalised.
    assert value(soft_dice(y_true, np.ones((1, 4, 4, 1), np.float32))) > 0.9


def test_bce_dice_is_the_sum_and_keras_wrapper_is_float32():
    y_true = np.array([[[1, 0, 1]]], np.uint8)[..., None]
    y_pred = np.array([[[0.7, 0.2, 0.4]]], np.float16)[..., None]
    total = value(bce_dice(y_true, y_pred))
    assert total == pytest.approx(
        value(cross_entropy(y_true, y_pred)) + value(soft_dice(y_true, y_pred)), rel=1e-6
    )
    loss = SegmentationLoss("bce_dice")
    out = loss(y_true, y_pred)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert value(out) == pytest.approx(total, rel=1e-3)
    assert SegmentationLoss.from_config(loss.get_config()).kind == "bce_dice"


def test_large_image_loss_does_not_overflow_in_half_precision_inputs():
    y_true = np.ones((2, 512, 512, 1), np.uint8)
    y_pred = np.full((2, 512, 512, 1), 0.9, np.float16)
    assert math.isfinite(value(SegmentationLoss("dice")(y_true, y_pred)))
