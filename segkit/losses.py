"""Segmentation losses in keras.ops, reduced in float32, with an ignore label.

Each loss takes integer labels ``y_true`` of shape [B, H, W, 1] (or [B, H, W]) and probabilities
``y_pred`` [B, H, W, K]: one sigmoid channel for a binary task, K softmax channels otherwise.
Pixels labelled ``ignore_index`` contribute nothing to any loss. Means are taken over the valid
pixels of the whole batch, so a batch's loss does not depend on how it is split into images.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops

EPSILON = 1e-7


def _flatten(y_true, y_pred, ignore_index: int):
    """Return (probabilities [N, K], one-hot targets [N, K], valid [N, 1]) in float32.

    A binary prediction (K = 1) is expanded to two columns, background and foreground.
    """
    y_pred = ops.cast(y_pred, "float32")
    channels = y_pred.shape[-1]
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    probs = ops.reshape(y_pred, (-1, channels))
    valid = ops.cast(ops.not_equal(labels, ignore_index), "float32")
    labels = ops.where(ops.not_equal(labels, ignore_index), labels, 0)
    if channels == 1:
        probs = ops.concatenate([1.0 - probs, probs], axis=-1)
        channels = 2
    targets = ops.one_hot(labels, channels, dtype="float32")
    return probs, targets * valid[:, None], valid[:, None]


def cross_entropy(y_true, y_pred, *, ignore_index: int = 255, **_) -> keras.KerasTensor:
    """Mean cross-entropy over valid pixels (binary cross-entropy for a sigmoid output)."""
    probs, targets, valid = _flatten(y_true, y_pred, ignore_index)
    log_p = ops.log(ops.clip(probs, EPSILON, 1.0))
    per_pixel = -ops.sum(targets * log_p, axis=-1, keepdims=True)
    return ops.sum(per_pixel) / ops.maximum(ops.sum(valid), 1.0)


def soft_dice(y_true, y_pred, *, ignore_index: int = 255, smooth: float = 1.0, **_):
    """1 - soft Dice, averaged over the foreground classes (class 0 is background).

    ``smooth`` keeps the ratio defined, and near 1, for a class absent from both the labels and the
    prediction of the batch.
    """
    probs, targets, valid = _flatten(y_true, y_pred, ignore_index)
    probs = probs * valid
    intersection = ops.sum(probs * targets, axis=0)
    denominator = ops.sum(probs, axis=0) + ops.sum(targets, axis=0)
    dice = (2.0 * intersection + smooth) / (denominator + smooth)
    return 1.0 - ops.mean(dice[1:])


def bce_dice(y_true, y_pred, *, ignore_index: int = 255, smooth: float = 1.0, **_):
    """Cross-entropy plus soft Dice, the usual pairing for lesion segmentation."""
    return cross_entropy(y_true, y_pred, ignore_index=ignore_index) + soft_dice(
        y_true, y_pred, ignore_index=ignore_index, smooth=smooth
    )


LOSSES: dict[str, Callable[..., keras.KerasTensor]] = {
    "ce": cross_entropy,
    "dice": soft_dice,
    "bce_dice": bce_dice,
}


@keras.saving.register_keras_serializable(package="segkit")
class SegmentationLoss(keras.losses.Loss):
    """A loss of ``LOSSES`` by name, as a Keras loss (float32, scaled for tf.distribute)."""

    def __init__(
        self,
        kind: str,
        ignore_index: int = 255,
        smooth: float = 1.0,
        name: str | None = None,
        **kwargs,
    ):
        if kind not in LOSSES:
            raise ValueError(f"unknown loss {kind!r}; expected one of: {', '.join(LOSSES)}")
        # float32 whatever the dtype policy: mixed-precision sums over 512x512 images overflow.
        kwargs.pop("dtype", None)
        super().__init__(name=name or kind, dtype="float32", **kwargs)
        self.kind, self.ignore_index, self.smooth = kind, ignore_index, smooth

    def call(self, y_true, y_pred):
        return LOSSES[self.kind](y_true, y_pred, ignore_index=self.ignore_index, smooth=self.smooth)

    def get_config(self):
        return {
            **super().get_config(),
            "kind": self.kind,
            "ignore_index": self.ignore_index,
            "smooth": self.smooth,
        }
