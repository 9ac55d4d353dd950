"""The callbacks of a training run, in the order that makes a crash between any two harmless.

``Throughput`` adds training images per second to the epoch logs; ``MetricsLogger`` records each
epoch under segkit's metric names and sends it to the tracker; ``StopOnSignal`` stops at the next
step after Ctrl-C or SIGTERM, with a backup of it. ``build_callbacks`` puts them together with the
best checkpoint, early stopping and the backup (``segkit.training.checkpoints``).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras
from omegaconf import DictConfig

from segkit.config.trainer import monitor_mode
from segkit.core.atomic import write_json
from segkit.core.naming import keras_name, logged_name
from segkit.training.checkpoints import AtomicModelCheckpoint, Backup
from segkit.training.signals import StopRequest


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


class StopOnSignal(keras.callbacks.Callback):
    """Stop training at the next step after Ctrl-C or SIGTERM, with a backup of that step.

    List it after the ``Backup`` and the callbacks that log an epoch. A signal during the last
    step of an epoch lets the epoch finish (validation, best checkpoint, backup) first.
    """

    def __init__(self, request: StopRequest, backup: Backup):
        super().__init__()
        self.request, self.backup = request, backup

    def on_train_batch_end(self, batch, logs=None):
        if self.request.signum is not None and not self.backup.epoch_complete():
            self.backup.save_now()
            raise KeyboardInterrupt(f"signal {self.request.signum}")

    def on_epoch_end(self, epoch, logs=None):
        if self.request.signum is not None:
            raise KeyboardInterrupt(f"signal {self.request.signum}")


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
