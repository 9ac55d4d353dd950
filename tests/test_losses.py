"""Loss values on hand-computed cases: perfect, worst, ignored pixels, empty masks, sums."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from helpers import compose_config
from segkit.training.losses import LOSSES, SegmentationLoss, build_loss, weighted_loss

IGNORE = 255


def value(x) -> float:
    return float(ops.convert_to_numpy(x))


def loss(name: str, y_true, y_pred, **options) -> float:
    """One term of ``LOSSES`` with its options, as a float."""
    key = LOSSES[name][1]
    return value(weighted_loss(y_true, y_pred, {name: 1.0}, options={key: options}))


def pixels(*values, dtype=np.float32):
    """A one-row image [1, 1, N, 1] of labels or binary probabilities."""
    return np.array([[values]], dtype)[..., None]


def test_binary_cross_entropy_by_hand():
    expected = -(math.log(0.8) + math.log(0.6)) / 2
    assert loss("bce", pixels(1, 0, dtype=np.uint8), pixels(0.8, 0.4)) == pytest.approx(
        expected, rel=1e-5
    )


def test_multiclass_cross_entropy_by_hand_ignores_boundary_pixels():
    y_true = np.array([[[0, 2, IGNORE]]], np.uint8)[..., None]
    y_pred = np.array([[[[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.9, 0.05, 0.05]]]], np.float32)
    expected = -(math.log(0.7) + math.log(0.6)) / 2
    assert loss("ce", y_true, y_pred) == pytest.approx(expected, rel=1e-5)


def test_class_weights_scale_each_pixel_by_its_class():
    # Keras' convention: the weighted sum is divided by the number of (valid) pixels.
    expected = -(3 * math.log(0.8) + 1 * math.log(0.6)) / 2
    value_ = loss("ce", pixels(1, 0, dtype=np.uint8), pixels(0.8, 0.4), class_weights=[1.0, 3.0])
    assert value_ == pytest.approx(expected, rel=1e-5)


def test_focal_loss_by_hand():
    # p_t = 0.8 for the foreground pixel (weight alpha), 0.6 for the background one (1 - alpha).
    gamma, alpha = 2.0, 0.25
    expected = (
        -alpha * (1 - 0.8) ** gamma * math.log(0.8)
        - (1 - alpha) * (1 - 0.6) ** gamma * math.log(0.6)
    ) / 2
    got = loss("focal", pixels(1, 0, dtype=np.uint8), pixels(0.8, 0.4), gamma=gamma, alpha=alpha)
    assert got == pytest.approx(expected, rel=1e-5)


def test_focal_without_focusing_or_weights_is_cross_entropy():
    y_true, y_pred = pixels(1, 0, 1, dtype=np.uint8), pixels(0.7, 0.2, 0.4)
    assert loss("focal", y_true, y_pred, gamma=0.0, alpha=None) == pytest.approx(
        loss("ce", y_true, y_pred), rel=1e-6
    )


def test_soft_dice_by_hand_with_smooth_term():
    # intersection 1.5, sum(p) 2, sum(t) 2, smooth 1 -> 1 - (3 + 1) / (4 + 1)
    got = loss("dice", pixels(1, 1, 0, 0, dtype=np.uint8), pixels(1.0, 0.5, 0.5, 0.0), smooth=1.0)
    assert got == pytest.approx(1 - 4 / 5)


def test_tversky_by_hand_and_dice_as_its_symmetric_case():
    y_true, y_pred = pixels(1, 1, 0, 0, dtype=np.uint8), pixels(1.0, 0.5, 0.5, 0.0)
    # TP 1.5, FP 0.5, FN 0.5 -> 1 - (1.5 + 1) / (1.5 + 0.3 * 0.5 + 0.7 * 0.5 + 1)
    got = loss("tversky", y_true, y_pred, alpha=0.3, beta=0.7, smooth=1.0)
    assert got == pytest.approx(1 - 2.5 / 3.0, rel=1e-5)
    y_true, y_pred = pixels(1, 1, 0, 1, dtype=np.uint8), pixels(0.9, 0.2, 0.7, 0.4)
    assert loss("tversky", y_true, y_pred, alpha=0.5, beta=0.5, smooth=0.5) == pytest.approx(
        loss("dice", y_true, y_pred, smooth=1.0), rel=1e-6
    )


def test_tversky_beta_penalises_missed_foreground_more():
    y_true = pixels(1, 1, 0, 0, dtype=np.uint8)
    missed = pixels(1.0, 0.0, 0.0, 0.0)  # one false negative
    extra = pixels(1.0, 1.0, 1.0, 0.0)  # one false positive
    assert loss("tversky", y_true, missed) > loss("tversky", y_true, extra)


def test_dice_per_image_averages_the_images():
    y_true = np.array([[[1, 1, 0, 0]], [[1, 0, 0, 0]]], np.uint8)[..., None]
    y_pred = np.array([[[1.0, 1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0, 0.0]]], np.float32)[..., None]
    # Image 1 perfect: (4 + 1) / (4 + 1); image 2: (0 + 1) / (2 + 1). Batch: (4 + 1) / (6 + 1).
    assert loss("dice", y_true, y_pred, per_image=True) == pytest.approx(1 - (1 + 1 / 3) / 2)
    assert loss("dice", y_true, y_pred, per_image=False) == pytest.approx(1 - 5 / 7)


def test_multiclass_dice_averages_the_foreground_classes():
    y_true = np.array([[[0, 1, 2, 2]]], np.uint8)[..., None]
    eye = np.eye(3, dtype=np.float32)
    y_pred = eye[[0, 1, 2, 1]][None, None]  # class 1 predicted once too often, class 2 missed once
    dice_1 = (2 * 1 + 1) / (2 + 1 + 1)
    dice_2 = (2 * 1 + 1) / (1 + 2 + 1)
    assert loss("dice", y_true, y_pred) == pytest.approx(1 - (dice_1 + dice_2) / 2, rel=1e-6)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("classes", [1, 4])
def test_ignored_pixels_contribute_nothing(name, classes):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, max(classes, 2), (2, 8, 8, 1)).astype(np.uint8)
    y_true[:, :3] = IGNORE
    y_pred = rng.uniform(0.05, 0.95, (2, 8, 8, classes)).astype(np.float32)
    if classes > 1:
        y_pred /= y_pred.sum(-1, keepdims=True)
    changed = y_pred.copy()
    changed[:, :3] = y_pred[:, :3][..., ::-1] if classes > 1 else 1 - y_pred[:, :3]
    assert loss(name, y_true, y_pred) == pytest.approx(loss(name, y_true, changed), rel=1e-6)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_perfect_prediction_is_near_zero_and_worst_is_large(name):
    y_true = np.zeros((1, 8, 8, 1), np.uint8)
    y_true[0, 2:6, 2:6] = 1
    perfect = y_true.astype(np.float32)
    assert loss(name, y_true, perfect) < 1e-5
    assert loss(name, y_true, 1 - perfect) > 0.9


@pytest.mark.parametrize("name", ["dice", "tversky"])
def test_empty_mask_predicted_empty_has_zero_overlap_loss(name):
    y_true = np.zeros((1, 4, 4, 1), np.uint8)
    assert loss(name, y_true, np.zeros((1, 4, 4, 1), np.float32)) == pytest.approx(0.0)
    # ... and predicting foreground on an empty mask is penalised.
    assert loss(name, y_true, np.ones((1, 4, 4, 1), np.float32)) > 0.8


def test_all_pixels_ignored_gives_zero_not_nan():
    y_true = np.full((1, 4, 4, 1), IGNORE, np.uint8)
    y_pred = np.full((1, 4, 4, 1), 0.3, np.float32)
    for name in LOSSES:
        assert loss(name, y_true, y_pred) == pytest.approx(0.0), name


def test_weighted_sum_of_terms():
    y_true, y_pred = pixels(1, 0, 1, 1, dtype=np.uint8), pixels(0.7, 0.2, 0.4, 0.9)
    options = {"focal": {"gamma": 1.0, "alpha": None}, "dice": {"smooth": 0.5}}
    total = value(weighted_loss(y_true, y_pred, {"bce": 0.5, "dice": 2.0}, options=options))
    assert total == pytest.approx(
        0.5 * loss("bce", y_true, y_pred) + 2.0 * loss("dice", y_true, y_pred, smooth=0.5),
        rel=1e-6,
    )
    with pytest.raises(ValueError, match="hinge"):
        weighted_loss(y_true, y_pred, {"hinge": 1.0})


@pytest.mark.parametrize(
    ("name", "options"),
    [(name, {}) for name in sorted(LOSSES)] + [("focal", {"gamma": 0.5})],
)
def test_gradients_are_finite_at_saturated_predictions(name, options):
    y_true = np.array([[[1, 0, IGNORE, 1]]], np.uint8)[..., None]
    y_pred = tf.Variable(np.array([[[1.0, 0.0, 1.0, 0.0]]], np.float32)[..., None])
    with tf.GradientTape() as tape:
        total = weighted_loss(y_true, y_pred, {name: 1.0}, options={LOSSES[name][1]: options})
    assert np.isfinite(tape.gradient(total, y_pred).numpy()).all()


def test_keras_wrapper_is_float32_and_round_trips_its_config():
    y_true = pixels(1, 0, 1, dtype=np.uint8)
    y_pred = pixels(0.7, 0.2, 0.4, dtype=np.float16)
    terms, options = {"bce": 1.0, "dice": 1.0}, {"dice": {"smooth": 2.0, "per_image": True}}
    loss_fn = SegmentationLoss(terms, options=options)
    out = loss_fn(y_true, y_pred)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    expected = value(weighted_loss(y_true, y_pred, terms, options=options))
    assert value(out) == pytest.approx(expected, rel=1e-3)
    again = SegmentationLoss.from_config(loss_fn.get_config())
    assert (again.terms, again.options, again.name) == (terms, options, "bce_dice")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_large_image_loss_does_not_overflow_in_half_precision_inputs(name):
    y_true = np.ones((2, 512, 512, 1), np.uint8)
    y_pred = np.full((2, 512, 512, 1), 0.9, np.float16)
    assert math.isfinite(value(SegmentationLoss({name: 1.0})(y_true, y_pred)))


def test_loss_is_built_from_the_config_expression_and_options():
    cfg = compose_config(
        ["trainer.loss=0.5*focal + tversky", "trainer.loss_options.tversky.beta=0.9"]
    )
    built = build_loss(cfg.trainer, cfg.dataset)
    assert built.terms == {"focal": 0.5, "tversky": 1.0}
    assert built.options["tversky"]["beta"] == 0.9 and built.options["focal"]["gamma"] == 2.0
    default = build_loss(compose_config().trainer, compose_config().dataset)
    assert default.terms == {"bce": 1.0, "dice": 1.0}  # the foundation's bce_dice
