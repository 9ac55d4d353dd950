"""Dataset index: the list of samples of a dataset and its train/val/test split.

Index builders only look at file names (and, for TIFF stacks, page counts); nothing is decoded
here, so building an index of a large dataset is fast and needs no memory beyond the list of
paths. Files that do not pair up are recorded in ``DatasetIndex.problems`` rather than raised at
once, so ``segkit.data.validate`` reports them together with every other problem it finds. How a
dataset's samples are divided into train, val and test is ``segkit.data.splits``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from segkit.core.errors import DataError, first_few
from segkit.data import labels as label_maps
from segkit.data.labels import LabelMap

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

    def ids_digest(self, split: str) -> str:
        """``sha256:<16 hex> (<n> images)`` of a split's sample ids: runs with the same digest
        were scored on the same images (``segkit.compare`` pools only those)."""
        return ids_digest([s.id for s in self.splits.get(split, [])])

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


def ids_digest(ids: list[str]) -> str:
    """``sha256:<16 hex> (<n> images)`` of a set of sample ids (their order does not matter)."""
    digest = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]
    return f"sha256:{digest} ({len(ids)} images)"


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


def summarise(problems: list[str]) -> str:
    """One line listing the first problems and counting the rest."""
    prefix = f"{len(problems)} problem{'s' if len(problems) > 1 else ''} found: "
    return prefix + first_few(problems, MAX_LISTED, "; ")


def is_image(path: Path) -> bool:
    """A visible file with an image extension."""
    return (
        path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )


def image_files(path: Path, key: str) -> list[Path]:
    """The image ``path`` names, or the images of the folder it names, sorted.

    Raises:
        DataError: ``path`` is not an image, does not exist or holds no image; the message
            names it as ``key`` (``input=...``).
    """
    if path.is_file():
        if not is_image(path):
            raise DataError(f"{key}={path}: not an image file")
        return [path]
    if not path.is_dir():
        raise DataError(f"{key}={path}: no such file or folder")
    images = [p for p in sorted(path.iterdir()) if is_image(p)]
    if not images:
        raise DataError(f"{key}={path}: no images in the folder")
    return images


def _by_stem(folder: Path, suffix: str) -> dict[str, Path]:
    """Image files of ``folder`` by stem, less ``suffix``; files without the suffix are skipped."""
    found = {}
    for path in sorted(folder.iterdir()):
        if is_image(path) and path.stem.endswith(suffix):
            found[path.stem[: len(path.stem) - len(suffix)] if suffix else path.stem] = path
    return found
