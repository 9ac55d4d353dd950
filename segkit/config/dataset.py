"""Dataset schemas: the fields every dataset has, and one schema per on-disk format.

A schema's ``name`` default is the option name (``conf/dataset/<name>.yaml``) and the key of its
index builder in ``segkit.data.formats.FORMATS``. What only one format knows (how many classes
its masks hold, which settings go together) is that schema's ``classes`` and ``check``;
``segkit.config.validate`` checks the fields every dataset shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from omegaconf import MISSING, DictConfig

from segkit.config.ranges import ranged
from segkit.config.values import option_value
from segkit.core.errors import ConfigError


class ResizePolicy(StrEnum):
    """How an image of any size becomes an ``image_size`` square (``segkit.data.geometry``)."""

    resize = "resize"
    letterbox = "letterbox"
    random_crop = "random_crop"
    center_crop = "center_crop"


class CacheMode(StrEnum):
    """Where decoded, resized samples are kept between epochs (none = decode every time)."""

    none = "none"
    memory = "memory"
    disk = "disk"


class ValidateMode(StrEnum):
    """How much of every file is read before training (``segkit.data.validate``)."""

    full = "full"
    quick = "quick"
    off = "off"


class MaskFormat(StrEnum):
    """How the pixel values of a folder dataset's masks encode classes."""

    binary = "binary"
    index = "index"
    colour = "colour"


class IsbiForeground(StrEnum):
    """Which ISBI 2012 label is the foreground class: membranes (label 0) or cells (255)."""

    membrane = "membrane"
    cell = "cell"


@dataclass
class SplitConfig:
    """Deterministic random split of the samples: fractions for val and test, the rest trains.

    A dataset's own split (official folders or list files) wins over the fractions for the
    splits it defines; ``files`` fixes every split from id lists instead; ``folds`` and
    ``fold`` replace the val fraction with one fold of a K-fold cross-validation.
    """

    val: float = ranged(0.15, ge=0, lt=1)
    test: float = ranged(0.15, ge=0, lt=1)
    seed: int = ranged(0, ge=0, le=2**32 - 1)
    # Folder with train.txt, val.txt and optionally test.txt (one sample id per line), such as a
    # previous run's splits/ folder; null = official splits where the dataset has them, else random.
    files: str | None = None
    # K-fold cross-validation: the train+val pool (with an official val split joined to it) is
    # cut into `folds` folds by `seed`; fold `fold` validates, the others train, and the test
    # split (official, else drawn by `test`) stays out of every fold. null = no folds.
    folds: int | None = ranged(None, ge=2, note="the number of folds, or null for none")
    fold: int | None = ranged(None, ge=0)
    # With folds on a binary dataset: rank the pool by foreground fraction and deal each run of
    # K neighbours one to a fold, so every fold has a like share of small and large objects.
    stratify: bool = True


@dataclass
class DatasetConfig:
    """Fields every dataset has. ``name`` selects the index builder in
    ``segkit.data.formats.FORMATS``."""

    name: str = MISSING
    root: str = MISSING
    # Number of classes including background: 2 for a binary task (the model then has one
    # sigmoid output channel), 21 for PASCAL VOC.
    num_classes: int = ranged(
        2, ge=2, le=256, note="classes including background; a binary task has 2"
    )
    class_names: list[str] | None = None
    image_size: int = ranged(128, ge=8)
    channels: int = ranged(3, ge=1, le=3, expected="1 or 3")
    # Label value that is excluded from losses and metrics (VOC's object boundaries, padding).
    ignore_index: int = ranged(255, ge=0, le=255)
    split: SplitConfig = field(default_factory=SplitConfig)
    # resize: squash to image_size; letterbox: keep the aspect ratio and pad (image with
    # pad_value, mask with ignore_index); random_crop / center_crop: an image_size crop, after
    # scaling the shorter side to `rescale` pixels when set (evaluation always crops the centre).
    resize: ResizePolicy = ResizePolicy.resize
    rescale: int | None = ranged(None, ge=8)
    pad_value: int = ranged(0, ge=0, le=255)
    # Keep decoded, resized samples in memory or under cache_dir/decoded (small datasets).
    cache: CacheMode = CacheMode.none
    # full: decode every file (mask values, truncated data); quick: headers and file ends only;
    # off: file names only. A successful check is remembered under cache_dir/validated.
    validate: ValidateMode = ValidateMode.full
    # The number of classes the format's masks hold (background included); None: configurable.
    CLASSES: ClassVar[int | None] = None

    @classmethod
    def classes(cls, ds: DictConfig) -> int | None:
        """The number of classes this dataset's masks fix, or None when ``num_classes`` says."""
        return cls.CLASSES

    @classmethod
    def check(cls, ds: DictConfig) -> None:
        """Format-specific checks of the ``dataset`` node; none by default.

        Raises:
            ConfigError: naming the key at fault and the values that would work.
        """


