"""Typed configuration schemas, registered in Hydra's ConfigStore, and cross-field checks.

Every YAML file under ``conf/<group>/`` starts from one of the schemas below through its defaults
list (``/schema/<group>@_here_: <schema>``), so an unknown key or a value of the wrong type is an
error at composition time, naming the key. ``validate`` adds the checks that involve more than one
field. This module imports nothing heavy: it runs before TensorFlow is loaded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from segkit.errors import ConfigError


class Precision(StrEnum):
    """Keras dtype policies segkit can train under."""

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


class LossName(StrEnum):
    """Losses in ``segkit.losses.LOSSES``."""

    dice = "dice"
    bce_dice = "bce_dice"
    ce = "ce"


class MonitorMode(StrEnum):
    """Whether a larger or a smaller monitored value is better."""

    max = "max"
    min = "min"


class Upsampling(StrEnum):
    """How a UNet decoder doubles the resolution."""

    transpose = "transpose"
    bilinear = "bilinear"


# ----------------------------------------------------------------------------------- dataset


@dataclass
class SplitConfig:
    """Deterministic random split of the samples: fractions for val and test, the rest trains."""

    val: float = 0.15
    test: float = 0.15
    seed: int = 0


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
    # Label value that is excluded from losses and metrics (VOC's object boundaries).
    ignore_index: int = 255
    split: SplitConfig = field(default_factory=SplitConfig)


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


# ------------------------------------------------------------------------------------- model


@dataclass
class ModelConfig:
    """Fields every model has. ``name`` selects the builder in ``segkit.models.MODELS``."""

    name: str = MISSING


@dataclass
class UNetConfig(ModelConfig):
    """Classic UNet (Ronneberger et al. 2015); base_filters=64, depth=4 is the paper's."""

    base_filters: int = 16
    depth: int = 4
    batch_norm: bool = True
    dropout: float = 0.0
    upsampling: Upsampling = Upsampling.transpose


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
    precision: Precision = Precision.float32
    strategy: Strategy = Strategy.default
    # Split the host CPU into this many logical devices before TensorFlow starts (0 = leave it);
    # lets `strategy=mirrored` run real replicas on a machine without GPUs.
    logical_cpu_devices: int = 0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossName = LossName.bce_dice
    # Metric that picks the best checkpoint and drives early stopping, as logged (val/...).
    monitor: str = "val/dice"
    monitor_mode: MonitorMode = MonitorMode.max
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    # Cap on batches per epoch (smoke runs); null = the whole split.
    limit_train_batches: int | None = None
    limit_val_batches: int | None = None
    shuffle_buffer: int = 1024
    # Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch.
    verbose: int = 1
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
    tracking: TrackingConfig = MISSING
    seed: int = 0
    run_name: str | None = None
    output_dir: str | None = None
    cache_dir: str = MISSING
    # The value `python -m segkit.train` returns to a Hydra sweeper.
    optimized_metric: str = "val/dice"


SCHEMAS: dict[str, dict[str, Any]] = {
    "dataset": {"synthetic": SyntheticDatasetConfig, "isic": IsicDatasetConfig},
    "model": {"unet": UNetConfig},
    "trainer": {"trainer": TrainerConfig},
    "tracking": {"tracking": TrackingConfig},
}


def register_configs() -> None:
    """Register the schemas in Hydra's ConfigStore and segkit's resolvers (idempotent).

    ``${metric_direction:val/loss}`` gives ``minimize`` (``maximize`` for scores), for sweepers.
    """
    OmegaConf.register_new_resolver("metric_direction", metric_direction, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            cs.store(group=f"schema/{group}", name=name, node=node)


def validate(cfg: DictConfig) -> None:
    """Check the combinations a single field's type cannot express.

    Raises:
        ConfigError: naming the key at fault and the values that would work.
    """
    _check_known_keys(cfg, "")
    ds, model, trainer = cfg.dataset, cfg.model, cfg.trainer
    if ds.num_classes < 2:
        raise ConfigError(
            f"dataset.num_classes={ds.num_classes}: expected >= 2 "
            "(classes including background; a binary task has 2)"
        )
    if 0 <= ds.ignore_index < ds.num_classes:
        raise ConfigError(
            f"dataset.ignore_index={ds.ignore_index} is a valid class of the "
            f"{ds.num_classes}-class dataset: expected a value outside 0..{ds.num_classes - 1} "
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
    depth = getattr(model, "depth", None)
    if depth is not None:
        step = 2**depth
        if ds.image_size % step or ds.image_size < step:
            ok = ", ".join(str(step * k) for k in range(1, 9) if step * k >= 32)
            raise ConfigError(
                f"dataset.image_size={ds.image_size} does not fit model.depth={depth}: "
                f"expected a multiple of 2**{depth}={step}, e.g. {ok}"
            )
    for key in ("epochs", "batch_size"):
        if trainer[key] < 1:
            raise ConfigError(f"trainer.{key}={trainer[key]}: expected >= 1")
    if not str(cfg.optimized_metric).startswith(("val/", "test/")):
        raise ConfigError(
            f"optimized_metric={cfg.optimized_metric!r}: expected a final score such as "
            "val/dice, val/miou, val/loss or test/dice"
        )
    if cfg.tracking.server_timeout <= 0:
        raise ConfigError(f"tracking.server_timeout={cfg.tracking.server_timeout}: expected > 0")
    if not trainer.monitor.startswith("val/"):
        raise ConfigError(
            f"trainer.monitor={trainer.monitor!r}: expected a validation metric such as "
            "val/dice, val/miou, val/pixel_accuracy or val/loss"
        )


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


def metric_direction(metric: str) -> str:
    """``minimize`` for a loss (``val/loss``), ``maximize`` for a score (``val/dice``)."""
    return "minimize" if str(metric).rsplit("/", 1)[-1].endswith("loss") else "maximize"


def option_value(option: Any) -> str:
    """The string of a config value that may be an Enum member (OmegaConf returns those)."""
    return str(getattr(option, "value", option))


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolved plain-dict copy of a config (enums as their names)."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[return-value]
