"""A sweep's jobs in groups: the jobs that differ only by ``seed`` or ``dataset.split.fold`` are
repeats of one setting, and each final score is summarised over them (n, mean, sample sd, min,
max; ``segkit.core.stats.summarise``).

The group of a job is its overrides that tell the jobs apart, without the repeat keys, in the
job's override order (``model=unet trainer.optimizer.lr=0.01``); ``all`` when only repeat keys
were swept. Pure functions: ``segkit.tracking.sweep`` logs what they compute.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from collections.abc import Sequence
from pathlib import Path

from segkit.core.markdown import table_row
from segkit.core.stats import Summary, summarise

# Overrides that repeat a setting rather than change it.
REPEAT_KEYS = ("seed", "dataset.split.fold")
ALL = "all"
STATS = ("mean", "sd", "min", "max", "n")
# MLflow allows 250 characters in a metric name; a longer label is cut and made unique with a
# hash, leaving room for the score and the statistic.
MAX_LABEL = 150
# Allowed in a metric name by MLflow on every system (mlflow.utils.validation): word characters,
# "/", ".", "-", " ". Colons are refused on Windows, so "=" becomes "-", not ":".
UNSAFE_METRIC_CHARS = re.compile(r"[^\w.\- ]")


def override_key(override: str) -> str:
    """``trainer.optimizer.lr`` of ``+trainer.optimizer.lr=0.1`` (also ``++``, ``~``)."""
    return override.split("=", 1)[0].lstrip("+~")


def group_labels(overrides: Sequence[Sequence[str]]) -> list[str]:
    """The group label of each job from its full overrides (one list per job): the overrides
    not common to all jobs, without the repeat keys, or ``all``."""
    common = set.intersection(*(set(o) for o in overrides)) if overrides else set()
    labels = []
    for job in overrides:
        kept = [o for o in job if o not in common and override_key(o) not in REPEAT_KEYS]
        labels.append(" ".join(kept) or ALL)
    return labels


def group_values(
    labels: Sequence[str], metrics: Sequence[dict[str, float]], finished: Sequence[bool]
) -> dict[str, dict[str, list[float]]]:
    """Per group (in order of first appearance) and score: the finished jobs' values (jobs
    that did not finish, and values that are not finite, are left out)."""
    values: dict[str, dict[str, list[float]]] = {}
    for label, scores, done in zip(labels, metrics, finished, strict=True):
        group = values.setdefault(label, {})
        for score, value in sorted(scores.items()):
            if done and math.isfinite(value):
                group.setdefault(score, []).append(float(value))
    return values


def summarise_groups(
    values: dict[str, dict[str, list[float]]],
) -> dict[str, dict[str, Summary]]:
    """``group_values`` summarised per group and score (scores without a value left out)."""
    return {
        label: {score: summarise(v) for score, v in scores.items() if v}
        for label, scores in values.items()
    }


def group_metrics(groups: dict[str, dict[str, Summary]]) -> dict[str, float]:
    """Metrics for the parent run: ``<label>/<score>/<stat>``, e.g.
    ``model-unet/best/val/dice/mean``; sd only where a group has two values or more."""
    out = {}
    for label, scores in groups.items():
        name = metric_label(label)
        for score, found in scores.items():
            for stat in STATS:
                value = getattr(found, stat)
                if math.isfinite(value):  # sd is NaN for a single value
                    out[f"{name}/{score}/{stat}"] = float(value)
    return out


def metric_label(label: str) -> str:
    """A group label as one segment of a metric name: ``model=unet`` -> ``model-unet``; other
    characters MLflow refuses (and "/", which would split the name) become ``_``."""
    name = UNSAFE_METRIC_CHARS.sub("_", label.replace("=", "-"))
    if len(name) > MAX_LABEL:
        digest = hashlib.sha1(label.encode()).hexdigest()[:8]
        name = f"{name[: MAX_LABEL - 9]}_{digest}"
    return name


def write_group_table(groups: dict[str, dict[str, Summary]], folder: Path) -> Path:
    """``summary_groups.csv``: one row per group and score, exact values (sd empty for n=1)."""
    path = folder / "summary_groups.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["group", "score", "n", "mean", "sd", "min", "max"])
        for label, scores in groups.items():
            for score, s in scores.items():
                sd = repr(s.sd) if s.n > 1 else ""
                writer.writerow([label, score, s.n, repr(s.mean), sd, repr(s.min), repr(s.max)])
    return path


def group_markdown(groups: dict[str, dict[str, Summary]]) -> list[str]:
    """The ``Groups`` section of ``summary.md``: the group's finished jobs (n) and
    ``mean ± sd [min, max]`` per score."""
    scores = sorted({score for group in groups.values() for score in group})
    lines = ["", "## Groups", "", table_row(["group", "n", *scores])]
    lines.append(table_row(["---", "---:", *(["---:"] * len(scores))]))
    for label, found in groups.items():
        n = max((s.n for s in found.values()), default=0)
        lines.append(table_row([label, str(n), *(_cell(found.get(score)) for score in scores)]))
    return lines


def _cell(s: Summary | None) -> str:
    if s is None:
        return ""
    if s.n < 2:
        return f"{s.mean:.4f}"
    return f"{s.mean:.4f} ± {s.sd:.4f} [{s.min:.4f}, {s.max:.4f}]"