@dataclass
class SyntheticDatasetConfig(DatasetConfig):
    """Generated blobs-on-texture task, written as ISIC-2018-style files on first use."""

    name: str = "synthetic"
    num_samples: int = ranged(300, ge=1)
    seed: int = ranged(0, ge=0, le=2**32 - 1)
    min_side: int = ranged(160, ge=32)
    max_side: int = ranged(224, ge=32)
    CLASSES: ClassVar[int | None] = 2
    # The generator draws blobs and hairs that need this many pixels a side.
    MIN_SIDE: ClassVar[int] = 32

    @classmethod
    def check(cls, ds: DictConfig) -> None:
        """At least one sample, and image sides the generator can draw."""
        if not cls.MIN_SIDE <= ds.min_side <= ds.max_side:
            raise ConfigError(
                f"dataset.min_side={ds.min_side} dataset.max_side={ds.max_side}: expected "
                f"{cls.MIN_SIDE} <= min_side <= max_side"
            )


@dataclass
class IsicDatasetConfig(DatasetConfig):
    """ISIC 2018 Task 1 folders (``ISIC_x.jpg`` + ``ISIC_x_segmentation.png``)."""

    name: str = "isic"
    CLASSES: ClassVar[int | None] = 2


@dataclass
class Dsb2018DatasetConfig(DatasetConfig):
    """Data Science Bowl 2018 nuclei: ``<subset>/<id>/images/<id>.png`` + ``masks/*.png``."""

    name: str = "dsb2018"
    # The folder of sample folders inside root (root itself when it holds the sample folders).
    subset: str = "stage1_train"
    CLASSES: ClassVar[int | None] = 2


@dataclass
class VocDatasetConfig(DatasetConfig):
    """PASCAL VOC 2012 segmentation: palette PNG masks, classes 0..20, 255 = boundary (ignored)."""

    name: str = "voc"
    # Id lists in ImageSets/Segmentation (name without .txt, or a path to any list file).
    train_list: str = "train"
    val_list: str = "val"
    # null: the test split is drawn from the training list by split.test (0 by default).
    test_list: str | None = None
    # Read masks from SBD's SegmentationClassAug/ (grayscale class indices) instead of
    # SegmentationClass/; pair it with train_list=train_aug.
    use_sbd: bool = False
    CLASSES: ClassVar[int | None] = 21


@dataclass
class IsbiDatasetConfig(DatasetConfig):
    """ISBI 2012 EM membranes: multi-page TIFF stacks, or one PNG per slice."""

    name: str = "isbi"
    # A multi-page TIFF or a folder of slices, relative to root; null finds train-volume.tif /
    # train-labels.tif, else train/image/ and train/label/.
    images: str | None = None
    masks: str | None = None
    # membrane: label 0 (membranes) is the foreground class, as in the challenge's scoring and
    # the UNet paper; cell: label 255 (cell interiors) is.
    foreground: IsbiForeground = IsbiForeground.membrane
    CLASSES: ClassVar[int | None] = 2


@dataclass
class FolderDatasetConfig(DatasetConfig):
    """Any images folder + masks folder, matched by file stem (plus ``mask_suffix``)."""

    name: str = "folder"
    images: str = MISSING
    masks: str = MISSING
    # A mask is <image stem><mask_suffix>.<any image extension>, e.g. "_mask".
    mask_suffix: str = ""
    # A text or CSV file of sample ids (file stems, first column, header optional) to use
    # instead of scanning the images folder.
    ids_file: str | None = None
    # binary: 0 = background, 1 or 255 = foreground; index: pixel value = class index
    # (ignore_index allowed); colour: RGB masks, colour_table[i] is the colour of class i.
    mask_format: MaskFormat = MaskFormat.binary
    colour_table: list[list[int]] | None = ranged(None, ge=0, le=255, note="RGB values")
    # RGB colour read as ignore_index in colour masks (e.g. VOC's boundary colour).
    ignore_colour: list[int] | None = ranged(None, ge=0, le=255, note="RGB values")

    @classmethod
    def classes(cls, ds: DictConfig) -> int | None:
        """Binary masks hold 2 classes; index and colour masks as many as configured."""
        return 2 if option_value(ds.mask_format) == "binary" else None

    @classmethod
    def check(cls, ds: DictConfig) -> None:
        """A colour table (one RGB colour per class) exactly when the masks are colour masks."""
        colours = ds.colour_table
        if option_value(ds.mask_format) != "colour":
            if colours is not None or ds.ignore_colour is not None:
                raise ConfigError(
                    "dataset.colour_table and dataset.ignore_colour need dataset.mask_format=colour"
                )
            return
        if colours is None or len(colours) != ds.num_classes:
            raise ConfigError(
                f"dataset.colour_table: expected {ds.num_classes} RGB colours (one per class, "
                f"class 0 first) for dataset.mask_format=colour, got "
                f"{'none' if colours is None else len(colours)}"
            )
        named = [("colour_table", c) for c in colours]
        if ds.ignore_colour is not None:
            named.append(("ignore_colour", ds.ignore_colour))
        for key, colour in named:
            if len(colour) != 3 or not all(0 <= v <= 255 for v in colour):
                raise ConfigError(f"dataset.{key}: {list(colour)} is not an RGB colour [r, g, b]")
        keys = [tuple(c) for _, c in named]
        if len(set(keys)) != len(keys):
            raise ConfigError("dataset.colour_table: a colour is given for two classes")


# Option name -> schema (the ConfigStore's schema/dataset group).
DATASET_SCHEMAS: dict[str, type[DatasetConfig]] = {
    schema.name: schema
    for schema in (
        SyntheticDatasetConfig,
        IsicDatasetConfig,
        Dsb2018DatasetConfig,
        VocDatasetConfig,
        IsbiDatasetConfig,
        FolderDatasetConfig,
    )
}
