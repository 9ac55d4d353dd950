"""Trainer schema: epochs, batches, precision, distribution, optimizer, schedule, loss, monitor."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from omegaconf import DictConfig

from segkit.config.loss import LossOptions
from segkit.config.ranges import ranged
from segkit.config.values import option_value
from segkit.core.naming import metric_direction


class Precision(StrEnum):
    """Keras dtype policies segkit can train under; ``auto`` picks one for the hardware."""

    auto = "auto"
    float32 = "float32"
    mixed_float16 = "mixed_float16"
    mixed_bfloat16 = "mixed_bfloat16"


class Strategy(StrEnum):
    """tf.distribute strategies in ``segkit.training.strategy.STRATEGIES`` (a test checks)."""

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
    """Optimizers in ``segkit.training.optim.OPTIMIZERS`` (a test checks they match)."""

    adam = "adam"
    adamw = "adamw"
    sgd = "sgd"


class ScheduleName(StrEnum):
    """Learning-rate schedules in ``segkit.training.optim.SCHEDULES`` (a test checks)."""

    constant = "constant"
    cosine = "cosine"


class MonitorMode(StrEnum):
    """Whether a larger or a smaller monitored value is better (auto: min for a loss)."""

    auto = "auto"
    max = "max"
    min = "min"


@dataclass
class OptimizerConfig:
    """Optimizer by Keras name (adam, adamw, sgd) with its learning rate and weight decay."""

    name: OptimizerName = OptimizerName.adam
    lr: float = ranged(1e-3, gt=0)
    weight_decay: float = ranged(0.0, ge=0)
    momentum: float = ranged(0.9, ge=0, le=1)


@dataclass
class ScheduleConfig:
    """Learning-rate schedule: constant, or cosine decay with optional linear warm-up."""

    name: ScheduleName = ScheduleName.constant
    warmup_epochs: int = ranged(0, ge=0)
    min_lr_ratio: float = ranged(0.0, ge=0, le=1)


@dataclass
class EarlyStoppingConfig:
    """Stop when the monitored metric has not improved for ``patience`` epochs (0 = off)."""

    patience: int = ranged(0, ge=0)
    min_delta: float = ranged(0.0, ge=0)


@dataclass
class MultiWorkerConfig:
    """How ``strategy: multi_worker`` finds its cluster (ignored by the other strategies)."""

    cluster: ClusterSource = ClusterSource.auto
    communication: Communication = Communication.auto
    # SlurmClusterResolver: port of a node's first task (the next tasks count up from it) and GPUs
    # per node (null: ask nvidia-smi; 0: CPU-only nodes, CUDA_VISIBLE_DEVICES is left alone).
    port_base: int = ranged(8888, ge=1, le=65535)
    gpus_per_node: int | None = ranged(None, ge=0)
    # BatchNormalization takes its batch statistics over all workers: without it each worker's
    # moving mean and variance drift apart and the workers end with different weights.
    sync_batch_norm: bool = True


@dataclass
class TrainerConfig:
    """Everything about how the model is fitted."""

    epochs: int = ranged(20, ge=1)
    batch_size: int = ranged(8, ge=1)
    precision: Precision = Precision.auto
    strategy: Strategy = Strategy.default
    # Split the host CPU into this many logical devices before TensorFlow starts (0 = leave it);
    # lets `strategy=mirrored` run real replicas on a machine without GPUs.
    logical_cpu_devices: int = ranged(0, ge=0)
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
    limit_train_batches: int | None = ranged(None, ge=1, note="or null for the whole split")
    limit_val_batches: int | None = ranged(None, ge=1, note="or null for the whole split")
    # Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch.
    verbose: int = ranged(1, ge=0, le=2)
    # Bit-identical runs for a seed: TensorFlow's op determinism on top of the seeding every run
    # does (Python, NumPy, Keras, and the augmentation per element). Slower on GPUs.
    deterministic: bool = False
    # Back up the training state every this many steps as well as at every epoch end, so that a
    # killed run loses less (null: epoch ends only).
    backup_every_steps: int | None = ranged(None, ge=1)
    multi_worker: MultiWorkerConfig = field(default_factory=MultiWorkerConfig)


def monitor_mode(trainer: DictConfig) -> str:
    """``max`` or ``min`` for ``trainer.monitor``: as configured, or (auto) min for a loss."""
    mode = option_value(trainer.monitor_mode)
    if mode != MonitorMode.auto.value:
        return mode
    return "min" if metric_direction(str(trainer.monitor)) == "minimize" else "max"
