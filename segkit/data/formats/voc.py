"""PASCAL VOC 2012 segmentation index: ``JPEGImages/``, palette PNG masks, official id lists.

Masks are palette PNGs whose palette indices are the classes 0..20; 255 marks object boundaries
and is kept as the ignore label. SBD's ``SegmentationClassAug/`` holds the same indices as
grayscale PNGs. Both read the same way (``segkit.data.decode`` reads palette indices, not RGB).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from segkit.core.errors import DataError
from segkit.data import labels
from segkit.data.index import DatasetIndex, Sample, dataset_root
from segkit.data.splits import assemble_splits, read_ids

IMAGES = "JPEGImages"
MASKS = "SegmentationClass"
SBD_MASKS = "SegmentationClassAug"
LISTS = Path("ImageSets") / "Segmentation"


def index_voc(cfg: DictConfig) -> DatasetIndex:
    """Index ``VOCdevkit/VOC2012`` at ``cfg.root`` (the ``dataset`` node).

    train and val come from the id lists ``train_list`` and ``val_list`` (and test from
    ``test_list`` when set, else drawn from train by ``split.test``).

    Raises:
        DataError: the root, JPEGImages/ or the masks folder is missing.
    """
    root = dataset_root(cfg.root)
    masks_dir = root / (SBD_MASKS if cfg.use_sbd else MASKS)
    for folder in (root / IMAGES, masks_dir):
        if not folder.is_dir():
            raise DataError(
                f"dataset.root={root}: {folder.name}/ not found (expected VOCdevkit/VOC2012 "
                f"with {IMAGES}/, {masks_dir.name}/ and {LISTS}/)"
            )
    problems: list[str] = []
    lists = {"train": cfg.train_list, "val": cfg.val_list, "test": cfg.test_list}
    found: dict[str, list[Sample]] = {}
    for name, list_name in lists.items():
        if list_name is None:
            continue
        path = list_file(root, list_name)
        try:
            ids = read_ids(path)
        except DataError:
            problems.append(f"{path}: split file not found (dataset.{name}_list={list_name})")
            ids = []
        if not ids and path.is_file():
            problems.append(f"{path}: the {name} split file lists no ids")
        found[name] = _samples(root, masks_dir, ids, problems)
    train = found.pop("train")
    splits, origin = assemble_splits(train, found, cfg.split, lists["train"], problems)
    for name, list_name in lists.items():
        if list_name is not None and origin[name] == "official":
            origin[name] = f"official {list_file(root, list_name)}"
    index_labels = labels.indices(int(cfg.num_classes), int(cfg.ignore_index))
    return DatasetIndex(splits=splits, origin=origin, labels=index_labels, problems=problems)


def list_file(root: Path, name: str) -> Path:
    """``ImageSets/Segmentation/<name>.txt``, or ``name`` itself when it is a path to a file."""
    if "/" in name or name.endswith(".txt"):
        return root / Path(name).expanduser()
    return root / LISTS / f"{name}.txt"


def _samples(root: Path, masks_dir: Path, ids: list[str], problems: list[str]) -> list[Sample]:
    samples = []
    for sample_id in ids:
        image = root / IMAGES / f"{sample_id}.jpg"
        mask = masks_dir / f"{sample_id}.png"
        if not image.is_file():
            problems.append(f"{image}: listed image not found")
        elif not mask.is_file():
            problems.append(f"{image}: no mask {mask.name} in {masks_dir}")
        else:
            samples.append(Sample(id=sample_id, image=str(image), mask=str(mask)))
    return samples
