"""Where a model trains: the tf.distribute strategy, devices, determinism, and what replicas share.

Distribution is a config value (``trainer.strategy``): ``STRATEGIES`` maps it to a builder. The
model is built and compiled inside ``strategy.scope()`` (``segkit.app.run``); under several
workers every BatchNormalization takes its statistics over all of them
(``synchronize_batch_norm``), and each worker keeps its share of every batch (``shard_by_element``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import keras
import tensorflow as tf
from omegaconf import DictConfig

from segkit.config.values import option_value
from segkit.core.errors import ConfigError, lookup
from segkit.training import compat_multi_worker
from segkit.training.cluster import ClusterRole, make_resolver


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
    """The tf.distribute strategy named by ``trainer.strategy`` (see ``STRATEGIES``)."""
    name = option_value(trainer.strategy)
    return lookup(STRATEGIES, name, "trainer.strategy")(trainer, role)


def _default(trainer: DictConfig, role: ClusterRole) -> tf.distribute.Strategy:
    """The default strategy: one device, no replication."""
    return tf.distribute.get_strategy()


def _mirrored(trainer: DictConfig, role: ClusterRole) -> tf.distribute.Strategy:
    """Replicas on all GPUs, or on all logical CPU devices when there is no GPU."""
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


def _multi_worker(trainer: DictConfig, role: ClusterRole) -> tf.distribute.Strategy:
    """The processes of the cluster ``role`` was resolved from (TF_CONFIG or Slurm), each
    replicating over its own devices; Keras' trainer is patched for it where needed."""
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


# trainer.strategy -> builder (trainer node, this process's cluster role) -> strategy.
STRATEGIES: dict[str, Callable[[DictConfig, ClusterRole], tf.distribute.Strategy]] = {
    "default": _default,
    "mirrored": _mirrored,
    "multi_worker": _multi_worker,
}


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
