"""Inference and post-processing schemas: how evaluate and predict turn images into masks.

The schemas are the settings objects themselves: ``OmegaConf.to_object`` of a checked node gives
the dataclass that ``segkit.evaluation`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from segkit.config.ranges import ranged


class InferenceMode(StrEnum):
    """Whole-image or sliding-window prediction (auto: tiled for models trained on crops)."""

    auto = "auto"
    whole = "whole"
    tiled = "tiled"


@dataclass
class InferenceConfig:
    """How predictions are made (``segkit.evaluation.inference``)."""

    # auto: tiled for models trained on crops, whole-image otherwise; whole; tiled.
    mode: str = InferenceMode.auto.value
    # Foreground probability above which a pixel is foreground (binary tasks).
    threshold: float = ranged(0.5, gt=0, lt=1)
    # Test-time augmentation: average over horizontal and vertical flips.
    tta: bool = False
    # Tiled: fraction of a tile its neighbour overlaps; tiles per model call.
    overlap: float = ranged(0.25, ge=0, lt=1)
    batch_size: int = ranged(8, ge=1)
    # Tiled, for models trained with resize/letterbox: working scale (1.0 = full resolution).
    scale: float | None = ranged(None, gt=0, le=4)


@dataclass
class PostprocessConfig:
    """Clean-ups of predicted masks, per foreground class (``segkit.evaluation.postprocess``)."""

    # Keep only the largest connected object (ISIC: one lesion per image).
    largest: bool = False
    # Remove objects smaller than this many pixels (0 = keep all).
    min_size: int = ranged(0, ge=0)
    fill_holes: bool = False
