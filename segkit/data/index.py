"""Dataset index: the list of samples of a dataset and its train/val/test split.

Index builders only look at file names; nothing is decoded here, so building an index of a large
dataset is fast and needs no memory beyond the list of paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segkit.errors import DataError

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff")
# How many problems one error message lists before summarising the rest.
MAX_LISTED = 5


@dataclass(frozen=True)
class Sample:
    """One image and its mask, by path; ``id`` is unique within the dataset."""

    id: str
    image: str
    mask: str


@dataclass
class DatasetIndex:
    """Samples per split, and for each split whether it is the dataset's own or a random one."""

    splits: dict[str, list[Sample]]
    origin: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Number of samples per split."""
        return {name: len(samples) for name, samples in self.splits.items()}

    def write_split_files(self, folder: str | Path) -> list[Path]:
        """Write ``<split>.txt`` with one sample id per line; returns the files written."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, samples in self.splits.items():
            path = folder / f"{name}.txt"
            path.write_text("".join(f"{s.id}\n" for s in samples))
            written.append(path)
        return written


def pair_files(
    images_dir: Path,
    masks_dir: Path,
    mask_suffix: str = "",
    mask_suffixes: tuple[str, ...] = IMAGE_SUFFIXES,
) -> list[Sample]:
    """Match every image in ``images_dir`` with ``<stem><mask_suffix>.<ext>`` in ``masks_dir``.

    Raises:
        DataError: a folder is missing or empty, or an image has no mask or a mask no image,
            listing the files at fault.
    """
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise DataError(f"{folder}: folder not found")
    images = {p.stem: p for p in sorted(images_dir.iterdir()) if _is_image(p)}
    masks = {}
    for p in sorted(masks_dir.iterdir()):
        if p.suffix.lower() in mask_suffixes and p.stem.endswith(mask_suffix):
            masks[p.stem[: len(p.stem) - len(mask_suffix)] if mask_suffix else p.stem] = p
    if not images:
        raise DataError(f"{images_dir}: no images found (expected {', '.join(IMAGE_SUFFIXES)})")
    problems = [
        f"{images[s]}: no mask {s}{mask_suffix}.* in {masks_dir}"
        for s in sorted(images.keys() - masks.keys())
    ]
    problems += [
        f"{masks[s]}: no image {s}.* in {images_dir}" for s in sorted(masks.keys() - images.keys())
    ]
    if problems:
        raise DataError(summarise(problems))
    return [Sample(id=s, image=str(images[s]), mask=str(masks[s])) for s in sorted(images)]


def random_split(
    samples: list[Sample], val: float, test: float, seed: int
) -> dict[str, list[Sample]]:
    """Deterministic split by fractions: the same ids, fractions and seed give the same split.

    The order of ``samples`` does not matter (they are sorted by id first). A non-zero fraction
    gets at least one sample, so a small dataset still validates.
    """
    ordered = sorted(samples, key=lambda s: s.id)
    order = np.random.default_rng(seed).permutation(len(ordered))
    shuffled = [ordered[i] for i in order]
    n = len(shuffled)
    n_val = max(1, round(val * n)) if val > 0 else 0
    n_test = max(1, round(test * n)) if test > 0 else 0
    if n - n_val - n_test < 1:
        raise DataError(
            f"{n} samples cannot be split into val={val} and test={test} with any left to train on"
        )
    return {
        "train": shuffled[n_val + n_test :],
        "val": shuffled[:n_val],
        "test": shuffled[n_val : n_val + n_test],
    }


def summarise(problems: list[str]) -> str:
    """One line listing the first problems and counting the rest."""
    shown = "; ".join(problems[:MAX_LISTED])
    more = len(problems) - MAX_LISTED
    prefix = f"{len(problems)} problem{'s' if len(problems) > 1 else ''} found: "
    return prefix + shown + (f"; and {more} more" if more > 0 else "")


def _is_image(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )
