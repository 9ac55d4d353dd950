"""Dataset index: the list of samples of a dataset and its train/val/test split.

Index builders only look at file names (and, for TIFF stacks, page counts); nothing is decoded
here, so building an index of a large dataset is fast and needs no memory beyond the list of
paths. Files that do not pair up are recorded in ``DatasetIndex.problems`` rather than raised at
once, so ``segkit.data.validate`` reports them together with every other problem it finds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segkit.data import labels as label_maps
from segkit.data.labels import LabelMap
from segkit.errors import DataError

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff")
# How many problems one error message lists before summarising the rest.
MAX_LISTED = 5


@dataclass(frozen=True)
class Sample:
    """One image and its mask, by path; ``id`` is unique within the dataset.

    Attributes:
        id: unique sample id (a file stem, or ``<stack>-<page>`` for TIFF stacks).
        image: image file.
        mask: mask file; empty when the mask is the union of ``instances``.
        page: page of a multi-page TIFF, the same page in the image and the mask stack;
            None for single images.
        instances: one mask file per object (DSB 2018 nuclei); the semantic mask is their
            union. Kept for instance-level evaluation.
    """

    id: str
    image: str
    mask: str = ""
    page: int | None = None
    instances: tuple[str, ...] = ()

    @property
    def mask_files(self) -> tuple[str, ...]:
        """The file(s) the mask is read from."""
        return self.instances or (self.mask,)

    @property
    def mask_name(self) -> str:
        """The mask as named in messages: its file, or the union of the instance masks."""
        if self.instances:
            return f"{Path(self.instances[0]).parent}/* (union of {len(self.instances)} masks)"
        return self.describe(self.mask)

    @property
    def files(self) -> tuple[str, ...]:
        """Every file this sample reads."""
        return (self.image, *self.mask_files)

    def describe(self, path: str) -> str:
        """A file of this sample as named in messages (with the page for stacks)."""
        return path if self.page is None else f"{path} (page {self.page})"


@dataclass
class DatasetIndex:
    """Samples per split, how each split was made, how masks read, and pairing problems.

    Attributes:
        splits: samples of ``train``, ``val`` and ``test`` (possibly empty).
        origin: per split, ``official``, ``file <path>`` or ``random from ... (seed N)``.
        labels: how raw mask values become class indices.
        problems: files that could not be paired (an image without a mask, ...), one line
            each naming the file; ``segkit.data.validate`` raises them.
    """

    splits: dict[str, list[Sample]]
    origin: dict[str, str] = field(default_factory=dict)
    labels: LabelMap = field(default_factory=label_maps.binary)
    problems: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Number of samples per split."""
        return {name: len(samples) for name, samples in self.splits.items()}

    def samples(self) -> list[Sample]:
        """Every sample of every split."""
        return [s for name in self.splits for s in self.splits[name]]

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


def dataset_root(root: str | Path) -> Path:
    """``dataset.root`` as a path (``~`` expanded).

    Raises:
        DataError: it is not a folder.
    """
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"dataset.root={path}: folder not found")
    return path


def pair_files(
    images_dir: Path,
    masks_dir: Path,
    mask_suffix: str = "",
    ids: list[str] | None = None,
) -> tuple[list[Sample], list[str]]:
    """Match every image in ``images_dir`` with ``<stem><mask_suffix>.<ext>`` in ``masks_dir``.

    Args:
        images_dir, masks_dir: the folders.
        mask_suffix: what a mask's stem adds to its image's stem (``_segmentation``).
        ids: pair only these stems (from a list file) instead of scanning ``images_dir``.

    Returns:
        The pairs, sorted by id, and one problem per image without a mask or mask without an
        image (or, with ``ids``, per id without an image).

    Raises:
        DataError: a folder is missing or holds no images.
    """
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise DataError(f"{folder}: folder not found")
    images = _by_stem(images_dir, "")
    masks = _by_stem(masks_dir, mask_suffix)
    problems: list[str] = []
    if ids is not None:
        problems += [
            f"{images_dir}: no image {i}.* for listed id {i}" for i in ids if i not in images
        ]
        images = {i: images[i] for i in ids if i in images}
        masks = {i: masks[i] for i in ids if i in masks}
    elif not images:
        raise DataError(f"{images_dir}: no images found (expected {', '.join(IMAGE_SUFFIXES)})")
    problems += [
        f"{images[s]}: no mask {s}{mask_suffix}.* in {masks_dir}"
        for s in sorted(images.keys() - masks.keys())
    ]
    problems += [
        f"{masks[s]}: no image {s}.* in {images_dir}" for s in sorted(masks.keys() - images.keys())
    ]
    paired = sorted(images.keys() & masks.keys())
    return [Sample(id=s, image=str(images[s]), mask=str(masks[s])) for s in paired], problems


