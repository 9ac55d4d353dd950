"""Compatibility patch: Keras 3 ``model.fit`` under tf.distribute.MultiWorkerMirroredStrategy.

Upstream (keras-team/keras#20585, tensorflow/tensorflow#72388), two functions of Keras' TensorFlow
trainer fail as soon as the strategy spans more than one worker:

- ``TensorFlowTrainer._maybe_symbolic_build`` reduces the first distributed batch with
  ``strategy.reduce("MEAN", ...)``, which cannot convert the ``PerReplica`` batch of a multi-worker
  strategy ("Attempt to convert a value (PerReplica...)"). It only needs a batch of the right
  structure and per-replica shape to build the model, so this process's first local replica is
  used instead.
- ``reduce_per_replica`` reduces the logs of multi-worker runs with ``strategy.reduce("MEAN", v,
  axis=0)``, which fails on scalar metric values ("Invalid reduction dimension 0 for input with 0
  dimensions"). The mean across replicas is ``axis=None``.

Each replacement handles only the multi-worker case and calls the original function otherwise;
nothing else is changed. ``apply`` patches only the Keras versions known to be broken.
"""

from __future__ import annotations

import logging

import keras
import tensorflow as tf
from keras import tree

log = logging.getLogger(__name__)

# Broken since Keras 3.0 (TensorFlow 2.16); checked on 3.15.1 with two workers on loopback.
# A newer Keras is left alone: re-check it with tests/test_multi_worker.py and widen this range.
BROKEN_VERSIONS = ((3, 0), (3, 16))
# Marks the patched functions, so that applying twice patches once.
MARKER = "_segkit_multi_worker_patch"


def needed(version: str) -> bool:
    """Whether the Keras ``version`` (e.g. ``"3.15.1"``) has the upstream bug."""
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    low, high = BROKEN_VERSIONS
    return low <= parts < high


def apply() -> bool:
    """Patch Keras' TensorFlow trainer if this Keras version needs it; returns whether it did."""
    if not needed(keras.__version__):
        log.info("Keras %s: multi-worker compatibility patch not needed", keras.__version__)
        return False
    # Keras' private module, imported only where the patch applies: a later Keras that moved it
    # still runs segkit.
    from keras.src.backend.tensorflow import trainer as tf_trainer

    cls = tf_trainer.TensorFlowTrainer
    if not getattr(cls._maybe_symbolic_build, MARKER, False):
        cls._maybe_symbolic_build = _patched_symbolic_build(cls._maybe_symbolic_build, tf_trainer)
        tf_trainer.reduce_per_replica = _patched_reduce(tf_trainer.reduce_per_replica, tf_trainer)
        log.info(
            "Keras %s: applied segkit's multi-worker compatibility patch (keras#20585)",
            keras.__version__,
        )
    return True


def _patched_symbolic_build(original, tf_trainer):
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if (
            iterator is None
            or strategy is None
            or not tf_trainer._collective_all_reduce_multi_worker(strategy)
        ):
            return original(self, iterator=iterator, data_batch=data_batch)

        def local(value):
            if isinstance(value, tf.distribute.DistributedValues):
                return strategy.experimental_local_results(value)[0]
            return value

        for _, _, batches in iterator:
            data_batch = tree.map_structure(local, next(batches))
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    setattr(_maybe_symbolic_build, MARKER, True)
    return _maybe_symbolic_build


def _patched_reduce(original, tf_trainer):
    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(
            strategy
        ):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    setattr(reduce_per_replica, MARKER, True)
    return reduce_per_replica
