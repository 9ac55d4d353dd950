"""Datasets: index builders per on-disk format (``INDEXERS``) and the tf.data pipeline.

Importing this package does not import TensorFlow; ``segkit.data.pipeline`` does.
"""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig

from segkit.data.index import DatasetIndex, Sample
from segkit.data.isic import index_isic_folder
from segkit.data.synthetic import ensure_synthetic
from segkit.errors import lookup


def index_synthetic(cfg: DictConfig) -> DatasetIndex:
    """Generate the synthetic dataset under ``cfg.root`` if needed, then index it as ISIC."""
    folder = ensure_synthetic(cfg.root, cfg.num_samples, cfg.seed, cfg.min_side, cfg.max_side)
    return index_isic_folder(folder, cfg.split.val, cfg.split.test, cfg.split.seed)


def index_isic(cfg: DictConfig) -> DatasetIndex:
    """Index an ISIC 2018 Task 1 folder at ``cfg.root``."""
    return index_isic_folder(cfg.root, cfg.split.val, cfg.split.test, cfg.split.seed)


INDEXERS: dict[str, Callable[[DictConfig], DatasetIndex]] = {
    "synthetic": index_synthetic,
    "isic": index_isic,
}


def build_index(cfg: DictConfig) -> DatasetIndex:
    """Index the dataset that ``cfg`` (the ``dataset`` node) describes.

    Raises:
        ConfigError: ``cfg.name`` is not a known dataset format.
        DataError: the files are missing or do not pair up.
    """
    return lookup(INDEXERS, cfg.name, "dataset.name")(cfg)


__all__ = ["INDEXERS", "DatasetIndex", "Sample", "build_index"]
