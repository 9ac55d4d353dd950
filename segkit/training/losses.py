"""Segmentation losses in keras.ops, reduced in float32, with an ignore label.

Each loss takes integer labels ``y_true`` of shape [B, H, W, 1] (or [B, H, W]) and probabilities
``y_pred`` [B, H, W, K]: one sigmoid channel for a binary task, K softmax channels otherwise.
Pixels labelled ``ignore_index`` contribute nothing to any loss. Pixel means are taken over the
valid pixels of the whole batch, so a batch's loss does not depend on how it is split into images.

Two formulas serve every term: a per-pixel log loss (cross-entropy, and focal with its modulating
factor and class weights) and the Tversky index over soft counts (Dice is Tversky with
alpha = beta = 1/2). ``LOSSES`` maps the names of ``trainer.loss`` to them; ``SegmentationLoss``
is their weighted sum as a Keras loss, built from the config by ``build_loss``. It is registered
under segkit's serialization package name, so saved models name it the same in every version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import keras
from keras import ops
from omegaconf import DictConfig

from segkit.config.loss import parse_loss
from segkit.config.values import to_container

EPSILON = 1e-7


class Pixels(NamedTuple):
    """A batch flattened per image, in float32: probabilities, one-hot targets and validity.

    ``probs`` and ``targets`` are [B, N, K] (K >= 2: a binary prediction gets a background
    column); ``valid`` is [B, N, 1], 0 where the label is ``ignore_index``. Targets are 0 there.
    """

    probs: Any
    targets: Any
    valid: Any


def flatten(y_true, y_pred, ignore_index: int = 255) -> Pixels:
    """Labels and probabilities as ``Pixels`` (float32 whatever the dtype policy)."""
    y_pred = ops.cast(y_pred, "float32")
    channels = y_pred.shape[-1]
    batch = ops.shape(y_pred)[0]
    labels = ops.reshape(ops.cast(y_true, "int32"), (batch, -1))
    probs = ops.reshape(y_pred, (batch, -1, channels))
    is_valid = ops.not_equal(labels, ignore_index)
    labels = ops.where(is_valid, labels, 0)
    valid = ops.expand_dims(ops.cast(is_valid, "float32"), -1)
    if channels == 1:
        probs = ops.concatenate([1.0 - probs, probs], axis=-1)
        channels = 2
    targets = ops.one_hot(labels, channels, dtype="float32") * valid
    return Pixels(probs, targets, valid)


def log_loss(pixels: Pixels, *, gamma: float = 0.0, class_weights=None):
    """Mean over valid pixels of ``-w[y] * (1 - p_y)**gamma * log(p_y)``.

    ``gamma = 0`` and no weights is cross-entropy; ``gamma > 0`` is the focal loss, which scales
    down pixels that are already classified well.
    """
    p_true = ops.sum(pixels.probs * pixels.targets, axis=-1)
    # Clipped away from 1 as well: the gradient of (1 - p)**gamma is infinite at p = 1, gamma < 1.
    p_true = ops.clip(p_true, EPSILON, 1.0 - EPSILON)
    per_pixel = -ops.log(p_true) * ops.sum(pixels.targets, axis=-1)  # 0 where ignored
    if gamma:
        per_pixel = per_pixel * ops.power(1.0 - p_true, gamma)
    if class_weights is not None:
        weights = ops.convert_to_tensor(class_weights, dtype="float32")
        per_pixel = per_pixel * ops.sum(pixels.targets * weights, axis=-1)
    return ops.sum(per_pixel) / ops.maximum(ops.sum(pixels.valid), 1.0)


def tversky_loss(
    pixels: Pixels,
    *,
    alpha: float = 0.3,
    beta: float = 0.7,
    smooth: float = 1.0,
    per_image: bool = False,
):
    """1 - Tversky index ``(TP + s) / (TP + alpha FP + beta FN + s)`` over soft counts.

    Averaged over the foreground classes (class 0 is background), and over the images when
    ``per_image``; otherwise the counts are summed over the whole batch first. ``smooth`` keeps the
    index defined, and 1, for a class absent from both the labels and the prediction.
    """
    probs = pixels.probs * pixels.valid
    axes = 1 if per_image else (0, 1)
    true_positive = ops.sum(probs * pixels.targets, axis=axes)
    false_positive = ops.sum(probs, axis=axes) - true_positive
    false_negative = ops.sum(pixels.targets, axis=axes) - true_positive
    index = (true_positive + smooth) / (
        true_positive + alpha * false_positive + beta * false_negative + smooth
    )
    return 1.0 - ops.mean(index[..., 1:])


def dice_loss(pixels: Pixels, *, smooth: float = 1.0, per_image: bool = False):
    """1 - soft Dice ``(2 TP + s) / (2 TP + FP + FN + s)``, i.e. Tversky with alpha = beta = 1/2."""
    return tversky_loss(pixels, alpha=0.5, beta=0.5, smooth=smooth / 2, per_image=per_image)


def focal_loss(pixels: Pixels, *, gamma: float = 2.0, alpha: float | None = 0.25):
    """Focal loss; ``alpha`` weighs foreground classes, ``1 - alpha`` the background."""
    if alpha is None:
        return log_loss(pixels, gamma=gamma)
    classes = pixels.probs.shape[-1]
    return log_loss(pixels, gamma=gamma, class_weights=[1.0 - alpha] + [alpha] * (classes - 1))


def cross_entropy(pixels: Pixels, *, class_weights=None):
    """Cross-entropy: binary for a sigmoid output, categorical for softmax."""
    return log_loss(pixels, class_weights=class_weights)


# name in `trainer.loss` -> (term, the `trainer.loss_options` entry that configures it)
LOSSES: dict[str, tuple[Callable[..., Any], str | None]] = {
    "bce": (cross_entropy, "ce"),
    "ce": (cross_entropy, "ce"),
    "dice": (dice_loss, "dice"),
    "focal": (focal_loss, "focal"),
    "tversky": (tversky_loss, "tversky"),
}


def weighted_loss(
    y_true,
    y_pred,
    terms: Mapping[str, float],
    *,
    ignore_index: int = 255,
    options: Mapping[str, Mapping[str, Any]] | None = None,
):
    """``sum(weight * term)`` over ``terms`` (names of ``LOSSES``), as a float32 scalar.

    Args:
        y_true: integer labels [B, H, W, 1] or [B, H, W].
        y_pred: probabilities [B, H, W, K].
        terms: loss name -> weight, e.g. ``{"bce": 1.0, "dice": 1.0}``.
        ignore_index: label of pixels that contribute nothing.
        options: keyword arguments per ``trainer.loss_options`` entry, e.g.
            ``{"dice": {"smooth": 1.0}}``; missing entries use the defaults.
    """
    _check_terms(terms)
    pixels = flatten(y_true, y_pred, ignore_index)
    total = 0.0
    for name, weight in terms.items():
        term, key = LOSSES[name]
        total = total + float(weight) * term(pixels, **dict((options or {}).get(key) or {}))
    return total


def _check_terms(terms: Mapping[str, float]) -> None:
    if not terms or set(terms) - set(LOSSES):
        raise ValueError(f"loss terms {dict(terms)}: expected some of {', '.join(LOSSES)}")


@keras.saving.register_keras_serializable(package="segkit")
class SegmentationLoss(keras.losses.Loss):
    """A weighted sum of ``LOSSES`` as a Keras loss (float32, scaled for tf.distribute)."""

    def __init__(
        self,
        terms: Mapping[str, float],
        ignore_index: int = 255,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        name: str | None = None,
        **kwargs,
    ):
        _check_terms(terms)
        # float32 whatever the dtype policy: mixed-precision sums over 512x512 images overflow.
        kwargs.pop("dtype", None)
        super().__init__(name=name or "_".join(terms), dtype="float32", **kwargs)
        self.terms = {str(k): float(v) for k, v in terms.items()}
        self.ignore_index = ignore_index
        self.options = {str(k): dict(v or {}) for k, v in (options or {}).items()}

    def call(self, y_true, y_pred):
        return weighted_loss(
            y_true, y_pred, self.terms, ignore_index=self.ignore_index, options=self.options
        )

    def get_config(self):
        return {
            **super().get_config(),
            "terms": self.terms,
            "ignore_index": self.ignore_index,
            "options": self.options,
        }


def build_loss(trainer: DictConfig, dataset: DictConfig) -> SegmentationLoss:
    """The weighted sum of ``trainer.loss`` with its ``trainer.loss_options``."""
    return SegmentationLoss(
        parse_loss(trainer.loss),
        ignore_index=int(dataset.ignore_index),
        options=to_container(trainer.loss_options),
    )
