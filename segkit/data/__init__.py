"""Datasets: index builders per on-disk format (``INDEXERS``), validation and the tf.data pipeline.

Importing this package does not import TensorFlow; ``segkit.data.pipeline`` does.
"""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig

from segkit.data.dsb2018 import index_dsb2018
from segkit.data.folder import index_folder
from segkit.data.index import DatasetIndex, Sample
from segkit.data.isbi import index_isbi
from segkit.data.isic import index_isic, index_isic_folder
from segkit.data.synthetic import ensure_synthetic
from segkit.data.validate import ValidationReport, validate_dataset
from segkit.data.voc import index_voc
from segkit.errors import lookup


def index_synthetic(cfg: DictConfig) -> DatasetIndex:
    """Generate the synthetic dataset under ``cfg.root`` if needed, then index it as ISIC."""
    folder = ensure_synthetic(cfg.root, cfg.num_samples, cfg.seed, cfg.min_side, cfg.max_side)
    return index_isic_folder(folder, cfg.split)


INDEXERS: dict[str, Callable[[DictConfig], DatasetIndex]] = {
    "synthetic": index_synthetic,
    "isic": index_isic,
    "dsb2018": index_dsb2018,
    "voc": index_voc,
    "isbi": index_isbi,
    "folder": index_folder,
}


def build_index(cfg: DictConfig) -> DatasetIndex:
    """Index the dataset that ``cfg`` (the ``dataset`` node) describes.

    Files that do not pair up are recorded in ``DatasetIndex.problems``; ``validate_dataset``
    (or ``load_index``) raises them with every other problem.

    Raises:
        ConfigError: ``cfg.name`` is not a known dataset format.
        DataError: the dataset's root or required folders are missing.
    """
    return lookup(INDEXERS, cfg.name, "dataset.name")(cfg)


def load_index(
    cfg: DictConfig, cache_dir=None, report_file=None
) -> tuple[DatasetIndex, ValidationReport]:
    """Index and validate a dataset (``cfg`` is the ``dataset`` node): what a run trains on.

    Raises:
        ConfigError, DataError: as ``build_index`` and ``validate_dataset``.
    """
    index = build_index(cfg)
    return index, validate_dataset(index, cfg, cache_dir, report_file)


__all__ = [
    "INDEXERS",
    "DatasetIndex",
    "Sample",
    "ValidationReport",
    "build_index",
    "load_index",
    "validate_dataset",
]
