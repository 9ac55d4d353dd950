"""ISBI 2012 EM segmentation index: multi-page TIFF stacks or one PNG per slice.

The challenge distributes ``train-volume.tif`` and ``train-labels.tif``, 30-page 512x512 stacks;
slice ``k`` of both is sample ``train-volume-<k>``. The UNet-keras seeds use the PNG-folder form
``train/image/N.png`` + ``train/label/N.png``. Labels are 0 = membrane, 255 = cell; which one
is the foreground class is ``dataset.foreground``.
"""

from __future__ import annotations

from pathlib import Path

import tifffile
from omegaconf import DictConfig

from segkit.config.values import option_value
from segkit.core.errors import DataError
from segkit.data import labels
from segkit.data.decode import TIFF_SUFFIXES
from segkit.data.index import DatasetIndex, Sample, dataset_root, pair_files
from segkit.data.splits import assemble_splits

STACKS = ("train-volume.tif", "train-labels.tif")
FOLDERS = ("train/image", "train/label")


def index_isbi(cfg: DictConfig) -> DatasetIndex:
    """Index the ISBI 2012 training data under ``cfg.root`` (the ``dataset`` node).

    Raises:
        DataError: the root, or the stacks / folders named by ``images`` and ``masks``, are
            missing or unreadable.
    """
    root = dataset_root(cfg.root)
    images, masks = _locate(root, cfg.images, cfg.masks)
    problems: list[str] = []
    if images.suffix.lower() in TIFF_SUFFIXES:
        samples = _stack_samples(images, masks, problems)
    else:
        samples, problems = pair_files(images, masks)
    splits, origin = assemble_splits(samples, {}, cfg.split, images.name, problems)
    index_labels = labels.isbi(option_value(cfg.foreground))
    return DatasetIndex(splits=splits, origin=origin, labels=index_labels, problems=problems)


def _locate(root: Path, images: str | None, masks: str | None) -> tuple[Path, Path]:
    """The image and label stacks (or folders): as configured, else the known names."""
    if (images is None) != (masks is None):
        raise DataError("dataset.images and dataset.masks: set both or neither")
    if images is not None:
        found = (root / Path(images).expanduser(), root / Path(masks).expanduser())
        for key, path in zip(("images", "masks"), found, strict=True):
            if not path.exists():
                raise DataError(f"dataset.{key}={path}: not found")
        return found
    for names in (STACKS, FOLDERS):
        if all((root / n).exists() for n in names):
            return root / names[0], root / names[1]
    raise DataError(
        f"dataset.root={root}: expected {' and '.join(STACKS)} or {' and '.join(FOLDERS)}/ "
        "inside it (or set dataset.images and dataset.masks)"
    )


def _stack_samples(images: Path, masks: Path, problems: list[str]) -> list[Sample]:
    """One sample per page; a label stack with another page count is a problem."""
    counts = []
    for path in (images, masks):
        try:
            with tifffile.TiffFile(path) as tif:
                counts.append(len(tif.pages))
        except (OSError, ValueError, tifffile.TiffFileError) as error:
            raise DataError(f"{path}: unreadable TIFF ({error})") from None
    if counts[0] != counts[1]:
        problems.append(f"{masks}: {counts[1]} pages but {images} has {counts[0]}")
    stem = images.stem
    return [
        Sample(id=f"{stem}-{k:03d}", image=str(images), mask=str(masks), page=k)
        for k in range(min(counts))
    ]
