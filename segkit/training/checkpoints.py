"""Checkpoints a crash cannot corrupt: the best model and the backup a killed run resumes from.

- ``AtomicModelCheckpoint``: Keras' ModelCheckpoint, written to a temporary name and renamed, and
  never from a NaN score;
- ``Backup``: Keras' BackupAndRestore with its state written atomically (a weights file named by
  its position, then ``position.json`` naming it: the commit), never from a diverged model, at
  every epoch end and optionally every ``save_freq`` steps, and kept when fit ends (the run
  deletes it once it is FINISHED).

Resuming mid-epoch is exact: ``segkit.training.fit.fit_in_phases`` first finishes the interrupted
epoch on the batches it had left (only that epoch's train/ metrics cover fewer batches).
"""

from __future__ import annotations

import errno
import math
import shutil
from pathlib import Path

import keras

from segkit.core.atomic import replacing, write_json
from segkit.core.naming import logged_name
from segkit.training import state

# Room a weights file needs besides its values: HDF5's per-variable records, a zip's index.
PER_VARIABLE_BYTES = 4 << 10
MARGIN_BYTES = 256 << 10


def ensure_space(folder: Path, model: keras.Model) -> None:
    """Raise ``OSError(ENOSPC)`` before a model file is written to a disk without room for it.

    HDF5 fails half-way through such a write in C, and h5py then crashes the process (a
    segmentation fault) instead of raising; checking first turns a full disk into the one-line
    error ``segkit.training.failures.disk_full`` gives. The estimate errs large: every variable
    and optimizer slot at 4 bytes a value, twice, plus HDF5's overhead.
    """
    optimizer = getattr(model, "optimizer", None)
    variables = [*model.weights, *(optimizer.variables if optimizer is not None else [])]
    values = sum(math.prod(v.shape) for v in variables)
    needed = 2 * 4 * values + PER_VARIABLE_BYTES * len(variables) + MARGIN_BYTES
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OSError(
            errno.ENOSPC,
            f"No space left on device ({free >> 10} KiB free, a checkpoint needs about "
            f"{needed >> 10} KiB)",
            str(folder),
        )


def _finite(value) -> bool:
    return value is None or math.isfinite(float(value))


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that writes ``<name>.tmp.keras`` and renames it over the checkpoint.

    A crash mid-write leaves the previous best model intact; an epoch with a NaN score or a NaN
    training loss never counts as best.
    """

    def _save_model(self, epoch, batch, logs):
        logs = logs or {}
        # NaN weights can still score a finite Dice (every prediction background).
        if not (_finite(logs.get(self.monitor)) and _finite(logs.get("loss"))):
            return
        path = Path(self._get_file_path(epoch, batch, logs))
        if not self._should_save_model(epoch, batch, logs, str(path)):
            return
        ensure_space(path.parent, self.model)
        with replacing(path) as tmp:  # Keras picks the format from the suffix, which tmp keeps
            if self.save_weights_only:
                self.model.save_weights(tmp, overwrite=True)
            else:
                self.model.save(tmp, overwrite=True)


class Backup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore whose state is consistent after a crash at any point.

    Each save writes ``epoch<E>-batch<B>.weights.h5`` (weights and optimizer state) under a
    temporary name, renames it, then replaces ``position.json`` naming it: until that last rename
    the previous backup is the valid one. Older weights files are removed after it.

    Args:
        backup_dir: the folder (one per worker).
        save_freq: also save every this many steps (None: at epoch ends only).
    """

    def __init__(self, backup_dir: str | Path, save_freq: int | None = None):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=False)
        self.every = save_freq
        self.folder = Path(backup_dir)
        # Batches of the current epoch trained before this fit (a resumed partial epoch).
        self.batch_offset = 0
        self.diverged = False
        self._epoch = 0
        self._done = 0
        self._since = 0

    def position(self) -> state.Position | None:
        """Where the backup on disk stands, or None."""
        return state.backup_position(self.folder)

    def _load_model(self):
        position = self.position()
        if position is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(position.weights)
        self.model._initial_epoch = position.epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._done, self._since = epoch, self.batch_offset, 0

    def on_train_batch_end(self, batch, logs=None):
        self._done += 1
        if not _finite((logs or {}).get("loss")):
            self.diverged = True
            return
        self._since += 1
        if self.every and self._since >= self.every and not self.epoch_complete():
            self.save_now()

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged or not _finite((logs or {}).get("loss")):
            self.diverged = True  # the weights are not finite: keep the last good backup
            return
        self._save(epoch + 1, 0)

    def on_train_end(self, logs=None):
        """Keep the backup: the run deletes it once it is FINISHED (evaluation included)."""

    def epoch_complete(self) -> bool:
        """Whether every batch of the current epoch has been trained."""
        return self._done >= self.batch_offset + int(self.params.get("steps") or 0)

    def save_now(self) -> None:
        """Back up the training state as it is now, mid-epoch (unless it diverged)."""
        if not self.diverged:
            self._save(self._epoch, self._done)
        self._since = 0

    def _save(self, epoch: int, batch: int) -> None:
        name = f"epoch{epoch:04d}-batch{batch:05d}.weights.h5"
        ensure_space(self.folder, self.model)
        with replacing(self.folder / name) as tmp:
            self.model.save_weights(tmp, overwrite=True)
        write_json(
            self.folder / state.POSITION_FILE, {"epoch": epoch, "batch": batch, "weights": name}
        )
        for old in self.folder.glob("*.weights.h5"):
            if old.name != name:
                old.unlink()


def restore_monitors(callbacks: list, history: dict[str, list[float]]) -> None:
    """Give a resumed run's best-checkpoint callback the best score of the epochs before, so
    that a worse epoch after resuming does not replace the best model."""
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.ModelCheckpoint) and callback.save_best_only:
            values = [v for v in history.get(logged_name(callback.monitor), []) if math.isfinite(v)]
            if values:
                callback.best = max(values) if callback.mode == "max" else min(values)
