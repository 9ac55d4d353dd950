"""Evaluation of a model on a split at each image's original resolution.

Each image is read at the scale its prediction needs, predicted (``inference.Predictor``), and
the prediction mapped back to the image's full size; the mask is read at full size. One
confusion matrix over the whole split gives Dice, IoU and pixel accuracy per class and mean
(``segkit.core.scores``); each image's own matrix gives its Dice and IoU; challenge scores follow
the dataset (ISIC thresholded Jaccard for binary tasks, DSB mAP where samples have instance
masks, VOC mean IoU with and without background for multi-class tasks).
"""

from __future__ import annotations

import bisect
import csv
import json
import logging
import math
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from segkit.config.inference import PostprocessConfig
from segkit.core.naming import class_names, metric_name, per_class_scores
from segkit.core.progress import ProgressMode, progress
from segkit.core.scores import SCORES, scores_numpy
from segkit.data.decode import header_size, read_image, read_mask
from segkit.data.index import Sample
from segkit.data.labels import LabelMap
from segkit.evaluation import challenge, figures
from segkit.evaluation.inference import Predictor
from segkit.evaluation.postprocess import postprocess

log = logging.getLogger(__name__)
# Side of the thumbnails kept for the gallery; bins of the precision-recall histogram.
THUMBNAIL = 192
PR_BINS = 100
# ``<split>_confusion.npz``: the image ids and each image's confusion matrix (exact counts).
CONFUSION_SUFFIX = "_confusion.npz"
PER_IMAGE_SUFFIX = "_per_image.csv"


@dataclass
class ImageResult:
    """Scores of one image."""

    id: str
    height: int
    width: int
    dice: float
    iou: float
    ap: float | None = None


@dataclass
class Evaluation:
    """What an evaluation found: split scores, per-image scores and the files written."""

    scores: dict[str, float]
    images: list[ImageResult]
    matrix: np.ndarray
    # Each image's own confusion matrix [N, K, K], in the order of ``images``: what a paired
    # comparison resamples to recompute split scores (``segkit.evaluation.stats``).
    image_matrices: np.ndarray | None = None
    files: list[Path] = field(default_factory=list)


