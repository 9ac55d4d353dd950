"""The names segkit logs metrics and classes under: one rule for every stage.

A score of a split is ``<split>/<score>`` (``val/dice``), a class's score
``<split>/<score>/<class>`` (``val/dice/lesion``). Keras' own log keys (``loss``, ``val_dice``)
become ``train/loss`` and ``val/dice``; the final scores of a run's restored best checkpoint are
logged as ``best/val/...`` and ``test/...``. Classes are named by ``dataset.class_names``, else by
their index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segkit.core.scores import SCORES

SPLITS = ("train", "val", "test")
# The scores logged for every epoch (train/<score>, val/<score>) and returned at the end.
EPOCH_SCORES = ("loss", *SCORES)
# Scores with a value per class (<split>/<kind>/<class>).
CLASS_SCORES = ("dice", "iou")
# Keras log keys are `loss`, `dice`, `val_loss`, ...; segkit logs `train/loss`, `val/dice`, ...
KERAS_PREFIXES = {"val_": "val/"}


def metric_name(split: str, score: str, class_name: str | None = None) -> str:
    """``val/dice``, or ``val/dice/<class>`` for one class's score."""
    return f"{split}/{score}" if class_name is None else f"{split}/{score}/{class_name}"


def parse_metric(name: str) -> tuple[str, str, str]:
    """``val/dice/lesion`` -> ``("val", "dice", "lesion")``; the class is ``""`` for a split's
    mean score (``val/dice`` -> ``("val", "dice", "")``)."""
    split, _, rest = name.partition("/")
    score, _, class_name = rest.partition("/")
    return split, score, class_name


def logged_name(keras_key: str) -> str:
    """The name segkit logs for a Keras log key: ``val_dice`` -> ``val/dice``, ``loss`` ->
    ``train/loss``."""
    for prefix, replacement in KERAS_PREFIXES.items():
        if keras_key.startswith(prefix):
            return replacement + keras_key[len(prefix) :]
    if keras_key == "learning_rate":
        return "train/lr"
    return metric_name("train", keras_key)


def keras_name(logged: str) -> str:
    """Inverse of ``logged_name`` for metrics: ``val/dice`` -> ``val_dice``."""
    split, _, metric = logged.partition("/")
    return metric if split == "train" else f"{split}_{metric}"


def final_metric_name(score: str) -> str:
    """The name a run logs a final score under: ``val/dice`` -> ``best/val/dice`` (the score of
    the restored best checkpoint); ``test/dice`` stays ``test/dice``."""
    return score if score.startswith("test/") else f"best/{score}"


def is_final_score(key: str) -> bool:
    """``best/val/dice`` and ``test/dice``; not the per-class ``test/dice/<class>``."""
    parts = key.split("/")
    return (parts[0] == "best" and len(parts) == 3) or (parts[0] == "test" and len(parts) == 2)


def is_split_score(key: str) -> bool:
    """A mean score of a split (``test/dice``), not a class's (``test/dice/<class>``)."""
    return key.count("/") == 1


def metric_direction(metric: str) -> str:
    """``minimize`` for a loss (``val/loss``), ``maximize`` for a score (``val/dice``)."""
    return "minimize" if str(metric).rsplit("/", 1)[-1].endswith("loss") else "maximize"


def class_names(dataset: Mapping[str, Any]) -> list[str]:
    """The names per-class scores and statistics use: ``dataset.class_names``, else the indices."""
    return [str(n) for n in (dataset.get("class_names") or range(int(dataset["num_classes"])))]


def per_class_scores(split_scores: Mapping[str, Any], names: list[str], split: str) -> dict:
    """``<split>/dice/<name>`` and ``<split>/iou/<name>`` from ``scores_numpy``'s result,
    leaving out classes absent from both labels and predictions (NaN)."""
    out = {}
    for i, name in enumerate(names):
        for kind in CLASS_SCORES:
            value = split_scores[f"{kind}_per_class"][i]
            if value == value:
                out[metric_name(split, kind, name)] = float(value)
    return out
