"""Data Science Bowl 2018 index: ``<id>/images/<id>.png`` and one mask PNG per nucleus.

The semantic (binary) mask of a sample is the union of its nucleus masks; the decoder builds it.
The instance masks stay in ``Sample.instances`` for instance-level evaluation (the competition's
IoU-threshold metric).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from segkit.core.errors import DataError
from segkit.data.index import DatasetIndex, Sample, dataset_root, is_image
from segkit.data.splits import assemble_splits


def index_dsb2018(cfg: DictConfig) -> DatasetIndex:
    """Index ``<root>/<subset>/<id>/{images/<id>.png, masks/*.png}`` (the ``dataset`` node).

    ``root`` may also be the subset folder itself. Sample folders without an image or without
    masks are recorded as problems.

    Raises:
        DataError: the root or the subset folder is missing, or holds no sample folders.
    """
    root = dataset_root(cfg.root)
    folder = root / cfg.subset if (root / cfg.subset).is_dir() else root
    folders = [p for p in sorted(folder.iterdir()) if (p / "images").is_dir()]
    if not folders:
        raise DataError(
            f"dataset.root={root}: expected {cfg.subset}/<id>/images/<id>.png and "
            f"{cfg.subset}/<id>/masks/*.png inside it"
        )
    samples, problems = [], []
    for sample_dir in folders:
        sample, problem = _sample(sample_dir)
        if sample is not None:
            samples.append(sample)
        if problem:
            problems.append(problem)
    splits, origin = assemble_splits(samples, {}, cfg.split, folder.name, problems)
    return DatasetIndex(splits=splits, origin=origin, problems=problems)


def _sample(sample_dir: Path) -> tuple[Sample | None, str]:
    """The sample in one ``<id>/`` folder, or None and the reason."""
    sample_id = sample_dir.name
    image = sample_dir / "images" / f"{sample_id}.png"
    if not image.is_file():
        found = [p for p in sorted((sample_dir / "images").iterdir()) if is_image(p)]
        if len(found) != 1:
            return None, f"{sample_dir / 'images'}: expected one image {sample_id}.png"
        image = found[0]
    masks_dir = sample_dir / "masks"
    masks = [p for p in sorted(masks_dir.iterdir()) if is_image(p)] if masks_dir.is_dir() else []
    if not masks:
        return None, f"{image}: no nucleus masks in {masks_dir}"
    return Sample(id=sample_id, image=str(image), instances=tuple(str(m) for m in masks)), ""
