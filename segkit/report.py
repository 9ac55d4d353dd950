"""Figures for a run, written as PNG files (matplotlib's non-interactive Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def plot_learning_curves(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Loss (left) and the segmentation scores (right) per epoch, train and val.

    Args:
        history: logged names (``train/loss``, ``val/dice``, ...) to one value per epoch.
        path: PNG file to write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(11, 4))
    colours: dict[str, str] = {}
    for name, values in sorted(history.items()):
        split, _, metric = name.partition("/")
        if metric in ("lr", "images_per_second") or not values:
            continue
        ax = ax_loss if metric == "loss" else ax_score
        # One colour per metric: train dashed, val solid.
        colour = colours.setdefault(metric, f"C{len(colours)}")
        epochs = range(1, len(values) + 1)
        ax.plot(
            epochs,
            values,
            marker="o",
            markersize=3,
            color=colour,
            linestyle="-" if split == "val" else "--",
            label=name,
        )
    ax_loss.set(title="loss", xlabel="epoch")
    ax_score.set(title="scores", xlabel="epoch", ylim=(0, 1.01))
    for ax in (ax_loss, ax_score):
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in (ax_loss, ax_score):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
