"""Keras metrics: Dice, mean IoU and pixel accuracy from one streaming confusion matrix.

The matrix is accumulated over every pixel of a split (never averaged per batch), with pixels
labelled ``ignore_index`` left out; the scores are computed from it at the end, in the graph, by
the formulas of ``segkit.core.scores`` (written once for numpy and ``keras.ops``).
"""

from __future__ import annotations

import keras
from keras import ops

from segkit.core.scores import SCORES, labels_from_probabilities, scores


def confusion_matrix(
    y_true, y_pred, num_classes: int, ignore_index: int = 255, threshold: float = 0.5
):
    """Confusion matrix [true class, predicted class] of one batch, as exact int32 counts.

    Args:
        y_true: integer labels [B, H, W, 1] or [B, H, W].
        y_pred: probabilities [B, H, W, K]; one channel means binary, thresholded at ``threshold``.
        num_classes: classes including background (2 for a binary task).
        ignore_index: label of pixels to leave out (labels outside 0..num_classes-1 are too).
    """
    predicted = ops.cast(labels_from_probabilities(y_pred, threshold, xp=ops), "int32")
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    predicted = ops.reshape(predicted, (-1,))
    valid = ops.logical_and(
        ops.logical_and(ops.not_equal(labels, ignore_index), ops.greater_equal(labels, 0)),
        ops.less(labels, num_classes),
    )
    cells = num_classes * num_classes
    # Left-out pixels go to one extra bin, dropped below. Unweighted, bincount counts in int32:
    # exact up to 2^31 - 1 pixels per cell and batch, where float32 weights stop counting
    # exactly at 2^24 (one 4097 x 4097 image, or 17 images of 1024 x 1024).
    flat = ops.where(valid, labels * num_classes + predicted, cells)
    counts = ops.bincount(flat, minlength=cells + 1)
    return ops.reshape(counts[:cells], (num_classes, num_classes))


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
        return scores(self.matrix, xp=ops)[self.score]

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
        return scores(self._source_matrix(), xp=ops)[self.score]

    def get_config(self):
        return {"name": self.name}


def segmentation_metrics(
    num_classes: int, ignore_index: int = 255, threshold: float = 0.5
) -> list[keras.metrics.Metric]:
    """Every score of ``segkit.core.scores.SCORES`` (Dice, mean IoU, pixel accuracy) over one
    confusion matrix, for ``model.compile``; the first metric holds the matrix."""
    first, *others = SCORES
    source = ConfusionMatrix(num_classes, ignore_index, threshold, score=first)
    return [source, *(ScoreView(source, score) for score in others)]
