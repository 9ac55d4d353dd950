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
from dataclasses import dataclass

import cv2
import numpy as np
from omegaconf import DictConfig

from segkit.config.values import option_value

CROPS = ("random_crop", "center_crop")


@dataclass(frozen=True)
class Policy:
    """A resize policy with its settings (the ``dataset`` keys of the same names)."""

    resize: str
    size: int
    rescale: int | None = None
    pad_value: int = 0
    ignore_index: int = 255

    @classmethod
    def from_config(cls, dataset: DictConfig) -> Policy:
        """The policy a ``dataset`` config node sets."""
        return cls(
            resize=option_value(dataset.resize),
            size=int(dataset.image_size),
            rescale=None if dataset.rescale is None else int(dataset.rescale),
            pad_value=int(dataset.pad_value),
            ignore_index=int(dataset.ignore_index),
        )

    @property
    def crops(self) -> bool:
        """Whether a crop follows the deterministic part."""
        return self.resize in CROPS


def output_scale(policy: Policy, height: int, width: int) -> float:
    """The factor a policy scales an image of this size by before any crop."""
    if policy.resize == "resize":
        return max(policy.size / height, policy.size / width)  # both sides keep >= size pixels
    if policy.resize == "letterbox":
        return policy.size / max(height, width)
    return policy.rescale / min(height, width) if policy.rescale else 1.0


def request(policy: Policy, height: int, width: int) -> tuple[int, int]:
    """The smallest (height, width) to decode an image at that loses no output detail."""
    return decode_size(height, width, output_scale(policy, height, width))


def decode_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """The smallest (height, width) that holds an image scaled by ``scale`` (never upscaled)."""
    scale = min(1.0, scale)
    return max(1, math.ceil(height * scale)), max(1, math.ceil(width * scale))


def scaled_size(policy: Policy, height: int, width: int) -> tuple[int, int]:
    """(height, width) of an image at the policy's working scale (letterbox and crop policies),
    before padding or cropping."""
    scale = output_scale(policy, height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def letterbox_offsets(policy: Policy, height: int, width: int) -> tuple[int, int]:
    """(top, left) of a scaled (height, width) image inside the letterboxed square."""
    return (policy.size - height) // 2, (policy.size - width) // 2


def fit(
    image: np.ndarray, mask: np.ndarray | None, policy: Policy
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply the deterministic part of a policy to an image [H, W, C] and its mask [H, W]
    (None: the image alone)."""
    size = policy.size
    if policy.resize == "resize":
        return _resize(image, mask, size, size)
    new_h, new_w = scaled_size(policy, *image.shape[:2])
    image, mask = _resize(image, mask, new_h, new_w)
    if policy.crops:
        return image, mask
    top, left = letterbox_offsets(policy, new_h, new_w)
    borders = (top, size - new_h - top, left, size - new_w - left)
    image = cv2.copyMakeBorder(
        image, *borders, cv2.BORDER_CONSTANT, value=(policy.pad_value,) * image.shape[2]
    ).reshape(size, size, image.shape[2])
    if mask is not None:
        mask = cv2.copyMakeBorder(mask, *borders, cv2.BORDER_CONSTANT, value=policy.ignore_index)
    return image, mask


def _resize(
    image: np.ndarray, mask: np.ndarray | None, height: int, width: int
) -> tuple[np.ndarray, np.ndarray | None]:
    if image.shape[:2] == (height, width):
        return image, mask
    image = resize_image(image, height, width)
    if mask is not None:
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    return image, mask


def fit_image(image: np.ndarray, policy: Policy) -> np.ndarray:
    """The image part of ``fit``: what the model sees of an image [H, W, C] in evaluation.

    Crop policies return the image at the working scale uncropped (``segkit.evaluation``
    slides a window over it instead of cropping its centre).
    """
    return fit(image, None, policy)[0]


def unfit(
    prediction: np.ndarray,
    policy: Policy,
    height: int,
    width: int,
    source: tuple[int, int] | None = None,
) -> np.ndarray:
    """The inverse of ``fit`` for a prediction: back to the original (height, width).

    ``prediction`` [S, S, K] holds probabilities (resized bilinearly; resize labels with
    nearest neighbour yourself). ``letterbox`` padding is removed before resizing; ``resize``
    is undone by resizing; for crop policies ``prediction`` covers the whole image at the
    working scale (``fit_image``) and is resized. ``source`` is the (height, width) of the
    image that was fitted when it was decoded smaller than the original (the padding follows
    from it).
    """
    if policy.resize == "letterbox":
        new_h, new_w = scaled_size(policy, *(source or (height, width)))
        top, left = letterbox_offsets(policy, new_h, new_w)
        prediction = prediction[top : top + new_h, left : left + new_w]
    return resize_image(prediction, height, width)


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an image [h, w, C] as ``fit`` does: area interpolation down, bilinear up."""
    if image.shape[:2] == (height, width):
        return image
    shrink = height * width < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    channels = image.shape[2]
    # OpenCV drops a single channel axis; put it back.
    resized = cv2.resize(image, (width, height), interpolation=interpolation)
    return resized.reshape(height, width, channels)
