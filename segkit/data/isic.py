"""ISIC 2018 Task 1 index: the challenge's folder names, or the seed projects' images/ + masks/."""

from __future__ import annotations

from pathlib import Path

from segkit.data.index import DatasetIndex, Sample, pair_files, random_split
from segkit.errors import DataError

TRAIN_IMAGES = "ISIC2018_Task1-2_Training_Input"
TRAIN_MASKS = "ISIC2018_Task1_Training_GroundTruth"
# The challenge's own validation and test sets, used as those splits where present.
OFFICIAL = {
    "val": ("ISIC2018_Task1-2_Validation_Input", "ISIC2018_Task1_Validation_GroundTruth"),
    "test": ("ISIC2018_Task1-2_Test_Input", "ISIC2018_Task1_Test_GroundTruth"),
}
MASK_SUFFIX = "_segmentation"


def index_isic_folder(root: str | Path, val: float, test: float, seed: int) -> DatasetIndex:
    """Index an ISIC 2018 Task 1 folder.

    Splits come from the challenge's Validation/Test folders where they exist (with ground truth);
    any split without one is drawn at random, by fraction and seed, from the training folder.

    Raises:
        DataError: the root or its training folders are missing, or files do not pair up.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset.root={root}: folder not found")
    if (root / TRAIN_IMAGES).is_dir():
        train = pair_files(root / TRAIN_IMAGES, root / TRAIN_MASKS, MASK_SUFFIX)
    elif (root / "images").is_dir():
        train = pair_files(root / "images", root / "masks", MASK_SUFFIX)
    else:
        raise DataError(
            f"dataset.root={root}: expected ISIC 2018 folders {TRAIN_IMAGES}/ and {TRAIN_MASKS}/ "
            "(or images/ and masks/) inside it"
        )
    official: dict[str, list[Sample]] = {}
    for split, (images, masks) in OFFICIAL.items():
        if (root / images).is_dir() and (root / masks).is_dir():
            official[split] = pair_files(root / images, root / masks, MASK_SUFFIX)
    drawn = random_split(
        train,
        val=0.0 if "val" in official else val,
        test=0.0 if "test" in official else test,
        seed=seed,
    )
    splits = {name: official.get(name, drawn[name]) for name in ("train", "val", "test")}
    drawn_from_train = f"random from {TRAIN_IMAGES} (seed {seed})"
    origin = {name: "official" if name in official else drawn_from_train for name in splits}
    # The training split is the challenge's own only if nothing was drawn out of it.
    if len(splits["train"]) == len(train):
        origin["train"] = "official"
    return DatasetIndex(splits=splits, origin=origin)
