"""Typed configuration schemas, registered in Hydra's ConfigStore, and cross-field checks.

Every YAML file under ``conf/<group>/`` starts from one of the schemas below (the model schemas
live in ``segkit.model_schemas``, the loss options in ``segkit.loss_schemas``) through its
defaults list (``/schema/<group>@_here_: <schema>``), so an unknown key or a value of the wrong
type is an error at composition time, naming the key. ``validate`` adds the checks that involve
more than one field, including each model schema's own ``check``. This module imports nothing
heavy: it runs before TensorFlow is loaded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from segkit.errors import ConfigError
from segkit.loss_schemas import LossOptions, check_loss
from segkit.model_schemas import ImprovedUNetConfig, MobileNetUNetConfig, ModelConfig, UNetConfig


class Precision(StrEnum):
    """Keras dtype policies segkit can train under; ``auto`` picks one for the hardware."""

    auto = "auto"
    float32 = "float32"
    mixed_float16 = "mixed_float16"
    mixed_bfloat16 = "mixed_bfloat16"


class Strategy(StrEnum):
    """tf.distribute strategies segkit can train under."""

    default = "default"
    mirrored = "mirrored"
    multi_worker = "multi_worker"


class ClusterSource(StrEnum):
    """Where a multi-worker run reads the cluster layout from."""

    # TF_CONFIG when it is set, else Slurm's variables inside a Slurm job step.
    auto = "auto"
    tf_config = "tf_config"
    slurm = "slurm"


class Communication(StrEnum):
    """Collective implementation of MultiWorkerMirroredStrategy."""

    auto = "auto"
    ring = "ring"
    nccl = "nccl"


class OptimizerName(StrEnum):
    """Optimizers segkit builds (``segkit.trainer.OPTIMIZERS``)."""

    adam = "adam"
    adamw = "adamw"
    sgd = "sgd"


class ScheduleName(StrEnum):
    """Learning-rate schedules segkit builds (``segkit.trainer.build_schedule``)."""

    constant = "constant"
    cosine = "cosine"


class MonitorMode(StrEnum):
    """Whether a larger or a smaller monitored value is better (auto: min for a loss)."""

    auto = "auto"
    max = "max"
    min = "min"


# The scores logged for every epoch (train/<score>, val/<score>) and returned at the end.
EPOCH_SCORES = ("loss", "dice", "miou", "pixel_accuracy")


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


class AugmentName(StrEnum):
    """Augmentation presets in ``segkit.data.augment.AUGMENTS``."""

    none = "none"
    flip = "flip"
    standard = "standard"
    elastic = "elastic"


# ----------------------------------------------------------------------------------- dataset


@dataclass
class SplitConfig:
    """Deterministic random split of the samples: fractions for val and test, the rest trains.

    A dataset's own split (official folders or list files) wins over the fractions for the
    splits it defines; ``files`` fixes every split from id lists instead.
    """

    val: float = 0.15
    test: float = 0.15
    seed: int = 0
    # Folder with train.txt, val.txt and optionally test.txt (one sample id per line), such as a
    # previous run's splits/ folder; null = official splits where the dataset has them, else random.
    files: str | None = None


@dataclass
class DatasetConfig:
    """Fields every dataset has. ``name`` selects the index builder in ``segkit.data.INDEXERS``."""

    name: str = MISSING
    root: str = MISSING
    # Number of classes including background: 2 for a binary task (the model then has one
    # sigmoid output channel), 21 for PASCAL VOC.
    num_classes: int = 2
    class_names: list[str] | None = None
    image_size: int = 128
    channels: int = 3
    # Label value that is excluded from losses and metrics (VOC's object boundaries, padding).
    ignore_index: int = 255
    split: SplitConfig = field(default_factory=SplitConfig)
    # resize: squash to image_size; letterbox: keep the aspect ratio and pad (image with
    # pad_value, mask with ignore_index); random_crop / center_crop: an image_size crop, after
    # scaling the shorter side to `rescale` pixels when set (evaluation always crops the centre).
    resize: ResizePolicy = ResizePolicy.resize
    rescale: int | None = None
    pad_value: int = 0
    # Keep decoded, resized samples in memory or under cache_dir/decoded (small datasets).
    cache: CacheMode = CacheMode.none
    # full: decode every file (mask values, truncated data); quick: headers and file ends only;
    # off: file names only. A successful check is remembered under cache_dir/validated.
    validate: ValidateMode = ValidateMode.full


@dataclass
class SyntheticDatasetConfig(DatasetConfig):
    """Generated blobs-on-texture task, written as ISIC-2018-style files on first use."""

    num_samples: int = 300
    seed: int = 0
    min_side: int = 160
    max_side: int = 224


@dataclass
class IsicDatasetConfig(DatasetConfig):
    """ISIC 2018 Task 1 folders (``ISIC_x.jpg`` + ``ISIC_x_segmentation.png``)."""


@dataclass
class Dsb2018DatasetConfig(DatasetConfig):
    """Data Science Bowl 2018 nuclei: ``<subset>/<id>/images/<id>.png`` + ``masks/*.png``."""

    # The folder of sample folders inside root (root itself when it holds the sample folders).
    subset: str = "stage1_train"


@dataclass
class VocDatasetConfig(DatasetConfig):
    """PASCAL VOC 2012 segmentation: palette PNG masks, classes 0..20, 255 = boundary (ignored)."""

    # Id lists in ImageSets/Segmentation (name without .txt, or a path to any list file).
    train_list: str = "train"
    val_list: str = "val"
    # null: the test split is drawn from the training list by split.test (0 by default).
    test_list: str | None = None
    # Read masks from SBD's SegmentationClassAug/ (grayscale class indices) instead of
    # SegmentationClass/; pair it with train_list=train_aug.
    use_sbd: bool = False


@dataclass
class IsbiDatasetConfig(DatasetConfig):
    """ISBI 2012 EM membranes: multi-page TIFF stacks, or one PNG per slice."""

    # A multi-page TIFF or a folder of slices, relative to root; null finds train-volume.tif /
    # train-labels.tif, else train/image/ and train/label/.
    images: str | None = None
    masks: str | None = None
    # membrane: label 0 (membranes) is the foreground class, as in the challenge's scoring and
    # the UNet paper; cell: label 255 (cell interiors) is.
    foreground: IsbiForeground = IsbiForeground.membrane


@dataclass
class FolderDatasetConfig(DatasetConfig):
    """Any images folder + masks folder, matched by file stem (plus ``mask_suffix``)."""

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
    colour_table: list[list[int]] | None = None
    # RGB colour read as ignore_index in colour masks (e.g. VOC's boundary colour).
    ignore_colour: list[int] | None = None


# ----------------------------------------------------------------------------------- augment


@dataclass
class AugmentConfig:
    """No augmentation. ``name`` selects the preset in ``segkit.data.augment.AUGMENTS``."""

    name: AugmentName = AugmentName.none


@dataclass
class FlipAugmentConfig(AugmentConfig):
    """Random flips (probabilities) and, for orientation-free images, 90-degree rotations."""

    horizontal: float = 0.5
    vertical: float = 0.5
    rotate90: float = 0.0


@dataclass
class StandardAugmentConfig(FlipAugmentConfig):
    """Flips, a random affine transform and colour jitter."""

    affine: float = 0.7
    scale: list[float] = field(default_factory=lambda: [0.9, 1.1])
    rotate: float = 15.0  # degrees, either way
    translate: float = 0.05  # fraction of the image size, either way
    colour: float = 0.8
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02


@dataclass
class ElasticAugmentConfig(StandardAugmentConfig):
    """The standard preset plus Simard et al.'s elastic deformation (alpha, sigma in pixels)."""

    elastic: float = 0.5
    alpha: float = 34.0
    sigma: float = 4.0


# ----------------------------------------------------------------------------------- trainer


@dataclass
class OptimizerConfig:
    """Optimizer by Keras name (adam, adamw, sgd) with its learning rate and weight decay."""

    name: OptimizerName = OptimizerName.adam
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9


@dataclass
class ScheduleConfig:
    """Learning-rate schedule: constant, or cosine decay with optional linear warm-up."""

    name: ScheduleName = ScheduleName.constant
    warmup_epochs: int = 0
    min_lr_ratio: float = 0.0


@dataclass
class EarlyStoppingConfig:
    """Stop when the monitored metric has not improved for ``patience`` epochs (0 = off)."""

    patience: int = 0
    min_delta: float = 0.0


@dataclass
class MultiWorkerConfig:
    """How ``strategy: multi_worker`` finds its cluster (ignored by the other strategies)."""

    cluster: ClusterSource = ClusterSource.auto
    communication: Communication = Communication.auto
    # SlurmClusterResolver: port of a node's first task (the next tasks count up from it) and GPUs
    # per node (null: ask nvidia-smi; 0: CPU-only nodes, CUDA_VISIBLE_DEVICES is left alone).
    port_base: int = 8888
    gpus_per_node: int | None = None
    # BatchNormalization takes its batch statistics over all workers: without it each worker's
    # moving mean and variance drift apart and the workers end with different weights.
    sync_batch_norm: bool = True


@dataclass
class TrainerConfig:
    """Everything about how the model is fitted."""

    epochs: int = 20
    batch_size: int = 8
    precision: Precision = Precision.auto
    strategy: Strategy = Strategy.default
    # Split the host CPU into this many logical devices before TensorFlow starts (0 = leave it);
    # lets `strategy=mirrored` run real replicas on a machine without GPUs.
    logical_cpu_devices: int = 0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    # A weighted sum of loss terms (LossName): "bce + dice", "dice", "0.5*focal + tversky".
    loss: str = "bce + dice"
    loss_options: LossOptions = field(default_factory=LossOptions)
    # Metric that picks the best checkpoint and drives early stopping, as logged (val/...).
    monitor: str = "val/dice"
    monitor_mode: MonitorMode = MonitorMode.auto
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    # Cap on batches per epoch (smoke runs); null = the whole split.
    limit_train_batches: int | None = None
    limit_val_batches: int | None = None
    # Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch.
    verbose: int = 1
    # Bit-identical runs for a seed: TensorFlow's op determinism on top of the seeding every run
    # does (Python, NumPy, Keras, and the augmentation per element). Slower on GPUs.
    deterministic: bool = False
    # Back up the training state every this many steps as well as at every epoch end, so that a
    # killed run loses less (null: epoch ends only).
    backup_every_steps: int | None = None
    multi_worker: MultiWorkerConfig = field(default_factory=MultiWorkerConfig)


# ---------------------------------------------------------------------------------- tracking


@dataclass
class SweepTrackingConfig:
    """How the jobs of a ``-m`` sweep are grouped in MLflow."""

    # One parent run for the sweep with each job as a child run (tag mlflow.parentRunId).
    parent_run: bool = True
    # Name of the parent run; null = "<run name>-sweep".
    run_name: str | None = None


@dataclass
class TrackingConfig:
    """Where runs are logged. ``enabled: false`` (tracking=none) logs nothing."""

    enabled: bool = True
    # sqlite:///file.db (one process at a time) or http(s)://host:port of an `mlflow server`.
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "segkit"
    # Artifact root for a new experiment; null lets MLflow choose (./mlartifacts next to the db).
    artifact_location: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    log_model: bool = True
    # Also log the best model with MLflow's keras flavour and register it under this name in the
    # model registry (models:/<name>/<version>); null = log it unregistered.
    register_model: str | None = None
    # Validation images whose predictions are logged as one image per epoch (0 = none).
    sample_predictions: int = 4
    # Seconds an http(s) tracking server has to answer the check made before anything is trained.
    server_timeout: float = 5.0
    # Nest the run under this MLflow run; segkit sets it for each job of a -m sweep.
    parent_run_id: str | None = None
    sweep: SweepTrackingConfig = field(default_factory=SweepTrackingConfig)


# -------------------------------------------------------------------------------------- root


@dataclass
class TrainConfig:
    """The composed run: one option of each group plus run-wide settings."""

    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    trainer: TrainerConfig = MISSING
    augment: AugmentConfig = MISSING
    tracking: TrackingConfig = MISSING
    seed: int = 0
    run_name: str | None = None
    output_dir: str | None = None
    # Rerunning into an output_dir that holds an unfinished run continues it (same MLflow run);
    # false starts afresh there, moving the unfinished run's files under superseded/.
    resume: bool = True
    cache_dir: str = MISSING
    # The value `python -m segkit.train` returns to a Hydra sweeper.
    optimized_metric: str = "val/dice"


@dataclass
class InspectConfig:
    """``python -m segkit.inspect``: statistics and figures of a dataset, nothing trained."""

    dataset: DatasetConfig = MISSING
    tracking: TrackingConfig = MISSING
    output_dir: str | None = None
    cache_dir: str = MISSING
    run_name: str | None = None
    # Samples drawn (with `seed`) for the overlay grid.
    overlays: int = 16
    seed: int = 0
    # Decode at most this many samples per split for pixel statistics; null = all of them.
    max_samples: int | None = None


@dataclass
class InferenceConfig:
    """How predictions are made (``segkit.evaluation.inference``)."""

    # auto: tiled for models trained on crops, whole-image otherwise; whole; tiled.
    mode: str = "auto"
    # Foreground probability above which a pixel is foreground (binary tasks).
    threshold: float = 0.5
    # Test-time augmentation: average over horizontal and vertical flips.
    tta: bool = False
    # Tiled: fraction of a tile its neighbour overlaps; tiles per model call.
    overlap: float = 0.25
    batch_size: int = 8
    # Tiled, for models trained with resize/letterbox: working scale (1.0 = full resolution).
    scale: float | None = None


@dataclass
class PostprocessConfig:
    """Clean-ups of predicted masks, per foreground class."""

    # Keep only the largest connected object (ISIC: one lesion per image).
    largest: bool = False
    # Remove objects smaller than this many pixels (0 = keep all).
    min_size: int = 0
    fill_holes: bool = False


@dataclass
class EvaluateConfig:
    """``python -m segkit.evaluate``: scores of a trained model at the original resolution."""

    run_id: str | None = None
    # A .keras file or models:/<name>/<version> (``model=`` on the command line).
    model_path: str | None = None
    # The training run's dataset unless a dataset option is chosen (dataset=isic ...).
    dataset: Any = None
    # Where the dataset is on this machine, when not where the run found it.
    dataset_root: str | None = None
    split: str = "test"
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    # Best and worst images shown in the gallery figure.
    gallery: int = 4
    max_samples: int | None = None
    tracking: TrackingConfig = MISSING
    run_name: str | None = None
    output_dir: str | None = None
    cache_dir: str = MISSING


@dataclass
class PredictConfig:
    """``python -m segkit.predict``: masks and overlays for a folder of images."""

    run_id: str | None = None
    model_path: str | None = None
    input: str = MISSING
    output: str = MISSING
    # Also write <name>_overlay.jpg next to each mask.
    overlays: bool = True
    # When the model comes without a run's config: the input channels are read from the model,
    # this resize policy is assumed.
    resize: ResizePolicy = ResizePolicy.resize
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    tracking: TrackingConfig = MISSING
    cache_dir: str = MISSING


SCHEMAS: dict[str, dict[str, Any]] = {
    "dataset": {
        "synthetic": SyntheticDatasetConfig,
        "isic": IsicDatasetConfig,
        "dsb2018": Dsb2018DatasetConfig,
        "voc": VocDatasetConfig,
        "isbi": IsbiDatasetConfig,
        "folder": FolderDatasetConfig,
    },
    "model": {
        "unet": UNetConfig,
        "improved_unet": ImprovedUNetConfig,
        "mobilenet_unet": MobileNetUNetConfig,
    },
    "trainer": {"trainer": TrainerConfig},
    "augment": {
        "none": AugmentConfig,
        "flip": FlipAugmentConfig,
        "standard": StandardAugmentConfig,
        "elastic": ElasticAugmentConfig,
    },
    "tracking": {"tracking": TrackingConfig},
}


def register_configs() -> None:
    """Register the schemas in Hydra's ConfigStore and segkit's resolvers (idempotent).

    ``${metric_direction:val/loss}`` gives ``minimize`` (``maximize`` for scores), for sweepers.
    """
    OmegaConf.register_new_resolver("metric_direction", metric_direction, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="inspect_schema", node=InspectConfig)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    cs.store(name="predict_schema", node=PredictConfig)
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            cs.store(group=f"schema/{group}", name=name, node=node)


def validate(cfg: DictConfig) -> None:
    """Check the combinations a single field's type cannot express.

    Works on any composed config (train, inspect): each group present is checked.

    Raises:
        ConfigError: naming the key at fault and the values that would work.
    """
    _check_known_keys(cfg, "")
    if "dataset" in cfg and cfg.dataset is not None:  # evaluate: the run's dataset, checked later
        _validate_dataset(cfg.dataset)
    if "augment" in cfg:
        _validate_augment(cfg.augment)
    if "model" in cfg and "dataset" in cfg:
        schema = OmegaConf.get_type(cfg.model)
        if isinstance(schema, type) and issubclass(schema, ModelConfig):
            schema.check(cfg)
    if "trainer" in cfg:
        trainer = cfg.trainer
        if "dataset" in cfg:
            check_loss(trainer, int(cfg.dataset.num_classes))
        for key in ("epochs", "batch_size", "backup_every_steps"):
            if trainer[key] is not None and trainer[key] < 1:
                raise ConfigError(f"trainer.{key}={trainer[key]}: expected >= 1")
        monitors = [f"val/{score}" for score in EPOCH_SCORES]
        if trainer.monitor not in monitors:
            raise ConfigError(
                f"trainer.monitor={trainer.monitor!r}: expected one of {', '.join(monitors)}"
            )
    if "optimized_metric" in cfg:
        _check_optimized_metric(str(cfg.optimized_metric), cfg.get("dataset"))
    if "tracking" in cfg and cfg.tracking.server_timeout <= 0:
        raise ConfigError(f"tracking.server_timeout={cfg.tracking.server_timeout}: expected > 0")


# Datasets whose masks fix the number of classes (background included).
FIXED_CLASSES = {"synthetic": 2, "isic": 2, "dsb2018": 2, "isbi": 2, "voc": 21}


def _validate_dataset(ds: DictConfig) -> None:
    if ds.num_classes < 2:
        raise ConfigError(
            f"dataset.num_classes={ds.num_classes}: expected >= 2 "
            "(classes including background; a binary task has 2)"
        )
    expected = FIXED_CLASSES.get(ds.name)
    if ds.name == "folder" and option_value(ds.mask_format) == "binary":
        expected = 2
    if expected is not None and ds.num_classes != expected:
        raise ConfigError(
            f"dataset.num_classes={ds.num_classes}: dataset {ds.name!r} has {expected} classes"
            f"{' (binary masks)' if expected == 2 else ''}"
        )
    if 0 <= ds.ignore_index < ds.num_classes or not 0 <= ds.ignore_index <= 255:
        raise ConfigError(
            f"dataset.ignore_index={ds.ignore_index}: expected a label value in "
            f"{ds.num_classes}..255, outside the classes 0..{ds.num_classes - 1} "
            "(255 by convention)"
        )
    if ds.class_names is not None and len(ds.class_names) != ds.num_classes:
        raise ConfigError(
            f"dataset.class_names has {len(ds.class_names)} names but dataset.num_classes="
            f"{ds.num_classes}"
        )
    if ds.channels not in (1, 3):
        raise ConfigError(f"dataset.channels={ds.channels}: expected 1 or 3")
    split = ds.split
    if split.val < 0 or split.test < 0 or split.val + split.test >= 1:
        raise ConfigError(
            f"dataset.split val={split.val} test={split.test}: expected fractions >= 0 "
            "that leave samples to train on (val + test < 1)"
        )
    if ds.image_size < 8:
        raise ConfigError(f"dataset.image_size={ds.image_size}: expected >= 8")
    if not 0 <= ds.pad_value <= 255:
        raise ConfigError(f"dataset.pad_value={ds.pad_value}: expected 0..255")
    crop = option_value(ds.resize) in ("random_crop", "center_crop")
    if ds.rescale is not None and not crop:
        raise ConfigError(
            f"dataset.rescale={ds.rescale} only applies to dataset.resize=random_crop or "
            f"center_crop, not {option_value(ds.resize)}: set dataset.rescale=null"
        )
    if ds.rescale is not None and ds.rescale < ds.image_size:
        raise ConfigError(
            f"dataset.rescale={ds.rescale}: expected >= dataset.image_size={ds.image_size} "
            "(the shorter side must hold an image_size crop)"
        )
    if ds.name == "folder":
        _validate_colour_table(ds)


def _validate_colour_table(ds: DictConfig) -> None:
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


def _validate_augment(aug: DictConfig) -> None:
    for key in ("horizontal", "vertical", "rotate90", "affine", "colour", "elastic"):
        if key in aug and not 0.0 <= aug[key] <= 1.0:
            raise ConfigError(f"augment.{key}={aug[key]}: expected a probability in [0, 1]")
    if "scale" in aug:
        scale = list(aug.scale)
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ConfigError(f"augment.scale={scale}: expected [low, high] with 0 < low <= high")
    for key in ("rotate", "translate", "brightness", "contrast", "saturation", "hue", "alpha"):
        if key in aug and aug[key] < 0:
            raise ConfigError(f"augment.{key}={aug[key]}: expected >= 0")
    if "sigma" in aug and aug.sigma <= 0:
        raise ConfigError(f"augment.sigma={aug.sigma}: expected > 0")


def _check_known_keys(node: DictConfig, path: str) -> None:
    """Reject keys a schema does not define (Hydra's ``+key=value`` can add them)."""
    schema = OmegaConf.get_type(node)
    if dataclasses.is_dataclass(schema):
        known = [f.name for f in dataclasses.fields(schema)]
        unknown = [str(k) for k in node if k not in known]
        if unknown:
            key = f"{path}{unknown[0]}"
            raise ConfigError(f"unknown config key {key}; valid keys here: {', '.join(known)}")
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            _check_known_keys(child, f"{path}{key}.")


def _check_optimized_metric(metric: str, dataset: DictConfig | None) -> None:
    """A final score a run returns: ``val|test/<score>`` or ``val|test/<dice|iou>/<class>``."""
    split, _, rest = metric.partition("/")
    score, _, class_name = rest.partition("/")
    names = class_names(dataset) if dataset is not None and "num_classes" in dataset else []
    if split in ("val", "test") and (
        (not class_name and score in EPOCH_SCORES)
        or (score in ("dice", "iou") and class_name in names)
    ):
        return
    per_class = f"val/dice/{names[-1]}" if names else "val/dice/<class name>"
    raise ConfigError(
        f"optimized_metric={metric!r}: expected val/ or test/ followed by one of "
        f"{', '.join(EPOCH_SCORES)}, or a class's score such as {per_class}"
    )


def class_names(dataset: DictConfig) -> list[str]:
    """The names per-class scores are logged under: ``dataset.class_names``, else the indices."""
    return [str(n) for n in (dataset.get("class_names") or range(int(dataset.num_classes)))]


def monitor_mode(trainer: DictConfig) -> str:
    """``max`` or ``min`` for ``trainer.monitor``: as configured, or (auto) min for a loss."""
    mode = option_value(trainer.monitor_mode)
    if mode != MonitorMode.auto.value:
        return mode
    return "min" if metric_direction(str(trainer.monitor)) == "minimize" else "max"


def metric_direction(metric: str) -> str:
    """``minimize`` for a loss (``val/loss``), ``maximize`` for a score (``val/dice``)."""
    return "minimize" if str(metric).rsplit("/", 1)[-1].endswith("loss") else "maximize"


def option_value(option: Any) -> str:
    """The string of a config value that may be an Enum member (OmegaConf returns those)."""
    return str(getattr(option, "value", option))


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolved plain-dict copy of a config (enums as their names)."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[return-value]
