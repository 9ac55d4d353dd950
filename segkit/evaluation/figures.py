"""Figures, written as PNG files (matplotlib's non-interactive Agg backend): a run's learning
curves; a dataset's image sizes, class frequencies and overlays (``segkit.inspect``); an
evaluation's per-image Dice histogram, best/worst gallery, confusion matrix and precision-recall
of the binary threshold; and the per-epoch strip of validation predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segkit.core.naming import parse_metric


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend, imported on first use."""
    # lazy: pyplot takes most of a second to import, and the commands that import this module
    # report a mistake in their input before they draw anything.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after the backend is chosen

    return plt


def plot_learning_curves(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Loss (left) and the segmentation scores (right) per epoch, train and val.

    Args:
        history: logged names (``train/loss``, ``val/dice``, ...) to one value per epoch.
        path: PNG file to write.
    """
    plt = pyplot()
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(11, 4))
    colours: dict[str, str] = {}
    for name, values in sorted(history.items()):
        split, metric, _ = parse_metric(name)
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
    return save_figure(fig, path)


def plot_image_sizes(sizes: Mapping[str, Sequence[tuple[int, int]]], path: str | Path) -> Path:
    """Histograms of image widths and heights, one colour per split.

    Args:
        sizes: split name to the (height, width) of each of its images.
        path: PNG file to write.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, (ax, label) in enumerate(zip(axes, ("height", "width"), strict=True)):
        data = {name: [s[axis] for s in values] for name, values in sizes.items() if values}
        if data:
            ax.hist(list(data.values()), bins=30, stacked=True, label=list(data))
            ax.legend(fontsize=8)
        ax.set(title=f"image {label}", xlabel="pixels", ylabel="images")
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_class_frequencies(
    fractions: Mapping[str, Sequence[float]], class_names: Sequence[str], path: str | Path
) -> Path:
    """Grouped bars: the fraction of labelled pixels of each class, per split (log scale)."""
    plt = pyplot()
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
    return save_figure(fig, path)


def label_colours(num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """RGBA colour per label value (256 rows): background transparent, ignore white."""
    plt = pyplot()
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
    plt = pyplot()
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
    return save_figure(fig, path)


def save_figure(fig, path: str | Path) -> Path:
    """Write a figure as PNG (creating its folder) and free it."""
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@dataclass
class GalleryItem:
    """One image of the gallery, as small thumbnails: image [h, w, C], truth and prediction
    label maps [h, w]."""

    id: str
    score: float
    image: np.ndarray
    truth: np.ndarray
    prediction: np.ndarray


def plot_dice_histogram(dice: Sequence[float], path: str | Path, title: str = "") -> Path:
    """Histogram of per-image Dice, with its mean and median marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    values = np.asarray(dice, np.float64)
    ax.hist(values, bins=np.linspace(0, 1, 21), color="C0", edgecolor="white")
    if values.size:
        ax.axvline(values.mean(), color="C1", label=f"mean {values.mean():.3f}")
        ax.axvline(
            np.median(values), color="C2", linestyle="--", label=f"median {np.median(values):.3f}"
        )
        ax.legend(fontsize=8)
    ax.set(title=title or "per-image Dice", xlabel="Dice", ylabel="images", xlim=(0, 1))
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_gallery(
    best: Sequence[GalleryItem],
    worst: Sequence[GalleryItem],
    num_classes: int,
    ignore_index: int,
    path: str | Path,
) -> Path:
    """One row per image, best first then worst: image, truth, prediction, overlay; each
    panel titled with the image's id and its Dice."""
    plt = pyplot()
    rows = [("best", item) for item in best] + [("worst", item) for item in worst]
    fig, axes = plt.subplots(
        max(1, len(rows)), 4, figsize=(12, 3 * max(1, len(rows))), squeeze=False
    )
    colours = label_colours(num_classes, ignore_index)
    for ax in axes.ravel():
        ax.axis("off")
    for (kind, item), row in zip(rows, axes, strict=False):
        image = item.image[..., 0] if item.image.shape[2] == 1 else item.image
        short = item.id if len(item.id) <= 24 else f"{item.id[:22]}..."
        label = f"{short} ({kind}) Dice {item.score:.3f}"
        row[0].imshow(image, cmap="gray")
        row[1].imshow(colours[item.truth][..., :3])
        row[2].imshow(colours[item.prediction][..., :3])
        row[3].imshow(image, cmap="gray")
        overlay = colours[item.prediction].copy()
        overlay[..., 3] *= 0.5
        row[3].imshow(overlay)
        for ax, part in zip(row, ("image", "truth", "prediction", "overlay"), strict=True):
            ax.set_title(f"{label}\n{part}", fontsize=7)
    return save_figure(fig, path)


def plot_confusion_matrix(matrix: np.ndarray, names: Sequence[str], path: str | Path) -> Path:
    """Row-normalised confusion matrix (true class per row), log-free, with the class names."""
    plt = pyplot()
    matrix = np.asarray(matrix, np.float64)
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    n = len(names)
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * n + 2), max(4, 0.45 * n + 1.5)))
    shown = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(shown, ax=ax, fraction=0.046)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.set_yticklabels(names, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (rows sum to 1)")
    if n <= 12:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{normalised[i, j]:.2f}", ha="center", va="center", fontsize=7)
    return save_figure(fig, path)


def plot_precision_recall(
    precision: np.ndarray,
    recall: np.ndarray,
    thresholds: np.ndarray,
    chosen: float,
    path: str | Path,
) -> Path:
    """Pixel precision-recall of the foreground over thresholds, the chosen one marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(recall, precision, color="C0")
    k = int(np.argmin(np.abs(thresholds - chosen)))
    ax.plot(recall[k], precision[k], "o", color="C1", label=f"threshold {chosen:g}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.01))
    ax.set_title("foreground precision-recall over thresholds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def prediction_strip(
    images: np.ndarray, truths: np.ndarray, predictions: np.ndarray, num_classes: int
) -> np.ndarray:
    """One RGB uint8 image: a row per sample with image, truth and prediction (for MLflow's
    per-step image view)."""
    colours = (label_colours(num_classes)[:, :3] * 255).astype(np.uint8)
    rows = []
    for image, truth, pred in zip(images, truths, predictions, strict=True):
        rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
        rows.append(np.concatenate([rgb, colours[truth], colours[pred]], axis=1))
    return np.concatenate(rows, axis=0)
