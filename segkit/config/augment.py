"""Augmentation schemas: one per preset of ``segkit.data.augment.AUGMENTS``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from segkit.config.ranges import ranged


class AugmentName(StrEnum):
    """Augmentation presets in ``segkit.data.augment.AUGMENTS`` (a test checks they match)."""

    none = "none"
    flip = "flip"
    standard = "standard"
    elastic = "elastic"


@dataclass
class AugmentConfig:
    """No augmentation. ``name`` selects the preset in ``segkit.data.augment.AUGMENTS``."""

    name: AugmentName = AugmentName.none


@dataclass
class FlipAugmentConfig(AugmentConfig):
    """Random flips (probabilities) and, for orientation-free images, 90-degree rotations."""

    name: AugmentName = AugmentName.flip
    horizontal: float = ranged(0.5, ge=0, le=1, note="a probability")
    vertical: float = ranged(0.5, ge=0, le=1, note="a probability")
    rotate90: float = ranged(0.0, ge=0, le=1, note="a probability")


@dataclass
class StandardAugmentConfig(FlipAugmentConfig):
    """Flips, a random affine transform and colour jitter."""

    name: AugmentName = AugmentName.standard
    affine: float = ranged(0.7, ge=0, le=1, note="a probability")
    scale: list[float] = ranged(factory=lambda: [0.9, 1.1], gt=0)
    rotate: float = ranged(15.0, ge=0, le=180, note="degrees, either way")
    translate: float = ranged(0.05, ge=0, le=1, note="a fraction of the image size")
    colour: float = ranged(0.8, ge=0, le=1, note="a probability")
    # Jitter factors: brightness 0.2 draws a factor in [0.8, 1.2].
    brightness: float = ranged(0.2, ge=0, le=1)
    contrast: float = ranged(0.2, ge=0, le=1)
    saturation: float = ranged(0.2, ge=0, le=1)
    hue: float = ranged(0.02, ge=0, le=0.5)


@dataclass
class ElasticAugmentConfig(StandardAugmentConfig):
    """The standard preset plus Simard et al.'s elastic deformation (alpha, sigma in pixels)."""

    name: AugmentName = AugmentName.elastic
    elastic: float = ranged(0.5, ge=0, le=1, note="a probability")
    alpha: float = ranged(34.0, ge=0)
    sigma: float = ranged(4.0, gt=0)


# Option name -> schema (the ConfigStore's schema/augment group).
AUGMENT_SCHEMAS: dict[str, type[AugmentConfig]] = {
    schema.name.value: schema
    for schema in (AugmentConfig, FlipAugmentConfig, StandardAugmentConfig, ElasticAugmentConfig)
}
