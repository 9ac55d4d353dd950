"""Any images folder + masks folder, matched by file stem plus an optional mask suffix.

Masks are binary (0 and 1 or 255), class indices, or RGB colours mapped through a table; see
``FolderDatasetConfig``. A list file of ids (text or CSV) can replace the scan of the images
folder, to use part of a folder or to fix the set of samples.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from segkit.config.values import option_value
from segkit.core.errors import DataError
from segkit.data import labels
from segkit.data.index import DatasetIndex, pair_files
from segkit.data.labels import LabelMap
from segkit.data.splits import assemble_splits, read_ids


def index_folder(cfg: DictConfig) -> DatasetIndex:
    """Index ``cfg.images`` and ``cfg.masks`` (relative to ``cfg.root``; the ``dataset`` node).

    Raises:
        DataError: a folder or the ids file is missing, or the images folder holds no images.
    """
    root = Path(cfg.root or ".").expanduser()
    images, masks = root / Path(cfg.images).expanduser(), root / Path(cfg.masks).expanduser()
    for key, path in (("images", images), ("masks", masks)):
        if not path.is_dir():
            raise DataError(f"dataset.{key}={path}: folder not found")
    ids = None
    if cfg.ids_file:
        ids_file = root / Path(cfg.ids_file).expanduser()
        if not ids_file.is_file():
            raise DataError(f"dataset.ids_file={ids_file}: file not found")
        ids = read_ids(ids_file)
        if not ids:
            raise DataError(f"dataset.ids_file={ids_file}: lists no ids")
    samples, problems = pair_files(images, masks, cfg.mask_suffix, ids)
    splits, origin = assemble_splits(samples, {}, cfg.split, images.name, problems)
    return DatasetIndex(splits=splits, origin=origin, labels=label_map(cfg), problems=problems)


def label_map(cfg: DictConfig) -> LabelMap:
    """How the masks of a folder dataset read, from ``mask_format``."""
    mask_format = option_value(cfg.mask_format)
    if mask_format == "binary":
        return labels.binary()
    if mask_format == "index":
        return labels.indices(int(cfg.num_classes), int(cfg.ignore_index))
    return labels.colour_table(
        [list(c) for c in cfg.colour_table],
        list(cfg.ignore_colour) if cfg.ignore_colour is not None else None,
        int(cfg.ignore_index),
    )
