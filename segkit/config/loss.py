"""Loss schemas: the ``trainer.loss`` expression and the typed options of each term.

``trainer.loss`` is a weighted sum written as a string (``"bce + dice"``, ``"0.5*focal + dice"``)
rather than a mapping: Hydra merges a mapping given on the command line into the default one, so
``trainer.loss={dice: 1.0}`` would silently keep the default's ``bce`` term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from segkit.config.ranges import ranged
from segkit.core.errors import ConfigError


class LossName(StrEnum):
    """Loss terms in ``segkit.training.losses.LOSSES`` (a test checks they match); ``bce_dice``
    is shorthand for ``bce + dice``."""

    bce = "bce"
    ce = "ce"
    dice = "dice"
    focal = "focal"
    tversky = "tversky"
    bce_dice = "bce_dice"


@dataclass
class DiceOptions:
    """Soft Dice: ``smooth`` is added to numerator and denominator; ``per_image`` averages the
    Dice of each image instead of computing one Dice over the whole batch."""

    smooth: float = ranged(1.0, ge=0)
    per_image: bool = False


@dataclass
class TverskyOptions:
    """Tversky loss: ``alpha`` weighs false positives, ``beta`` false negatives (0.5/0.5 is
    Dice); ``beta > alpha`` favours recall."""

    alpha: float = ranged(0.3, ge=0, le=1)
    beta: float = ranged(0.7, ge=0, le=1)
    smooth: float = ranged(1.0, ge=0)
    per_image: bool = False


@dataclass
class FocalOptions:
    """Focal loss (Lin et al. 2017): ``gamma`` down-weights easy pixels; ``alpha`` weighs the
    foreground classes against background (1 - alpha); null = no class weighting."""

    gamma: float = ranged(2.0, ge=0)
    alpha: float | None = ranged(0.25, ge=0, le=1)


@dataclass
class CrossEntropyOptions:
    """Cross-entropy (``bce`` and ``ce``): optional weight per class, background first."""

    class_weights: list[float] | None = ranged(None, ge=0)


@dataclass
class LossOptions:
    """Options of each loss term; a term not named in ``trainer.loss`` ignores its options."""

    dice: DiceOptions = field(default_factory=DiceOptions)
    tversky: TverskyOptions = field(default_factory=TverskyOptions)
    focal: FocalOptions = field(default_factory=FocalOptions)
    ce: CrossEntropyOptions = field(default_factory=CrossEntropyOptions)


def parse_loss(expression: str) -> dict[str, float]:
    """The terms of ``trainer.loss`` and their weights: ``"0.5*bce + dice"`` -> ``{"bce": 0.5,
    "dice": 1.0}``. ``bce_dice`` stands for ``bce + dice``.

    Raises:
        ConfigError: an unknown term, a weight that is not a positive number, a repeated term.
    """
    terms: dict[str, float] = {}
    usage = (
        f"trainer.loss={expression!r}: expected a sum of weighted terms from "
        f"{', '.join(LossName)}, e.g. 'bce + dice' or '0.5*focal + dice'"
    )
    for part in str(expression).split("+"):
        weight_text, _, name = (p.strip() for p in part.rpartition("*"))
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            raise ConfigError(f"{usage} ({weight_text!r} is not a number)") from None
        if name not in LossName.__members__:
            raise ConfigError(f"{usage} ({name!r} is not a loss)")
        if not (math.isfinite(weight) and weight > 0):
            raise ConfigError(f"{usage} (weight {weight_text} of {name} must be > 0)")
        for term in ("bce", "dice") if name == LossName.bce_dice else (name,):
            if term in terms:
                raise ConfigError(f"{usage} ({term} appears twice)")
            terms[term] = weight
    return terms
