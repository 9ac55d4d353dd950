"""Challenge metrics and per-image scores, in numpy, on label maps at the original resolution.

- ISIC 2018 Task 1: the thresholded Jaccard index: each image's foreground Jaccard (IoU), scored 0
  below 0.65, averaged over the images.
- DSB 2018: the mean over images of the average precision over IoU thresholds 0.5, 0.55, ...,
  0.95 between predicted objects (connected components of the predicted mask) and the true
  nuclei; at threshold t a true object matched by a prediction with IoU > t is a true positive,
  and precision(t) = TP / (TP + FP + FN).
- PASCAL VOC: mean IoU over the 21 classes with 255 ignored, with and without the background.

Per-image Dice and IoU use the same formulas as ``segkit.core.scores.scores`` on the image's own
confusion matrix.
"""

from __future__ import annotations

import cv2
import numpy as np

from segkit.core.scores import scores_numpy

ISIC_JACCARD_THRESHOLD = 0.65
# Each challenge's own score of a split, as evaluation logs it (<split>/<score>).
HEADLINE_SCORES = ("thresholded_jaccard", "dsb_map", "voc_miou")
# Pixels counted at once by ``confusion`` (bounds its temporary memory).
BLOCK = 1 << 22
DSB_THRESHOLDS = tuple(np.round(np.arange(0.5, 1.0, 0.05), 2))


def confusion(labels: np.ndarray, predicted: np.ndarray, num_classes: int, ignore_index: int):
    """Confusion matrix [true, predicted] (int64) of two label maps (uint8); ``ignore_index`` and
    any label outside the classes are left out."""
    valid = (labels < num_classes) & (labels != ignore_index)
    if num_classes <= 15:
        # One uint8 cell index per pixel, counted in blocks: no int64 copy of a whole
        # 24-megapixel mask (a 6000x4000 ISIC image). np.bincount, not OpenCV's float32
        # histogram, which is inexact above 2**24 pixels per cell.
        cells = labels * np.uint8(num_classes) + predicted
        cells[~valid] = 255  # > 15 * 15: never a cell
        flat = cells.ravel()
        counts = sum(
            np.bincount(flat[i : i + BLOCK], minlength=256) for i in range(0, flat.size, BLOCK)
        )[: num_classes * num_classes]
    else:
        cells = labels[valid].astype(np.int64) * num_classes + predicted[valid]
        counts = np.bincount(cells, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def image_scores(matrix: np.ndarray) -> tuple[float, float]:
    """(Dice, IoU) of one image: Dice over foreground classes, IoU over the classes present.

    For a binary task the IoU is the foreground Jaccard (the ISIC score), not the mean of
    background and foreground: that is what per-image lists of the seed projects report.
    """
    scores = scores_numpy(matrix)
    if matrix.shape[0] == 2:
        iou = scores["iou_per_class"][1]
        return float(scores["dice"]), 1.0 if iou != iou else float(iou)  # NaN: nothing anywhere
    return float(scores["dice"]), float(scores["miou"])


def thresholded_jaccard(jaccards, threshold: float = ISIC_JACCARD_THRESHOLD) -> float:
    """ISIC 2018's score: the mean of per-image Jaccard indices, each set to 0 below
    ``threshold``. An empty list scores NaN."""
    values = np.asarray(list(jaccards), np.float64)
    if values.size == 0:
        return float("nan")
    return float(np.where(values >= threshold, values, 0.0).mean())


def instances_from_mask(mask: np.ndarray) -> np.ndarray:
    """Objects of a binary mask as an int32 label image (0 = background; 8-connectivity)."""
    _, labels = cv2.connectedComponents((mask > 0).astype(np.uint8), connectivity=8)
    return labels.astype(np.int32)


def instances_from_masks(masks) -> np.ndarray:
    """One binary mask per object -> int32 label image (object k+1). Where masks overlap (a pixel
    or two in DSB 2018) the later object wins."""
    labels = None
    for k, mask in enumerate(masks, start=1):
        if labels is None:
            labels = np.zeros(mask.shape[:2], np.int32)
        labels[mask > 0] = k
    return labels


def average_precision(true_objects: np.ndarray, predicted_objects: np.ndarray) -> float:
    """DSB 2018's score of one image: precision TP / (TP + FP + FN) averaged over the IoU
    thresholds 0.5 ... 0.95.

    Args:
        true_objects, predicted_objects: int label images of the same shape, 0 = background.

    An image with no true and no predicted objects scores 1 (nothing to find, nothing claimed);
    with objects on one side only it scores 0.
    """
    n_true = int(true_objects.max(initial=0))
    n_pred = int(predicted_objects.max(initial=0))
    if n_true == 0 and n_pred == 0:
        return 1.0
    if n_true == 0 or n_pred == 0:
        return 0.0
    joint = np.bincount(
        true_objects.ravel().astype(np.int64) * (n_pred + 1) + predicted_objects.ravel(),
        minlength=(n_true + 1) * (n_pred + 1),
    ).reshape(n_true + 1, n_pred + 1)
    intersection = joint[1:, 1:].astype(np.float64)
    area_true = joint[1:, :].sum(axis=1, keepdims=True)
    area_pred = joint[:, 1:].sum(axis=0, keepdims=True)
    iou = intersection / (area_true + area_pred - intersection)
    precisions = []
    for t in DSB_THRESHOLDS:
        # IoU > 0.5 makes a match one-to-one: no object can match two others above it.
        matches = iou > t
        tp = int(matches.any(axis=1).sum())
        fn = n_true - tp
        fp = n_pred - int(matches.any(axis=0).sum())
        precisions.append(tp / (tp + fp + fn))
    return float(np.mean(precisions))


def voc_miou(matrix: np.ndarray) -> dict[str, float]:
    """Mean IoU over every class (``voc_miou``) and over the classes without background
    (``voc_miou_no_bg``), from a split's confusion matrix; classes absent from labels and
    predictions are left out."""
    iou = scores_numpy(matrix)["iou_per_class"]
    return {
        "voc_miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        "voc_miou_no_bg": (
            float(np.nanmean(iou[1:])) if np.isfinite(iou[1:]).any() else float("nan")
        ),
    }
