"""Figures of an evaluation: per-image Dice histogram, best/worst gallery, confusion matrix,
precision-recall of the binary threshold, and the per-epoch validation prediction strip."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segkit.report import _save, label_colours, plt


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
    return _save(fig, path)


def plot_gallery(
    best: Sequence[GalleryItem],
    worst: Sequence[GalleryItem],
    num_classes: int,
    ignore_index: int,
    path: str | Path,
) -> Path:
    """One row per image, best first then worst: image, truth, prediction, overlay; each
    panel titled with the image's id and its Dice."""
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
    return _save(fig, path)


def plot_confusion_matrix(matrix: np.ndarray, names: Sequence[str], path: str | Path) -> Path:
    """Row-normalised confusion matrix (true class per row), log-free, with the class names."""
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
    return _save(fig, path)


def plot_precision_recall(
    precision: np.ndarray,
    recall: np.ndarray,
    thresholds: np.ndarray,
    chosen: float,
    path: str | Path,
) -> Path:
    """Pixel precision-recall of the foreground over thresholds, the chosen one marked."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(recall, precision, color="C0")
    k = int(np.argmin(np.abs(thresholds - chosen)))
    ax.plot(recall[k], precision[k], "o", color="C1", label=f"threshold {chosen:g}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.01))
    ax.set_title("foreground precision-recall over thresholds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


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
