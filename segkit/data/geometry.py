"""Resize policies: how an image of any size becomes the model's square input.

- ``resize``: squash to ``size`` x ``size``.
- ``letterbox``: scale the longer side to ``size``, keep the aspect ratio, pad the rest (image
  with ``pad_value``, mask with the ignore label, so padding counts in no loss or metric).
- ``random_crop`` / ``center_crop``: scale the shorter side to ``rescale`` when set, then crop
  ``size`` x ``size`` (``segkit.data.augment`` crops, padding images smaller than the crop).

Images shrink with area interpolation (no aliasing) and grow bilinearly; masks always use
nearest neighbour, so no label value is ever invented.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

CROPS = ("random_crop", "center_crop")


def output_scale(policy: str, height: int, width: int, size: int, rescale: int | None) -> float:
    """The factor a policy scales an image of this size by before any crop."""
    if policy == "resize":
        return max(size / height, size / width)  # the larger of the two axis factors
    if policy == "letterbox":
        return size / max(height, width)
    return rescale / min(height, width) if rescale else 1.0


def request(
    policy: str, height: int, width: int, size: int, rescale: int | None
) -> tuple[int, int]:
    """The smallest (height, width) to decode an image at that loses no output detail."""
    scale = min(1.0, output_scale(policy, height, width, size, rescale))
    return max(1, math.ceil(height * scale)), max(1, math.ceil(width * scale))


def fit(
    image: np.ndarray,
    mask: np.ndarray,
    policy: str,
    size: int,
    rescale: int | None,
    pad_value: int,
    ignore_index: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the deterministic part of a policy to an image [H, W, C] and its mask [H, W]."""
    height, width = image.shape[:2]
    if policy == "resize":
        return _resize(image, mask, size, size)
    scale = output_scale(policy, height, width, size, rescale)
    new_h = max(1, round(height * scale))
    new_w = max(1, round(width * scale))
    if policy in CROPS:
        return (image, mask) if scale == 1.0 else _resize(image, mask, new_h, new_w)
    image, mask = _resize(image, mask, new_h, new_w)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    borders = (top, size - new_h - top, left, size - new_w - left)
    image = cv2.copyMakeBorder(
        image, *borders, cv2.BORDER_CONSTANT, value=(pad_value,) * image.shape[2]
    ).reshape(size, size, image.shape[2])
    mask = cv2.copyMakeBorder(mask, *borders, cv2.BORDER_CONSTANT, value=ignore_index)
    return image, mask


def _resize(
    image: np.ndarray, mask: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    if image.shape[:2] == (height, width):
        return image, mask
    shrink = height * width < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    channels = image.shape[2]
    # OpenCV drops a single channel axis; put it back.
    image = cv2.resize(image, (width, height), interpolation=interpolation)
    image = image.reshape(height, width, channels)
    mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    return image, mask
