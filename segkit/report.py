"""Figures for a run, written as PNG files (matplotlib's non-interactive Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def plot_learning_curves(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Loss (left) and the segmentation scores (right) per epoch, train and val.

    Args:
        history: logged names (``train/loss``, ``val/dice``, ...) to one value per epoch.
        path: PNG file to write.
    """
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
    return _save(fig, path)


def plot_image_sizes(sizes: Mapping[str, Sequence[tuple[int, int]]], path: str | Path) -> Path:
    """Histograms of image widths and heights, one colour per split.

    Args:
        sizes: split name to the (height, width) of each of its images.
        path: PNG file to write.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, (ax, label) in enumerate(zip(axes, ("height", "width"), strict=True)):
        data = {name: [s[axis] for s in values] for name, values in sizes.items() if values}
        if data:
            ax.hist(list(data.values()), bins=30, stacked=True, label=list(data))
            ax.legend(fontsize=8)
        ax.set(title=f"image {label}", xlabel="pixels", ylabel="images")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_class_frequencies(
    fractions: Mapping[str, Sequence[float]], class_names: Sequence[str], path: str | Path
) -> Path:
    """Grouped bars: the fraction of labelled pixels of each class, per split (log scale)."""
    fig, ax = plt.subplots(figsize=(min(14, max(6, 0.6 * len(class_names))), 4))
    width = 0.8 / max(1, len(fractions))
    for i, (name, values) in enumerate(fractions.items()):
        ax.bar([k + i * width for k in range(len(values))], values, width, label=name)
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(class_names))])
    ax.set_xticklabels(class_names, rotation=45 if len(class_names) > 4 else 0, ha="right")
    ax.set(title="class pixel frequencies", ylabel="fraction of labelled pixels", yscale="log")
    ax.grid(alpha=0.3, axis="y")
    if fractions:
        ax.legend(fontsize=8)
    return _save(fig, path)


def label_colours(num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """RGBA colour per label value (256 rows): background transparent, ignore white."""
    palette = plt.get_cmap("tab20" if num_classes > 10 else "tab10")
    colours = np.zeros((256, 4))
    for k in range(1, num_classes):
        colours[k] = (*palette((k - 1) % palette.N)[:3], 1.0)
    colours[ignore_index] = (1.0, 1.0, 1.0, 1.0)
    return colours


def plot_overlays(
    tiles: Sequence[tuple[str, np.ndarray, np.ndarray]],
    num_classes: int,
    ignore_index: int,
    path: str | Path,
) -> Path:
    """A grid of images with their masks laid over them: one colour per foreground class,
    white for the ignore label.

    Args:
        tiles: (title, image uint8 [H, W, C], mask uint8 [H, W]) per cell.
        num_classes: classes including background (0 is left uncoloured).
        ignore_index: the label drawn in white.
        path: PNG file to write.
    """
    cols = min(4, max(1, len(tiles)))
    rows = max(1, -(-len(tiles) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    colours = label_colours(num_classes, ignore_index)
    colours[:, 3] *= 0.5  # see the image through the classes
    colours[ignore_index, 3] = 0.7
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, image, mask) in zip(axes.ravel(), tiles, strict=False):
        ax.imshow(image[..., 0] if image.shape[2] == 1 else image, cmap="gray")
        ax.imshow(colours[mask])
        ax.set_title(title[:24], fontsize=8)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    """Write a figure as PNG (creating its folder) and free it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
