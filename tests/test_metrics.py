"""Metric values on hand-computed tiny masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from keras import ops

from segkit.core.scores import scores_numpy
from segkit.training.metrics import confusion_matrix, segmentation_metrics

IGNORE = 255


def probs_from_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """One-hot 'probabilities' that predict exactly ``labels`` [B, H, W]."""
    return np.eye(num_classes, dtype=np.float32)[labels]


def test_binary_confusion_with_threshold_and_ignore():
    y_true = np.array([[[1, 1], [0, IGNORE]]], np.uint8)[..., None]  # [1, 2, 2, 1]
    y_pred = np.array([[[0.9, 0.4], [0.6, 0.99]]], np.float32)[..., None]
    cm = ops.convert_to_numpy(confusion_matrix(y_true, y_pred, num_classes=2))
    # true 1 -> pred 1 (0.9), true 1 -> pred 0 (0.4), true 0 -> pred 1 (0.6); the ignored pixel
    # (predicted 1 with 0.99) is not counted.
    np.testing.assert_array_equal(cm, [[0, 1], [1, 1]])
    s = scores_numpy(cm)
    assert s["dice"] == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))  # 0.5
    assert s["iou_per_class"][1] == pytest.approx(1 / 3)
    assert s["iou_per_class"][0] == pytest.approx(0.0)
    assert s["miou"] == pytest.approx((0 + 1 / 3) / 2)
    assert s["pixel_accuracy"] == pytest.approx(1 / 3)


def test_multiclass_scores_by_hand_with_an_absent_class():
    # 4 classes; class 3 is in neither truth nor prediction and must be left out of the means.
    truth = np.array([[0, 0, 1, 1], [2, 2, 2, IGNORE]])
    pred = np.array([[0, 1, 1, 1], [2, 2, 0, 3]])  # the ignored pixel predicts class 3
    cm = ops.convert_to_numpy(
        confusion_matrix(truth[None, ..., None], probs_from_labels(pred, 4)[None], 4, IGNORE)
    )
    expected = np.zeros((4, 4))
    for t, p in zip(truth.ravel(), pred.ravel(), strict=True):
        if t != IGNORE:
            expected[t, p] += 1
    np.testing.assert_array_equal(cm, expected)
    s = scores_numpy(cm)
    # class 0: tp 1, fp 1 (a 2 predicted 0), fn 1 (a 0 predicted 1) -> dice 2/4, iou 1/3
    # class 1: tp 2, fp 1, fn 0 -> dice 4/5, iou 2/3
    # class 2: tp 2, fp 0, fn 1 -> dice 4/5, iou 2/3
    np.testing.assert_allclose(s["dice_per_class"][:3], [0.5, 0.8, 0.8])
    np.testing.assert_allclose(s["iou_per_class"][:3], [1 / 3, 2 / 3, 2 / 3])
    assert math.isnan(s["dice_per_class"][3]) and math.isnan(s["iou_per_class"][3])
    assert s["dice"] == pytest.approx(0.8)  # foreground classes 1 and 2 only
    assert s["miou"] == pytest.approx((1 / 3 + 2 / 3 + 2 / 3) / 3)
    assert s["pixel_accuracy"] == pytest.approx(5 / 7)


def test_empty_foreground_everywhere_scores_perfect_dice():
    truth = np.zeros((1, 3, 3, 1), np.uint8)
    cm = confusion_matrix(truth, np.zeros((1, 3, 3, 1), np.float32), 2)
    s = scores_numpy(ops.convert_to_numpy(cm))
    assert s["dice"] == 1.0 and s["pixel_accuracy"] == 1.0 and s["miou"] == 1.0


def test_everything_ignored_counts_nothing():
    truth = np.full((1, 2, 2, 1), IGNORE, np.uint8)
    cm = ops.convert_to_numpy(confusion_matrix(truth, np.ones((1, 2, 2, 1), np.float32), 2))
    assert cm.sum() == 0


def test_streaming_metrics_accumulate_over_batches_not_average():
    dice, miou, accuracy = segmentation_metrics(num_classes=2)
    # Batch 1: a large object found perfectly; batch 2: a one-pixel object missed.
    big = np.zeros((1, 4, 4, 1), np.uint8)
    big[0, :2, :2] = 1
    small = np.zeros((1, 4, 4, 1), np.uint8)
    small[0, 0, 0] = 1
    dice.update_state(big, big.astype(np.float32))
    dice.update_state(small, np.zeros_like(small, np.float32))
    # Over the split: tp 4, fn 1 -> dice 8/9; a batch average would give (1 + 0) / 2.
    assert float(dice.result()) == pytest.approx(8 / 9)
    assert float(accuracy.result()) == pytest.approx(31 / 32)
    assert float(miou.result()) == pytest.approx((27 / 28 + 4 / 5) / 2)
    # The views hold no state of their own: one matrix behind all three.
    assert not miou.variables and not accuracy.variables
    dice.reset_state()
    assert float(dice.result()) == 1.0 and float(accuracy.result()) == 1.0


def test_labels_out_of_class_range_are_not_counted():
    truth = np.array([[[0, 1, 7]]], np.uint8)[..., None]
    cm = ops.convert_to_numpy(
        confusion_matrix(truth, probs_from_labels(np.array([[[0, 1, 2]]]), 3), 3)
    )
    assert cm.sum() == 2


def test_counts_stay_exact_above_two_to_the_24_pixels_per_batch():
    """float32 weights counted 16,785,408 for 16,785,409 foreground pixels (issue 16)."""
    side = 4097  # 16,785,409 pixels > 2^24 = 16,777,216
    truth = np.ones((1, side, side, 1), np.uint8)
    truth[0, 0, :2] = IGNORE  # two pixels left out
    truth[0, 1, :2] = 0  # two background pixels, predicted foreground
    probs = np.full((1, side, side, 1), 0.9, np.float32)
    probs[0, 2, :2] = 0.1  # two foreground pixels predicted background
    cm = ops.convert_to_numpy(confusion_matrix(truth, probs, num_classes=2))
    # 16,785,403 true positives: odd and above 2^24, so not even representable in float32.
    true_positives = side * side - 6
    np.testing.assert_array_equal(cm, [[0, 2], [2, true_positives]])
    # The streaming metric adds such batches in float64, exactly as well.
    dice, *_ = segmentation_metrics(2)
    dice.update_state(truth, probs)
    dice.update_state(truth, probs)
    matrix = ops.convert_to_numpy(dice.matrix)
    np.testing.assert_array_equal(matrix, 2 * cm)
    assert matrix[1, 1] == 2 * true_positives == 33_570_806