def assemble_splits(
    pool: list[Sample],
    official: dict[str, list[Sample]],
    split,
    source: str,
    problems: list[str],
) -> tuple[dict[str, list[Sample]], dict[str, str]]:
    """The train/val/test split of a dataset, and how each split was made.

    With ``split.files`` set, every split is read from ``<files>/<split>.txt`` (ids of ``pool``
    and ``official`` samples). Otherwise the dataset's ``official`` splits are kept and each
    missing val/test split is drawn from ``pool`` at random (``split.val``, ``split.test``,
    ``split.seed``); what is left of ``pool`` trains.

    Args:
        pool: samples that train unless drawn into val/test.
        official: splits the dataset defines itself (folders or list files).
        split: the ``dataset.split`` config node.
        source: how ``pool`` reads in the origin record, e.g. a folder name.
        problems: list that unknown ids in split files are appended to.
    """
    if split.files:
        return _splits_from_files(pool + [s for v in official.values() for s in v], split, problems)
    drawn = random_split(
        pool,
        val=0.0 if "val" in official else split.val,
        test=0.0 if "test" in official else split.test,
        seed=split.seed,
    )
    splits = {name: official.get(name, drawn[name]) for name in SPLITS}
    random_origin = f"random from {source} (seed {split.seed})"
    origin = {
        name: "official" if name in official else random_origin if splits[name] else "none"
        for name in SPLITS
    }
    # The training split is the dataset's own only if nothing was drawn out of it.
    if len(splits["train"]) == len(pool):
        origin["train"] = "official"
    return splits, origin


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
    if n and n - n_val - n_test < 1:
        raise DataError(
            f"dataset.split: {n} samples cannot be split into val={val} and test={test} with "
            "any left to train on"
        )
    return {
        "train": shuffled[n_val + n_test :],
        "val": shuffled[:n_val],
        "test": shuffled[n_val : n_val + n_test],
    }


def read_ids(path: Path) -> list[str]:
    """Sample ids from a list file: one per line, or the first column of a CSV.

    Blank lines and ``#`` comments are skipped; a first line ``id``/``image``/``name`` is a CSV
    header. An id may carry a file extension (``a.png`` is id ``a``).

    Raises:
        DataError: the file does not exist.
    """
    if not path.is_file():
        raise DataError(f"{path}: list file not found")
    ids = []
    for line in path.read_text().splitlines():
        value = line.split(",")[0].strip().strip('"')
        if not value or value.startswith("#"):
            continue
        if Path(value).suffix.lower() in IMAGE_SUFFIXES:
            value = Path(value).stem
        ids.append(value)
    if ids and ids[0].lower() in ("id", "ids", "image", "image_id", "name", "filename"):
        ids = ids[1:]
    return ids


def summarise(problems: list[str]) -> str:
    """One line listing the first problems and counting the rest."""
    shown = "; ".join(problems[:MAX_LISTED])
    more = len(problems) - MAX_LISTED
    prefix = f"{len(problems)} problem{'s' if len(problems) > 1 else ''} found: "
    return prefix + shown + (f"; and {more} more" if more > 0 else "")


def is_image(path: Path) -> bool:
    """A visible file with an image extension."""
    return (
        path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )


def _by_stem(folder: Path, suffix: str) -> dict[str, Path]:
    """Image files of ``folder`` by stem, less ``suffix``; files without the suffix are skipped."""
    found = {}
    for path in sorted(folder.iterdir()):
        if is_image(path) and path.stem.endswith(suffix):
            found[path.stem[: len(path.stem) - len(suffix)] if suffix else path.stem] = path
    return found


def _splits_from_files(
    samples: list[Sample], split, problems: list[str]
) -> tuple[dict[str, list[Sample]], dict[str, str]]:
    folder = Path(split.files).expanduser()
    by_id = {s.id: s for s in samples}
    splits: dict[str, list[Sample]] = {}
    origin: dict[str, str] = {}
    for name in SPLITS:
        path = folder / f"{name}.txt"
        if name == "test" and not path.exists():
            splits[name], origin[name] = [], f"none ({path} absent)"
            continue
        try:
            ids = read_ids(path)
        except DataError as error:
            problems.append(f"dataset.split.files: {error}")
            ids = []
        problems += [f"{path}: id {i} is not in the dataset" for i in ids if i not in by_id]
        splits[name] = [by_id[i] for i in ids if i in by_id]
        origin[name] = f"file {path}"
    return splits, origin
