"""The parity check of an export: the Keras model and the exported artifact on the same real
images, compared as probabilities and as masks.

The images are the training run's split (``split``, the run's resize policy) when the run's
config is known, else ``images=<folder|file>``; each is fitted to the model's input size as
whole-image prediction fits it, and scaled to [0, 1] float32, as the export's consumers must.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from segkit.config.validate import validate
from segkit.config.values import option_value
from segkit.core.errors import ConfigError, DataError, SegkitError
from segkit.core.markdown import table_row
from segkit.core.scores import labels_from_probabilities
from segkit.data import load_index
from segkit.data.decode import header_size, read_image
from segkit.data.geometry import Policy, fit_image, request
from segkit.data.index import image_files
from segkit.evaluation import model_source
from segkit.evaluation.inference import whole_image_policy


class ParityError(SegkitError):
    """The exported model's outputs differ from the Keras model's beyond the set tolerances."""


def parity_images(
    cfg: DictConfig,
    source: model_source.ModelSource,
    dataset: DictConfig | None,
    policy: Policy,
    channels: int,
) -> tuple[np.ndarray, str]:
    """Images float32 [N, size, size, channels] in [0, 1] for the check, fitted by ``policy``,
    and where they came from (``split val of isic``, a folder). ``dataset`` is the run's
    (``run_dataset``) or None.

    Raises:
        ConfigError, DataError: no images to check with (a bare .keras file without
            ``images=``), an unreadable image, a split without samples.
    """
    limit = int(cfg.parity.max_images)
    if cfg.images:
        files = image_files(Path(str(cfg.images)).expanduser(), "images")[:limit]
        where = str(cfg.images)
        pages: list[int | None] = [None] * len(files)
    elif dataset is not None:
        index, _ = load_index(dataset, cfg.cache_dir)
        samples = (index.splits.get(str(cfg.split)) or [])[:limit]
        if not samples:
            raise DataError(f"split={cfg.split}: no samples in this split of {dataset.name}")
        files, pages = [s.image for s in samples], [s.page for s in samples]
        where = f"split {cfg.split} of {dataset.name}"
    else:
        raise ConfigError(
            f"{source.description}: no training config to take check images from; give "
            "images=<folder|file> of real images for the parity check"
        )
    fitting = whole_image_policy(policy)
    batch = [_fitted(str(f), p, channels, fitting) for f, p in zip(files, pages, strict=True)]
    return np.stack(batch).astype(np.float32) / 255.0, where


def run_dataset(cfg: DictConfig, source: model_source.ModelSource) -> DictConfig | None:
    """The run's dataset with its own split files and ``cfg.dataset_root``, or None."""
    dataset = model_source.run_dataset(source)
    if dataset is None:
        return None
    if source.splits is not None:
        # The run's own id lists replace the folds that drew them (as in evaluate).
        dataset.split.files = str(source.splits)
        if dataset.split.get("folds") is not None:
            dataset.split.folds = dataset.split.fold = None
    if cfg.dataset_root:
        dataset = OmegaConf.merge(dataset, {"root": str(cfg.dataset_root)})
    validate(OmegaConf.create({"dataset": dataset}))
    return dataset


def fit_policy(cfg: DictConfig, dataset: DictConfig | None, size: int) -> Policy:
    """How an image becomes the model's input: the run's policy, else ``cfg.resize``."""
    if dataset is not None and int(dataset.image_size) == size:
        return Policy.from_config(dataset)
    return Policy(option_value(cfg.resize), size)


def _fitted(path: str, page: int | None, channels: int, policy: Policy) -> np.ndarray:
    height, width = header_size(path, page)
    image, _ = read_image(path, page, channels, request(policy, height, width))
    return fit_image(image, policy)


def compare(
    reference: Callable[[np.ndarray], np.ndarray],
    exported: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    threshold: float,
    batch_size: int,
) -> dict[str, float]:
    """Run both models on ``images`` in batches: the largest absolute difference of any
    probability and the fraction of pixels whose label (threshold or argmax) is the same."""
    worst, same, pixels = 0.0, 0, 0
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        ours = np.asarray(reference(batch), np.float32)
        theirs = np.asarray(exported(batch), np.float32)
        if ours.shape != theirs.shape:
            raise ParityError(f"the export's output shape {theirs.shape} is not {ours.shape}")
        worst = max(worst, float(np.max(np.abs(ours - theirs))))
        agree = labels_from_probabilities(ours, threshold) == labels_from_probabilities(
            theirs, threshold
        )
        same, pixels = same + int(agree.sum()), pixels + agree.size
    return {"max_abs_diff": worst, "mask_agreement": same / pixels, "pixels": pixels}


def check(result: dict[str, float], parity: DictConfig, what: str) -> None:
    """Refuse an export that is not the model it came from.

    Raises:
        ParityError: naming both figures and their limits.
    """
    diff, agreement = result["max_abs_diff"], result["mask_agreement"]
    if diff > float(parity.max_abs_diff) or agreement < float(parity.min_agreement):
        raise ParityError(
            f"{what}: max abs difference {diff:.3g} (limit parity.max_abs_diff="
            f"{float(parity.max_abs_diff):g}), same mask on {agreement:.4%} of pixels (limit "
            f"parity.min_agreement={float(parity.min_agreement):g}); nothing was written"
        )


def table(rows: list[tuple[str, dict[str, float]]]) -> str:
    """A Markdown table of comparisons: what against what, max abs diff, mask agreement."""
    lines = [
        table_row(["comparison", "pixels", "max abs diff", "same mask"]),
        table_row(["---", "---:", "---:", "---:"]),
    ]
    for name, r in rows:
        cells = [f"{r['max_abs_diff']:.3g}", f"{r['mask_agreement']:.4%}"]
        lines.append(table_row([name, str(int(r["pixels"])), *cells]))
    return "\n".join(lines)
