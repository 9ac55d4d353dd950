"""Dice, IoU and pixel accuracy of a confusion matrix, and labels of predicted probabilities.

The formulas are written once, against an array namespace ``xp``: numpy by default (evaluation,
per-image scores, challenge metrics), ``keras.ops`` inside a compiled Keras metric
(``segkit.training.metrics``). Conventions: Dice is the mean over foreground classes (class 0 is
background), mean IoU the mean over all classes, and a class that appears in neither the labels
nor the predictions is left out of a mean. A split with no foreground at all and none predicted
scores Dice 1 (nothing was missed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# The mean scores of a confusion matrix, as ``scores`` returns them.
SCORES = ("dice", "miou", "pixel_accuracy")


def output_channels(num_classes: int) -> int:
    """Channels of a model's output for ``num_classes`` (background included): one sigmoid
    channel for a binary task, one softmax channel per class otherwise."""
    return 1 if num_classes == 2 else num_classes


def classes_of_output(channels: int) -> int:
    """Inverse of ``output_channels``: the classes (background included) a model predicts."""
    return 2 if channels == 1 else channels


def labels_from_probabilities(probs, threshold: float = 0.5, xp: Any = np):
    """Class labels [...] of probabilities [..., K]: one sigmoid channel (K = 1) is foreground
    above ``threshold``, several softmax channels give their argmax. Booleans or integers:
    callers cast to the dtype they need."""
    if probs.shape[-1] == 1:
        return xp.greater(probs[..., 0], threshold)
    return xp.argmax(probs, axis=-1)


def scores(matrix, xp: Any = np) -> dict:
    """Scores of a float64 confusion matrix [true class, predicted class], or of a stack of
    them [..., K, K] (one score per matrix: a bootstrap scores thousands at once).

    Returns:
        ``dice``, ``miou`` and ``pixel_accuracy`` (scalars, or [...]), ``dice_per_class`` and
        ``iou_per_class`` (0 for an absent class) and ``present`` (1 where a class appears in the
        labels or the predictions), [..., K].
    """
    tp = xp.diagonal(matrix, axis1=-2, axis2=-1)
    fp = xp.sum(matrix, axis=-2) - tp
    fn = xp.sum(matrix, axis=-1) - tp
    union = tp + fp + fn
    # Counts are whole numbers, so this is 1 where a class occurs and 0 elsewhere, in float64.
    present = xp.minimum(union, 1.0)
    dice = xp.where(union > 0, 2 * tp / xp.maximum(2 * tp + fp + fn, 1), 0)
    iou = xp.where(union > 0, tp / xp.maximum(union, 1), 0)

    def present_mean(values, mask):
        n = xp.sum(mask, axis=-1)
        return xp.where(n > 0, xp.sum(values * mask, axis=-1) / xp.maximum(n, 1), 1.0)

    total = xp.sum(matrix, axis=(-2, -1))
    return {
        "dice": present_mean(dice[..., 1:], present[..., 1:]),
        "miou": present_mean(iou, present),
        "pixel_accuracy": xp.where(total > 0, xp.sum(tp, axis=-1) / xp.maximum(total, 1), 1.0),
        "dice_per_class": dice,
        "iou_per_class": iou,
        "present": present,
    }


def scores_numpy(matrix) -> dict[str, float | np.ndarray]:
    """``scores`` as Python floats and numpy arrays, with NaN for absent classes."""
    out = scores(np.asarray(matrix, np.float64))
    absent = out.pop("present") == 0
    for key in ("dice_per_class", "iou_per_class"):
        out[key] = np.where(absent, np.nan, out[key])
    for key in SCORES:
        out[key] = float(out[key])
    return out
