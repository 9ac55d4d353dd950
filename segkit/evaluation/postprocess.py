"""Optional clean-up of predicted masks (OpenCV, any size): largest object, small objects, holes.

Applied to the foreground of binary masks, or to each foreground class of a multi-class mask,
in the order: remove small objects, fill holes, keep the largest object.
"""

from __future__ import annotations

import cv2
import numpy as np

from segkit.config.inference import PostprocessConfig


def keep_largest(mask: np.ndarray) -> np.ndarray:
    """Only the largest connected object of a binary mask (ISIC: one lesion per image)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(_binary(mask), connectivity=8)
    if count <= 2:  # background and at most one object
        return _binary(mask)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (labels == largest).astype(np.uint8)


def remove_small(mask: np.ndarray, min_size: int) -> np.ndarray:
    """A binary mask without its objects of fewer than ``min_size`` pixels."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(_binary(mask), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_size
    keep[0] = False
    return keep[labels].astype(np.uint8)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """A binary mask with its holes filled: background regions that do not touch the border."""
    binary = _binary(mask)
    count, labels = cv2.connectedComponents(1 - binary, connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, border) & (binary == 0)
    return (~outside).astype(np.uint8)


def postprocess(labels: np.ndarray, num_classes: int, settings: PostprocessConfig) -> np.ndarray:
    """Apply the chosen clean-ups (the ``postprocess`` config node's schema) to a label map
    [H, W] (uint8), class by class.

    A pixel a clean-up removes from a class becomes background; a filled hole takes the class
    of the object around it.
    """
    if not (settings.largest or settings.min_size > 0 or settings.fill_holes):
        return labels
    out = np.zeros_like(labels)
    for k in range(1, num_classes):
        mask = (labels == k).astype(np.uint8)
        if not mask.any():
            continue
        if settings.min_size > 0:
            mask = remove_small(mask, settings.min_size)
        if settings.fill_holes:
            mask = fill_holes(mask)
        if settings.largest:
            mask = keep_largest(mask)
        out[mask > 0] = k
    return out


def _binary(mask: np.ndarray) -> np.ndarray:
    return (mask > 0).astype(np.uint8)
