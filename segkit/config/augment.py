"""Augmentation schemas: one per preset of ``segkit.data.augment.AUGMENTS``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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
    horizontal: float = 0.5
    vertical: float = 0.5
    rotate90: float = 0.0


@dataclass
class StandardAugmentConfig(FlipAugmentConfig):
    """Flips, a random affine transform and colour jitter."""

    name: AugmentName = AugmentName.standard
    affine: float = 0.7
    scale: list[float] = field(default_factory=lambda: [0.9, 1.1])
    rotate: float = 15.0  # degrees, either way
    translate: float = 0.05  # fraction of the image size, either way
    colour: float = 0.8
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02


@dataclass
class ElasticAugmentConfig(StandardAugmentConfig):
    """The standard preset plus Simard et al.'s elastic deformation (alpha, sigma in pixels)."""

    name: AugmentName = AugmentName.elastic
    elastic: float = 0.5
    alpha: float = 34.0
    sigma: float = 4.0


# Option name -> schema (the ConfigStore's schema/augment group).
AUGMENT_SCHEMAS: dict[str, type[AugmentConfig]] = {
    schema.name.value: schema
    for schema in (AugmentConfig, FlipAugmentConfig, StandardAugmentConfig, ElasticAugmentConfig)
}
