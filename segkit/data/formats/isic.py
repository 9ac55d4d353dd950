"""ISIC 2018 Task 1 index: the challenge's folder names, or the seed projects' images/ + masks/."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from segkit.core.errors import DataError
from segkit.data.index import DatasetIndex, Sample, dataset_root, pair_files
from segkit.data.splits import assemble_splits

TRAIN_IMAGES = "ISIC2018_Task1-2_Training_Input"
TRAIN_MASKS = "ISIC2018_Task1_Training_GroundTruth"
# The challenge's own validation and test sets, used as those splits where present.
OFFICIAL = {
    "val": ("ISIC2018_Task1-2_Validation_Input", "ISIC2018_Task1_Validation_GroundTruth"),
    "test": ("ISIC2018_Task1-2_Test_Input", "ISIC2018_Task1_Test_GroundTruth"),
}
MASK_SUFFIX = "_segmentation"


def index_isic(cfg: DictConfig) -> DatasetIndex:
    """Index an ISIC 2018 Task 1 folder at ``cfg.root`` (the ``dataset`` config node)."""
    return index_isic_folder(cfg.root, cfg.split)


def index_isic_folder(root: str | Path, split) -> DatasetIndex:
    """Index an ISIC 2018 Task 1 folder.

    Splits come from the challenge's Validation/Test folders where they exist (with ground truth);
    any split without one is drawn at random, by fraction and seed, from the training folder.
    Masks are 0/255 PNGs (binary).

    Args:
        root: the folder holding the challenge's folders (or images/ + masks/).
        split: the ``dataset.split`` node (val, test, seed, files).

    Raises:
        DataError: the root or its training folders are missing.
    """
    root = dataset_root(root)
    if (root / TRAIN_IMAGES).is_dir():
        train_dir = TRAIN_IMAGES
        train, problems = pair_files(root / TRAIN_IMAGES, root / TRAIN_MASKS, MASK_SUFFIX)
    elif (root / "images").is_dir():
        train_dir = "images"
        train, problems = pair_files(root / "images", root / "masks", MASK_SUFFIX)
    else:
        raise DataError(
            f"dataset.root={root}: expected ISIC 2018 folders {TRAIN_IMAGES}/ and {TRAIN_MASKS}/ "
            "(or images/ and masks/) inside it"
        )
    official: dict[str, list[Sample]] = {}
    for name, (images, masks) in OFFICIAL.items():
        if (root / images).is_dir() and (root / masks).is_dir():
            official[name], found = pair_files(root / images, root / masks, MASK_SUFFIX)
            problems += found
    splits, origin = assemble_splits(train, official, split, train_dir, problems)
    return DatasetIndex(splits=splits, origin=origin, problems=problems)
