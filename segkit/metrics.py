"""Dice, mean IoU and pixel accuracy from one streaming confusion matrix.

The matrix is accumulated over every pixel of a split (never averaged per batch), with pixels
labelled ``ignore_index`` left out; the scores are computed from it at the end. ``scores`` is the
one place the formulas live, for the Keras metrics and for offline evaluation alike.

Conventions: Dice is the mean over foreground classes (class 0 is background), mean IoU the
mean over all classes, and a class that appears in neither the labels nor the predictions is left
out of a mean. A split with no foreground at all and none predicted scores Dice 1 (nothing was
missed).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def confusion_matrix(
    y_true, y_pred, num_classes: int, ignore_index: int = 255, threshold: float = 0.5
):
    """Confusion matrix [true class, predicted class] of one batch, as float32 counts.

    Args:
        y_true: integer labels [B, H, W, 1] or [B, H, W].
        y_pred: probabilities [B, H, W, K]; one channel means binary, thresholded at ``threshold``.
        num_classes: classes including background (2 for a binary task).
        ignore_index: label of pixels to leave out (labels outside 0..num_classes-1 are too).
    """
    if y_pred.shape[-1] == 1:
        predicted = ops.cast(ops.greater(y_pred[..., 0], threshold), "int32")
    else:
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    predicted = ops.reshape(predicted, (-1,))
    valid = ops.logical_and(
        ops.logical_and(ops.not_equal(labels, ignore_index), ops.greater_equal(labels, 0)),
        ops.less(labels, num_classes),
    )
    cells = ops.where(valid, labels * num_classes + predicted, 0)
    counts = ops.bincount(
        cells, weights=ops.cast(valid, "float32"), minlength=num_classes * num_classes
    )
    return ops.reshape(counts[: num_classes * num_classes], (num_classes, num_classes))


def scores(matrix) -> dict:
    """Scores of a confusion matrix, in keras.ops (usable inside a compiled graph).

    Returns:
        ``dice``, ``miou`` and ``pixel_accuracy`` (scalars), ``dice_per_class`` and
        ``iou_per_class`` (0 for an absent class) and ``present`` (1 where a class appears in the
        labels or the predictions).
    """
    matrix = ops.cast(matrix, "float64")
    tp = ops.diagonal(matrix)
    fp = ops.sum(matrix, axis=0) - tp
    fn = ops.sum(matrix, axis=1) - tp
    union = tp + fp + fn
    present = ops.cast(union > 0, matrix.dtype)
    dice = ops.where(union > 0, 2 * tp / ops.maximum(2 * tp + fp + fn, 1), 0)
    iou = ops.where(union > 0, tp / ops.maximum(union, 1), 0)

    def present_mean(values, mask):
        n = ops.sum(mask)
        return ops.where(n > 0, ops.sum(values * mask) / ops.maximum(n, 1), 1.0)

    total = ops.sum(matrix)
    return {
        "dice": present_mean(dice[1:], present[1:]),
        "miou": present_mean(iou, present),
        "pixel_accuracy": ops.where(total > 0, ops.sum(tp) / ops.maximum(total, 1), 1.0),
        "dice_per_class": dice,
        "iou_per_class": iou,
        "present": present,
    }


def scores_numpy(matrix) -> dict[str, float | np.ndarray]:
    """``scores`` as Python floats and numpy arrays, with NaN for absent classes."""
    out = {k: ops.convert_to_numpy(v) for k, v in scores(np.asarray(matrix, np.float64)).items()}
    absent = out.pop("present") == 0
    for key in ("dice_per_class", "iou_per_class"):
        out[key] = np.where(absent, np.nan, out[key])
    for key in ("dice", "miou", "pixel_accuracy"):
        out[key] = float(out[key])
    return out


def per_class_scores(split_scores: dict, names: list[str], prefix: str) -> dict[str, float]:
    """``<prefix>/dice/<name>`` and ``<prefix>/iou/<name>`` from ``scores_numpy``'s result,
    leaving out classes absent from both labels and predictions (NaN)."""
    out = {}
    for i, name in enumerate(names):
        for kind in ("dice", "iou"):
            value = split_scores[f"{kind}_per_class"][i]
            if value == value:
                out[f"{prefix}/{kind}/{name}"] = float(value)
    return out


class ConfusionMatrix(keras.metrics.Metric):
    """Streaming confusion matrix; its ``result()`` is one of the scores (``score``).

    Use ``segmentation_metrics`` to get Dice, mean IoU and pixel accuracy that share one matrix.
    Counts are float64 so that whole splits of large images stay exact.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        threshold: float = 0.5,
        score: str = "dice",
        name: str | None = None,
        **kwargs,
    ):
        super().__init__(name=name or score, **kwargs)
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.threshold, self.score = threshold, score
        self.matrix = self.add_variable(
            shape=(num_classes, num_classes),
            initializer="zeros",
            dtype="float64",
            aggregation="sum",
            name="matrix",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        batch = confusion_matrix(
            y_true, y_pred, self.num_classes, self.ignore_index, self.threshold
        )
        self.matrix.assign_add(ops.cast(batch, "float64"))

    def result(self):
        return scores(self.matrix)[self.score]

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "threshold": self.threshold,
            "score": self.score,
            "name": self.name,
        }


class ScoreView(keras.metrics.Metric):
    """Another score of a ``ConfusionMatrix``'s matrix; holds no state of its own."""

    def __init__(self, source: ConfusionMatrix, score: str, **kwargs):
        super().__init__(name=score, **kwargs)
        self.score = score
        # A function, not an attribute holding the metric: Keras would track the source's
        # variables a second time through this view.
        self._source_matrix = lambda: source.matrix

    def update_state(self, y_true, y_pred, sample_weight=None):
        # The source metric, listed first, accumulates the matrix for all views.
        return None

    def reset_state(self):
        return None

    def result(self):
        return scores(self._source_matrix())[self.score]

    def get_config(self):
        return {"name": self.name}


def segmentation_metrics(
    num_classes: int, ignore_index: int = 255, threshold: float = 0.5
) -> list[keras.metrics.Metric]:
    """Dice, mean IoU and pixel accuracy over one confusion matrix, for ``model.compile``."""
    dice = ConfusionMatrix(num_classes, ignore_index, threshold, score="dice")
    return [dice, ScoreView(dice, "miou"), ScoreView(dice, "pixel_accuracy")]
