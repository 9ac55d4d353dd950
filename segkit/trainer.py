"""How a model is fitted: precision policy, tf.distribute strategy, optimizer, losses, callbacks.

Precision and distribution are config values: the dtype policy is set before the model is built
and restored afterwards, and the model is built and compiled inside ``strategy.scope()``.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Iterator
from pathlib import Path

import keras
import tensorflow as tf
from omegaconf import DictConfig

from segkit.checkpoints import AtomicModelCheckpoint, Backup, StopOnSignal
from segkit.cluster import ClusterRole
from segkit.config import monitor_mode, option_value, to_container
from segkit.errors import ConfigError
from segkit.interrupts import StopRequest
from segkit.loss_schemas import parse_loss
from segkit.losses import SegmentationLoss
from segkit.metrics import ConfusionMatrix, segmentation_metrics

# Keras log keys are `loss`, `dice`, `val_loss`, ...; segkit logs `train/loss`, `val/dice`, ...
KERAS_PREFIXES = {"val_": "val/"}


def logged_name(keras_key: str) -> str:
    """The name segkit logs for a Keras log key: ``val_dice`` -> ``val/dice``, ``loss`` ->
    ``train/loss``."""
    for prefix, replacement in KERAS_PREFIXES.items():
        if keras_key.startswith(prefix):
            return replacement + keras_key[len(prefix) :]
    if keras_key == "learning_rate":
        return "train/lr"
    return "train/" + keras_key


def keras_name(logged: str) -> str:
    """Inverse of ``logged_name`` for metrics: ``val/dice`` -> ``val_dice``."""
    split, _, metric = logged.partition("/")
    return metric if split == "train" else f"{split}_{metric}"


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Set Keras' global dtype policy for the duration of a run, then restore the previous one."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def set_op_determinism(enabled: bool) -> None:
    """Switch TensorFlow's op determinism on (``trainer.deterministic``) or back off.

    Set for every run, so that one deterministic run does not slow down the next run of the
    same process (a sweep, the tests). Every segkit tf.data map is already deterministic and
    seeded per element, as op determinism requires.
    """
    if enabled:
        tf.config.experimental.enable_op_determinism()
        return
    from tensorflow.python.framework import config as tf_config  # no public switch-off

    disable = getattr(tf_config, "disable_op_determinism", None)
    if disable is not None and tf_config.is_op_determinism_enabled():
        disable()


def configure_logical_cpus(count: int) -> None:
    """Split the first CPU into ``count`` logical devices (0 = leave the device list alone).

    Must run before TensorFlow initialises its devices; a process that already has exactly
    ``count`` logical CPUs passes.
    """
    if count <= 0:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have != count:
            raise ConfigError(
                f"trainer.logical_cpu_devices={count}: TensorFlow already started with {have} "
                "logical CPU devices in this process; set it before anything else runs"
            ) from None


def make_strategy(trainer: DictConfig, role: ClusterRole) -> tf.distribute.Strategy:
    """The tf.distribute strategy named by ``trainer.strategy``.

    ``mirrored`` replicates over all GPUs, or over all logical CPU devices when there is no GPU.
    ``multi_worker`` spans the processes of the cluster ``role`` was resolved from (TF_CONFIG or
    Slurm), each replicating over its own devices; Keras' trainer is patched for it where needed.
    """
    name = option_value(trainer.strategy)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy(devices=[d.name for d in gpus])
        # Every MirroredStrategy numbers its collective ops from the same keys, so a second one
        # in the process (a sweep's next job, a test) clashes with the first on CPUs; reducing
        # on one device needs no keys and costs nothing extra when the replicas share one CPU.
        cpus = tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(
            devices=[d.name for d in cpus], cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    if name == "multi_worker":
        from segkit import compat_multi_worker
        from segkit.cluster import make_resolver

        compat_multi_worker.apply()
        implementation = tf.distribute.experimental.CommunicationImplementation
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=getattr(
                implementation, option_value(trainer.multi_worker.communication).upper()
            )
        )
        return tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=make_resolver(trainer, role), communication_options=options
        )
    raise ConfigError(f"trainer.strategy={name!r}: expected default, mirrored or multi_worker")


def synchronize_batch_norm(model: keras.Model) -> int:
    """Make every BatchNormalization layer take its batch statistics across all replicas.

    Under a multi-worker strategy each worker otherwise updates its moving statistics from its own
    batches only, and the workers end with different weights. Returns the number of layers changed.
    """
    count = 0
    pending = list(model.layers)
    while pending:
        layer = pending.pop()
        pending.extend(getattr(layer, "layers", []))  # nested models (a pretrained encoder)
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True  # read when the layer is called, i.e. when fit traces it
            count += 1
    return count


def weights_digest(model: keras.Model) -> str:
    """SHA-256 of all weights, trainable or not: equal digests mean bit-identical models."""
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(weights.tobytes())
    return digest.hexdigest()


def shard_by_element(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Let a multi-worker strategy split the batches between workers element by element.

    The pipeline starts from a list of paths, which TensorFlow's file-based sharding cannot
    split; each worker reads the whole split and keeps its share of every batch.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


@keras.saving.register_keras_serializable(package="segkit")
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """``scale * schedule(step + offset)``: a schedule resumed by a new optimizer, scaled.

    A fine-tuning phase compiles a new optimizer, whose step count starts at 0; the offset keeps
    the schedule where the first phase left it.
    """

    def __init__(self, schedule, scale: float, offset: int):
        self.schedule, self.scale, self.offset = schedule, float(scale), int(offset)

    def __call__(self, step):
        return self.scale * self.schedule(step + self.offset)

    def get_config(self):
        return {
            "schedule": keras.optimizers.schedules.serialize(self.schedule),
            "scale": self.scale,
            "offset": self.offset,
        }

    @classmethod
    def from_config(cls, config):
        schedule = keras.optimizers.schedules.deserialize(config["schedule"])
        return cls(schedule, config["scale"], config["offset"])


def build_schedule(
    trainer: DictConfig, steps_per_epoch: int, scale: float = 1.0, start_epoch: int = 0
):
    """Learning rate per step: a float (constant) or a cosine decay with linear warm-up.

    ``scale`` and ``start_epoch`` serve a later training phase: the rate is ``scale`` times the
    schedule's, starting ``start_epoch`` epochs into it.
    """
    schedule = _base_schedule(trainer, steps_per_epoch)
    if isinstance(schedule, float):
        return schedule * scale
    if scale == 1.0 and start_epoch == 0:
        return schedule
    return ScaledSchedule(schedule, scale, start_epoch * steps_per_epoch)


def _base_schedule(trainer: DictConfig, steps_per_epoch: int):
    opt, sched = trainer.optimizer, trainer.schedule
    name = option_value(sched.name)
    if name == "constant":
        return float(opt.lr)
    total = max(1, steps_per_epoch * int(trainer.epochs))
    warmup = min(total - 1, steps_per_epoch * int(sched.warmup_epochs))
    if warmup > 0:
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=float(opt.lr) * 0.01,
            warmup_target=float(opt.lr),
            warmup_steps=warmup,
            decay_steps=total - warmup,
            alpha=float(sched.min_lr_ratio),
        )
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=float(opt.lr), decay_steps=total, alpha=float(sched.min_lr_ratio)
    )


def build_optimizer(
    trainer: DictConfig, steps_per_epoch: int, lr_scale: float = 1.0, start_epoch: int = 0
) -> keras.optimizers.Optimizer:
    """The optimizer of ``trainer.optimizer`` with the learning-rate schedule (see
    ``build_schedule`` for ``lr_scale`` and ``start_epoch``)."""
    opt = trainer.optimizer
    lr = build_schedule(trainer, steps_per_epoch, lr_scale, start_epoch)
    name = option_value(opt.name)
    decay = float(opt.weight_decay) or None
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr, weight_decay=decay)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=float(opt.weight_decay))
    if name == "sgd":
        return keras.optimizers.SGD(
            learning_rate=lr, momentum=float(opt.momentum), weight_decay=decay
        )
    raise ConfigError(f"trainer.optimizer.name={name!r}: expected adam, adamw or sgd")


def compile_model(
    model: keras.Model,
    trainer: DictConfig,
    dataset: DictConfig,
    steps_per_epoch: int,
    lr_scale: float = 1.0,
    start_epoch: int = 0,
) -> ConfusionMatrix:
    """Compile with the configured loss, optimizer and the confusion-matrix metrics.

    Keras wraps the optimizer in a LossScaleOptimizer itself under ``mixed_float16``.
    ``lr_scale`` and ``start_epoch`` compile a later training phase (see ``build_schedule``).

    Returns:
        The metric that holds the confusion matrix (per-class scores are read from it).
    """
    metrics = segmentation_metrics(int(dataset.num_classes), int(dataset.ignore_index))
    model.compile(
        optimizer=build_optimizer(trainer, steps_per_epoch, lr_scale, start_epoch),
        loss=build_loss(trainer, dataset),
        metrics=metrics,
    )
    return metrics[0]


def build_loss(trainer: DictConfig, dataset: DictConfig) -> SegmentationLoss:
    """The weighted sum of ``trainer.loss`` with its ``trainer.loss_options``."""
    return SegmentationLoss(
        parse_loss(trainer.loss),
        ignore_index=int(dataset.ignore_index),
        options=to_container(trainer.loss_options),
    )


class Throughput(keras.callbacks.Callback):
    """Adds ``images_per_second`` of the training batches (validation excluded) to epoch logs.

    Timed from the start of the epoch to the end of its last training batch; list it before the
    callbacks that log the epoch.
    """

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self._start = self._end = 0.0
        self._steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._steps = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self._end, self._steps = time.perf_counter(), self._steps + 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._steps and self._end > self._start:
            logs["images_per_second"] = self._steps * self.batch_size / (self._end - self._start)


class MetricsLogger(keras.callbacks.Callback):
    """Record each epoch's logs under segkit's names (``train/loss``, ``val/dice``) and send them
    to a tracker.

    It records the epoch (in ``history`` and the ``journal`` file) before the epoch's backup is
    written and logs it to the tracker after (its ``publisher`` callback, listed after the
    backup): a run killed in between re-logs the epoch from the journal when it resumes, and an
    epoch that is trained again after a resume was never logged. Either way each step is logged
    exactly once.
    """

    def __init__(
        self,
        tracker,
        journal: Path | None = None,
        history: dict[str, list[float]] | None = None,
    ):
        super().__init__()
        self.tracker = tracker
        self.journal = journal
        self.history: dict[str, list[float]] = history if history is not None else {}
        self._pending: tuple[int, dict[str, float]] | None = None
        self.publisher = keras.callbacks.LambdaCallback(on_epoch_end=self._publish)

    def on_epoch_end(self, epoch, logs=None):
        metrics = {logged_name(k): float(v) for k, v in (logs or {}).items()}
        # The rate the schedule reached at the end of the epoch (Keras does not log it).
        metrics.setdefault(
            "train/lr", float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        )
        for key, value in metrics.items():
            values = self.history.setdefault(key, [])
            del values[epoch:]  # an epoch trained again after a resume replaces its record
            values.append(value)
        if self.journal is not None:
            from segkit.resume import write_json

            write_json(self.journal, self.history)
        # A diverged epoch is not backed up, so a rerun trains it again: logging it now would
        # log its step twice. The run's failure tags name it.
        diverged = not math.isfinite(metrics.get("train/loss", 0.0))
        self._pending = None if diverged else (epoch, metrics)

    def _publish(self, epoch, logs=None):
        if self._pending is not None:
            step, metrics = self._pending
            self.tracker.log_metrics(metrics, step=step)
            self._pending = None


def build_callbacks(
    trainer: DictConfig,
    backup: Path,
    checkpoint: Path | None,
    recorder: MetricsLogger | None = None,
    stop: StopRequest | None = None,
) -> list[keras.callbacks.Callback]:
    """Throughput, NaN guard, metrics record, best-model checkpoint, optional early stopping,
    backup for resuming, metrics logging, stop on a signal, in that order.

    The order makes a crash between any two of them harmless: the best checkpoint of an epoch
    is written before its backup (a resumed run trains that epoch again), and the epoch's
    metrics are recorded before the backup and sent to MLflow after it (see ``MetricsLogger``).

    Args:
        trainer: the ``trainer`` config node.
        backup: the backup's folder; every worker of a multi-worker run has its own.
        checkpoint: where the best model goes; None on the workers that are not the chief.
        recorder: records and logs each epoch's metrics (None: not logged).
        stop: set by Ctrl-C / SIGTERM during fit; training then stops after a backup.
    """
    monitor = keras_name(str(trainer.monitor))
    mode = monitor_mode(trainer)
    callbacks: list[keras.callbacks.Callback] = [
        Throughput(int(trainer.batch_size)),
        keras.callbacks.TerminateOnNaN(),
    ]
    if recorder is not None:
        callbacks.append(recorder)
    if checkpoint is not None:
        callbacks.append(
            AtomicModelCheckpoint(str(checkpoint), monitor=monitor, mode=mode, save_best_only=True)
        )
    if trainer.early_stopping.patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                mode=mode,
                patience=int(trainer.early_stopping.patience),
                min_delta=float(trainer.early_stopping.min_delta),
            )
        )
    saver = Backup(backup, trainer.backup_every_steps)
    callbacks.append(saver)
    if recorder is not None:
        callbacks.append(recorder.publisher)
    if stop is not None:
        callbacks.append(StopOnSignal(stop, saver))
    return callbacks


def steps_per_epoch(num_samples: int, batch_size: int, limit: int | None) -> int:
    """Optimizer steps in one epoch (the last incomplete batch is dropped when training)."""
    steps = max(1, num_samples // batch_size)
    return min(steps, limit) if limit else steps
