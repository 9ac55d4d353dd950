"""Datasets: index builders per on-disk format (``formats``), splits, decoding, label maps,
resize policies, augmentation, validation and the tf.data pipeline.

Importing this package does not import TensorFlow; ``segkit.data.pipeline`` does.
"""

from __future__ import annotations

from omegaconf import DictConfig

from segkit.core.errors import lookup
from segkit.data.formats import FORMATS
from segkit.data.index import DatasetIndex
from segkit.data.strata import stratify_folds
from segkit.data.validate import ValidationReport, validate_dataset


def build_index(cfg: DictConfig, cache_dir=None) -> DatasetIndex:
    """Index the dataset that ``cfg`` (the ``dataset`` node) describes.

    With folds on a binary dataset, the folds are stratified by foreground fraction
    (``dataset.split.stratify``; the fractions cached under ``cache_dir``). Files that do not
    pair up are recorded in ``DatasetIndex.problems``; ``validate_dataset``
    (or ``load_index``) raises them with every other problem.

    Raises:
        ConfigError: ``cfg.name`` is not a known dataset format.
        DataError: the dataset's root or required folders are missing.
    """
    index = lookup(FORMATS, cfg.name, "dataset.name")(cfg)
    split = cfg.split
    if split.get("folds") is not None and split.get("stratify") and int(cfg.num_classes) == 2:
        stratify_folds(index, split, cache_dir)
    return index


def load_index(
    cfg: DictConfig, cache_dir=None, report_file=None, progress_mode: str = "off"
) -> tuple[DatasetIndex, ValidationReport]:
    """Index and validate a dataset (``cfg`` is the ``dataset`` node): what a run trains on.

    ``progress_mode`` is how the validation reports progress (the commands' ``progress``).

    Raises:
        ConfigError, DataError: as ``build_index`` and ``validate_dataset``.
    """
    index = build_index(cfg, cache_dir)
    return index, validate_dataset(index, cfg, cache_dir, report_file, progress_mode)
