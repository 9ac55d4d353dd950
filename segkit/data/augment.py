"""Augmentation presets (the ``augment`` config group) and crops, through albumentations.

``AUGMENTS`` maps a preset name to a function that returns its transforms. Every geometric
transform moves image and mask together, warps the mask with nearest neighbour and fills the
area it brings in from outside the image with ``dataset.pad_value`` (image) and
``dataset.ignore_index`` (mask). Compose is built with ``strict=True``, so an argument name
albumentations does not know (a 1.x name such as ``value``) is an error, not silently ignored.

Reproducibility: each element is transformed with generators seeded from (run seed, epoch,
sample index), never from a shared generator whose draws depend on thread timing. Each thread
has its own Compose (``SeededTransform``), whose state is replaced before every call with
``set_random_state``. ``Compose(seed=...)`` / ``set_random_seed`` is not used on purpose: it
gives every transform an identically seeded generator, so a horizontal and a vertical flip of
the same probability would always fire together.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import albumentations as A
import cv2
import numpy as np
from omegaconf import DictConfig

from segkit.config.values import option_value
from segkit.core.errors import lookup


def no_augment(aug: DictConfig, pad_value: int, ignore_index: int) -> list[A.BasicTransform]:
    """The ``none`` preset."""
    return []


def flip(aug: DictConfig, pad_value: int, ignore_index: int) -> list[A.BasicTransform]:
    """The ``flip`` preset: horizontal, vertical flips and optional 90-degree rotations."""
    transforms: list[A.BasicTransform] = [
        A.HorizontalFlip(p=aug.horizontal),
        A.VerticalFlip(p=aug.vertical),
    ]
    if aug.rotate90 > 0:
        transforms.append(A.RandomRotate90(p=aug.rotate90))
    return transforms


def standard(aug: DictConfig, pad_value: int, ignore_index: int) -> list[A.BasicTransform]:
    """The ``standard`` preset: flips, a random affine transform and colour jitter."""
    return [
        *flip(aug, pad_value, ignore_index),
        A.Affine(
            scale=tuple(aug.scale),
            rotate=(-aug.rotate, aug.rotate),
            translate_percent=(-aug.translate, aug.translate),
            **_warping(pad_value, ignore_index),
            p=aug.affine,
        ),
        A.ColorJitter(
            brightness=aug.brightness,
            contrast=aug.contrast,
            saturation=aug.saturation,
            hue=aug.hue,
            p=aug.colour,
        ),
    ]


def elastic(aug: DictConfig, pad_value: int, ignore_index: int) -> list[A.BasicTransform]:
    """The ``elastic`` preset: ``standard`` plus Simard et al.'s elastic deformation."""
    return [
        *standard(aug, pad_value, ignore_index),
        A.ElasticTransform(
            alpha=aug.alpha,
            sigma=aug.sigma,
            **_warping(pad_value, ignore_index),
            p=aug.elastic,
        ),
    ]


AUGMENTS: dict[str, Callable[[DictConfig, int, int], list[A.BasicTransform]]] = {
    "none": no_augment,
    "flip": flip,
    "standard": standard,
    "elastic": elastic,
}


def build_transforms(
    dataset: DictConfig, augment: DictConfig | None, training: bool
) -> list[A.BasicTransform]:
    """The per-element transforms of a split: the crop of a crop policy, then (training only)
    the augmentation preset. Empty when there is nothing random or cropping to do."""
    size, pad, ignore = int(dataset.image_size), int(dataset.pad_value), int(dataset.ignore_index)
    policy = option_value(dataset.resize)
    transforms: list[A.BasicTransform] = []
    if policy in ("random_crop", "center_crop"):
        # Evaluation always crops the centre, so val/test scores do not depend on chance.
        crop = A.RandomCrop if policy == "random_crop" and training else A.CenterCrop
        transforms.append(crop(size, size, pad_if_needed=True, **_padding(pad, ignore)))
    if training and augment is not None:
        preset = lookup(AUGMENTS, option_value(augment.name), "augment.name")
        transforms += preset(augment, pad, ignore)
    return transforms


class SeededTransform:
    """Apply a list of transforms to (image, mask) reproducibly from an integer seed.

    Thread-safe: each thread builds its own Compose from ``factory`` on first use.
    """

    def __init__(self, factory: Callable[[], list[A.BasicTransform]]):
        self._factory = factory
        self._local = threading.local()

    def __call__(
        self, image: np.ndarray, mask: np.ndarray, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The transformed pair; the same seed always gives the same result."""
        compose = getattr(self._local, "compose", None)
        if compose is None:
            compose = A.Compose(self._factory(), strict=True)
            self._local.compose = compose
        # One generator shared by all transforms of the call, so their draws are independent.
        compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
        out = compose(image=image, mask=mask)
        return out["image"], out["mask"]


def _padding(pad_value: int, ignore_index: int) -> dict:
    """Arguments that fill what a transform brings in: image constant, mask ignore label."""
    return {"border_mode": cv2.BORDER_CONSTANT, "fill": pad_value, "fill_mask": ignore_index}


def _warping(pad_value: int, ignore_index: int) -> dict:
    """Arguments of a warp: bilinear for images, nearest neighbour for masks, padded."""
    return {
        "interpolation": cv2.INTER_LINEAR,
        "mask_interpolation": cv2.INTER_NEAREST,
        **_padding(pad_value, ignore_index),
    }


def element_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one element of one epoch, well mixed (numpy's SeedSequence)."""
    # SeedSequence takes non-negative entropy: a negative run seed is read as its 64-bit pattern.
    entropy = [seed & 0xFFFFFFFFFFFFFFFF, epoch, index]
    state = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])