class _Gallery:
    """The N best and N worst images by Dice, as thumbnails (bounded memory)."""

    def __init__(self, size: int):
        self.size = size
        self.items: list[tuple[float, int, figures.GalleryItem]] = []
        self.count = 0

    def offer(self, score: float, make) -> None:
        """Keep an image if it is among the best or worst so far; ``make`` builds its item."""
        self.count += 1
        if self.size <= 0:
            return
        keys = [k for k, _, _ in self.items]
        position = bisect.bisect(keys, score)
        full = len(self.items) >= 2 * self.size
        if full and self.size <= position <= len(self.items) - self.size:
            return  # between the worst and the best: not shown
        self.items.insert(position, (score, self.count, make()))
        if len(self.items) > 2 * self.size:
            del self.items[self.size]  # the middle one is neither among the best nor the worst

    def best_and_worst(self) -> tuple[list, list]:
        """(best first, worst first); an image is in one list only."""
        items = [item for _, _, item in self.items]
        n = min(self.size, (len(items) + 1) // 2)
        return items[::-1][:n], items[: len(items) - n]


def evaluate_split(
    samples: list[Sample],
    labels: LabelMap,
    dataset,
    predictor: Predictor,
    post: PostprocessConfig,
    output_dir: Path,
    prefix: str,
    gallery: int = 4,
    progress_mode: str = ProgressMode.off,
) -> Evaluation:
    """Evaluate ``samples`` at their original resolution; write the CSV, JSON and figures.

    Args:
        samples: the split's samples.
        labels: how the masks read (``DatasetIndex.labels``).
        dataset: the ``dataset`` config node (channels, num_classes, ignore_index, names).
        predictor: makes the predictions.
        post: clean-ups applied to each predicted label map.
        output_dir: where ``per_image.csv``, ``metrics.json`` and ``figures/`` go.
        prefix: the split name the scores are logged under (``test`` -> ``test/dice``).
        gallery: how many best and worst images the gallery shows.
        progress_mode: how the loop over the images reports progress (``progress`` key).
    """
    num_classes = int(dataset.num_classes)
    names = class_names(dataset)
    matrix = np.zeros((num_classes, num_classes), np.int64)
    binary = num_classes == 2
    pr_hist = np.zeros((2, PR_BINS), np.int64)
    results: list[ImageResult] = []
    image_matrices: list[np.ndarray] = []
    kept = _Gallery(gallery)
    for sample in progress(samples, desc=f"evaluating {prefix}", mode=progress_mode):
        image, truth, probs, predicted = _predict_sample(sample, labels, dataset, predictor, post)
        image_matrix = challenge.confusion(truth, predicted, num_classes, int(dataset.ignore_index))
        matrix += image_matrix
        image_matrices.append(image_matrix)
        dice, iou = challenge.image_scores(image_matrix)
        result = ImageResult(sample.id, truth.shape[0], truth.shape[1], dice, iou)
        if binary:
            pr_hist += _probability_histogram(probs, truth, int(dataset.ignore_index))
        if sample.instances:
            result.ap = _average_precision(sample, predicted)
        results.append(result)
        kept.offer(dice, partial(_thumbnail, sample.id, dice, image, truth, predicted))
    scores = _split_scores(matrix, results, names, dataset, prefix)
    stacked = np.stack(image_matrices) if image_matrices else np.zeros((0,) + matrix.shape)
    evaluation = Evaluation(scores, results, matrix, stacked.astype(np.int64))
    _write(
        evaluation, output_dir, prefix, names, pr_hist if binary else None, predictor, kept, dataset
    )
    return evaluation


def _predict_sample(sample: Sample, labels: LabelMap, dataset, predictor: Predictor, post):
    """(image as decoded, truth [H, W], probabilities [H, W, K], post-processed labels [H, W])
    of one sample, at the image's full size (the image may be decoded smaller)."""
    height, width = header_size(sample.image, sample.page)
    request = predictor.request(height, width)
    image, _ = read_image(sample.image, sample.page, int(dataset.channels), request)
    truth = labels.apply(read_mask(sample, colour=labels.is_colour, size=(height, width)))
    probs = predictor.probabilities(image, (height, width))
    predicted = postprocess(predictor.labels(probs), int(dataset.num_classes), post)
    return image, truth, probs, predicted


def _probability_histogram(probs: np.ndarray, truth: np.ndarray, ignore: int) -> np.ndarray:
    """[2, PR_BINS] counts of the foreground probability of background (row 0) and foreground
    (row 1) pixels, ignored pixels left out."""
    valid = truth != ignore
    bins = np.minimum((probs[..., 0][valid] * PR_BINS).astype(np.int64), PR_BINS - 1)
    return np.stack([np.bincount(bins[truth[valid] == k], minlength=PR_BINS) for k in (0, 1)])


def _average_precision(sample: Sample, predicted: np.ndarray) -> float:
    """DSB 2018's score of one image: its nucleus masks against the predicted objects."""
    masks = (
        read_mask(Sample(sample.id, sample.image, path, sample.page)) for path in sample.instances
    )
    return challenge.average_precision(
        challenge.instances_from_masks(masks), challenge.instances_from_mask(predicted == 1)
    )


def _split_scores(matrix, results, names, dataset, prefix) -> dict[str, float]:
    split = scores_numpy(matrix)
    out = {metric_name(prefix, k): split[k] for k in SCORES}
    out.update(per_class_scores(split, names, prefix))
    if results:
        out[metric_name(prefix, "image_dice_mean")] = float(np.mean([r.dice for r in results]))
        out[metric_name(prefix, "image_iou_mean")] = float(np.mean([r.iou for r in results]))
    if len(names) == 2 and results:
        jaccard = challenge.thresholded_jaccard(r.iou for r in results)
        out[metric_name(prefix, "thresholded_jaccard")] = jaccard
    aps = [r.ap for r in results if r.ap is not None]
    if aps:
        out[metric_name(prefix, "dsb_map")] = float(np.mean(aps))
    if len(names) > 2:
        out.update({metric_name(prefix, k): v for k, v in challenge.voc_miou(matrix).items()})
    return {k: float(v) for k, v in out.items() if not math.isnan(float(v))}


def write_per_image(path: Path, images: list[ImageResult]) -> Path:
    """``<split>_per_image.csv``: id, height, width, dice, iou (and ap) of each image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        with_ap = any(r.ap is not None for r in images)
        writer.writerow(["id", "height", "width", "dice", "iou", *(["ap"] if with_ap else [])])
        for r in images:
            row = [r.id, r.height, r.width, f"{r.dice:.6f}", f"{r.iou:.6f}"]
            writer.writerow(row + ([f"{r.ap:.6f}"] if with_ap else []))
    return path


def write_image_matrices(path: Path, ids: list[str], matrices: np.ndarray) -> Path:
    """Save the per-image confusion matrices [N, K, K] (int64) with their image ids."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, ids=np.array(ids, dtype=str), matrices=matrices.astype(np.int64))
    return path


def read_image_matrices(path: Path) -> tuple[list[str], np.ndarray]:
    """(image ids, confusion matrices [N, K, K]) as ``write_image_matrices`` saved them."""
    with np.load(path, allow_pickle=False) as data:
        return [str(i) for i in data["ids"]], data["matrices"].astype(np.int64)


def _thumbnail(sample_id, score, image, truth, predicted) -> figures.GalleryItem:
    """Thumbnails of one image for the gallery (the image may be decoded smaller)."""
    h, w = truth.shape
    scale = THUMBNAIL / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
    nearest = cv2.INTER_NEAREST
    return figures.GalleryItem(
        sample_id,
        score,
        small,
        cv2.resize(truth, size, interpolation=nearest),
        cv2.resize(predicted, size, interpolation=nearest),
    )


def _write(evaluation, output_dir, prefix, names, pr_hist, predictor, kept, dataset) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    per_image = write_per_image(output_dir / f"{prefix}{PER_IMAGE_SUFFIX}", evaluation.images)
    metrics = output_dir / f"{prefix}_metrics.json"
    metrics.write_text(json.dumps(evaluation.scores, indent=2, sort_keys=True))
    confusion = write_image_matrices(
        output_dir / f"{prefix}{CONFUSION_SUFFIX}",
        [r.id for r in evaluation.images],
        evaluation.image_matrices,
    )
    figs = output_dir / "figures"
    files = [per_image, metrics, confusion]
    files.append(
        figures.plot_dice_histogram(
            [r.dice for r in evaluation.images],
            figs / f"{prefix}_dice_histogram.png",
            title=f"{prefix}: per-image Dice ({len(evaluation.images)} images)",
        )
    )
    best, worst = kept.best_and_worst()
    files.append(
        figures.plot_gallery(
            best, worst, len(names), int(dataset.ignore_index), figs / f"{prefix}_gallery.png"
        )
    )
    if pr_hist is None:
        files.append(
            figures.plot_confusion_matrix(
                evaluation.matrix, names, figs / f"{prefix}_confusion_matrix.png"
            )
        )
    else:
        # Pixels with probability in bin b or above are predicted foreground at threshold b/B.
        tp = np.cumsum(pr_hist[1][::-1])[::-1].astype(np.float64)
        fp = np.cumsum(pr_hist[0][::-1])[::-1].astype(np.float64)
        positives = max(1.0, float(pr_hist[1].sum()))
        precision = np.divide(tp, tp + fp, out=np.ones_like(tp), where=(tp + fp) > 0)
        recall = tp / positives
        thresholds = np.arange(PR_BINS) / PR_BINS
        files.append(
            figures.plot_precision_recall(
                precision,
                recall,
                thresholds,
                predictor.settings.threshold,
                figs / f"{prefix}_precision_recall.png",
            )
        )
    evaluation.files = files
