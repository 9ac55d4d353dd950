"""The training loop: compile, then ``model.fit`` over the run's phases, resuming where a backup
stands.

``model.fine_tune_at`` splits ``trainer.epochs`` in two phases: a frozen encoder first, then the
whole network at a lower learning rate. The second unfreezes the nested ``encoder`` model and
compiles a new optimizer (Keras only trains the variables that were trainable when it compiled),
whose schedule continues where the first phase's left off, scaled by
``model.fine_tune_lr_factor``. Epochs are numbered continuously, so the per-epoch metrics, the
best checkpoint and the backup span both phases. A run killed mid-epoch first finishes that
epoch on the batches it had left.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import keras
import tensorflow as tf
from omegaconf import DictConfig

from segkit.models.blocks import ENCODER
from segkit.training.checkpoints import Backup
from segkit.training.losses import build_loss
from segkit.training.metrics import ConfusionMatrix, segmentation_metrics
from segkit.training.optim import build_optimizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase:
    """Epochs ``start`` to ``end - 1``; a phase that does not start at 0 unfreezes the encoder
    and trains with the learning rate times ``lr_scale``."""

    start: int
    end: int
    lr_scale: float = 1.0


def training_phases(model: DictConfig, epochs: int) -> list[Phase]:
    """One phase, or two when ``model.fine_tune_at`` unfreezes a frozen encoder mid-run."""
    at = model.get("fine_tune_at")
    if at is None:
        return [Phase(0, epochs)]
    return [Phase(0, int(at)), Phase(int(at), epochs, float(model.fine_tune_lr_factor))]


def unfreeze_encoder(model: keras.Model) -> None:
    """Make the nested ``encoder`` model trainable, except its batch norms.

    Batch norms stay frozen, in inference mode with their pretrained statistics (Keras'
    fine-tuning advice): small batches would otherwise overwrite the statistics and unsettle
    everything the decoder learned on top of them.
    """
    encoder = model.get_layer(ENCODER)
    encoder.trainable = True
    for layer in _sublayers(encoder):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def _sublayers(layer: keras.layers.Layer):
    for child in getattr(layer, "layers", []):
        yield child
        yield from _sublayers(child)


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


def steps_per_epoch(num_samples: int, batch_size: int, limit: int | None) -> int:
    """Optimizer steps in one epoch (the last incomplete batch is dropped when training)."""
    steps = max(1, num_samples // batch_size)
    return min(steps, limit) if limit else steps


def fit_in_phases(
    model: keras.Model,
    confusion: ConfusionMatrix,
    *,
    strategy: tf.distribute.Strategy,
    cfg: DictConfig,
    steps_per_epoch: int,
    callbacks: list[keras.callbacks.Callback],
    train_data: Callable[..., tf.data.Dataset],
    after_phase: Callable[[], None],
    **fit_kwargs: Any,
) -> ConfusionMatrix:
    """``model.fit`` over the phases of ``training_phases``; returns the confusion metric of the
    last compile.

    Args:
        model: compiled for the first phase, inside ``strategy.scope()``.
        confusion: the confusion metric of that compile.
        strategy: the tf.distribute strategy the model was built under.
        cfg: the composed run config.
        steps_per_epoch: optimizer steps per epoch.
        callbacks: the same instances serve every phase, so the best score carries over.
        train_data: the training stream from a given epoch on, optionally without its first
            batches (``segkit.app.run_steps.train_dataset``), so that a later phase or a resumed
            run reads the epochs it trains, not earlier ones again.
        after_phase: called after each phase (raises to stop, e.g. on a diverged loss).
        fit_kwargs: passed to every ``model.fit`` (validation data, verbosity).
    """
    backup = next((c for c in callbacks if isinstance(c, Backup)), None)
    # Where a killed run's backup stands: its epoch (and batches done in it) is where the
    # stream has to start so that a resumed run reads exactly what an uninterrupted one would.
    # (The run has logged the resume already.)
    position = backup.position() if backup is not None else None
    fit = partial(model.fit, callbacks=callbacks, **fit_kwargs)
    for phase in training_phases(cfg.model, int(cfg.trainer.epochs)):
        if phase.start:
            confusion = _start_fine_tuning(model, strategy, cfg, steps_per_epoch, phase)
        with warnings.catch_warnings():
            # The backup restored at the start of a phase may hold the other phase's optimizer,
            # which trains other variables; Keras skips it with a warning that is expected here.
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
            first = max(phase.start, position.epoch if position is not None else 0)
            if position is not None and position.batch and first == position.epoch < phase.end:
                _finish_partial_epoch(fit, train_data, backup, position, steps_per_epoch)
                first, position = first + 1, None
                if model.stop_training:  # the partial epoch diverged or stopped
                    after_phase()
                    continue
            # A phase the backup is past runs no epoch: its fit only restores the backup.
            fit(
                train_data(min(first, phase.end - 1)),
                initial_epoch=phase.start,
                epochs=phase.end,
                steps_per_epoch=steps_per_epoch,
            )
        after_phase()
    return confusion


def _start_fine_tuning(model, strategy, cfg: DictConfig, steps_per_epoch: int, phase: Phase):
    """Unfreeze the encoder and compile the later phase's optimizer; its confusion metric."""
    with strategy.scope():
        unfreeze_encoder(model)
        confusion = compile_model(
            model, cfg.trainer, cfg.dataset, steps_per_epoch, phase.lr_scale, phase.start
        )
    log.info(
        "epoch %d: encoder unfrozen, %d trainable parameters, learning rate x %g",
        phase.start + 1,
        sum(math.prod(w.shape) for w in model.trainable_weights),
        phase.lr_scale,
    )
    return confusion


def _finish_partial_epoch(fit, train_data, backup: Backup, position, steps_per_epoch: int) -> None:
    """Train the interrupted epoch on the batches it had left; the backup restores the weights
    and optimizer state of the step it was taken at."""
    backup.batch_offset = position.batch
    fit(
        train_data(position.epoch, position.batch),
        initial_epoch=position.epoch,
        epochs=position.epoch + 1,
        steps_per_epoch=steps_per_epoch - position.batch,
    )
    backup.batch_offset = 0
