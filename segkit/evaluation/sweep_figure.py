"""The figure of a sweep's groups: per score, a box of each group's repeats (seeds, folds) with
every job's value drawn over it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segkit.evaluation.figures import pyplot, save_figure

# Scores drawn after the sweep's own metric, those present, up to MAX_PANELS.
PREFERRED = ("best/val/dice", "test/dice", "test/miou")
MAX_PANELS = 4


def plot_group_scores(
    values: dict[str, dict[str, list[float]]], first: list[str], path: str | Path
) -> Path:
    """Box and strip plot per group for up to four scores (``first`` before ``PREFERRED``).

    Args:
        values: group label -> score -> the finished jobs' values (``sweep_groups.group_values``).
        first: scores to draw first (the sweep's optimized metric).
        path: PNG file to write.
    """
    present = {score for group in values.values() for score in group}
    scores = [s for s in dict.fromkeys([*first, *PREFERRED]) if s in present][:MAX_PANELS]
    scores = scores or sorted(present)[:MAX_PANELS]
    labels = list(values)
    plt = pyplot()
    width = max(4.0, 1.2 * len(labels) + 2)
    fig, axes = plt.subplots(1, len(scores), figsize=(width * len(scores), 4.2), squeeze=False)
    rng = np.random.default_rng(0)  # the horizontal jitter of the points only
    for ax, score in zip(axes[0], scores, strict=True):
        data = [values[label].get(score, []) for label in labels]
        ax.boxplot(data, showfliers=False, widths=0.5)
        for k, points in enumerate(data, start=1):
            jitter = rng.uniform(-0.12, 0.12, len(points))
            ax.scatter(k + jitter, points, s=18, color="C0", zorder=3)
        ax.set_xticks(range(1, len(labels) + 1))
        rotate = max(map(len, labels)) > 12
        ax.set_xticklabels(labels, rotation=30 if rotate else 0, ha="right" if rotate else "center")
        ax.set(title=score, ylabel=score)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("sweep: jobs per group (box: quartiles; points: jobs)")
    return save_figure(fig, path)
