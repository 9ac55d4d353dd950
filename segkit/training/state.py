"""Resuming an unfinished run in its output directory (imports nothing heavy).

A run keeps its state under ``<output_dir>/.segkit/``:

- ``run.json``: the MLflow run id and store, the run's status and its flattened config, so that
  rerunning the same command reopens the same MLflow run and refuses a changed config;
- ``history.json``: every finished epoch's metrics, written before the epoch's backup, so that a
  resumed run can re-log what a killed one never sent and knows the best score so far;
and ``<output_dir>/.segkit.lock`` is held (``flock``) while a process trains there; the kernel
drops it when the process dies, even by SIGKILL.

The backup (``<output_dir>/backup/``, see ``segkit.training.checkpoints``) is where training
resumes from.
``plan`` decides, without changing anything, whether a run starts fresh, resumes or is refused;
``Plan.apply`` then moves a superseded run's files aside (``resume=false``): nothing is deleted.
Every file here is written atomically (``segkit.core.atomic``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segkit.core.atomic import write_json
from segkit.core.errors import ConfigError
from segkit.core.paths import STATE_DIR, backup_dir, best_checkpoint, state_dir

POSITION_FILE = "position.json"
# Keras' own BackupAndRestore files: a backup written by segkit before it kept its own.
KERAS_WEIGHTS, KERAS_METADATA = "latest.weights.h5", "training_metadata.json"
# Settings that may differ when a run is resumed: they change how it is shown, not what it
# computes.
MAY_CHANGE = (
    "resume",
    "cache_dir",
    "trainer.verbose",
    "progress",
    "dataset.validate",
    "tracking.server_timeout",
    "tracking.parent_run_id",  # a sweep job rerun under a new sweep
)


def run_file(output_dir: Path) -> Path:
    """``run.json``: MLflow run id, store, status and config of the run in ``output_dir``."""
    return state_dir(output_dir) / "run.json"


def journal_file(output_dir: Path) -> Path:
    """``history.json``: the metrics of every finished epoch."""
    return state_dir(output_dir) / "history.json"


def read_json(path: Path) -> Any:
    """The JSON in ``path``; None when there is no file.

    Raises:
        ConfigError: the file is not JSON (segkit writes atomically, so someone else cut it).
    """
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"{path} is unreadable ({error}); move the output directory's .segkit/ and "
            "backup/ folders away to start afresh"
        ) from None


@dataclass(frozen=True)
class Position:
    """Where a backup stands: ``batch`` batches of epoch ``epoch`` done (0 = epoch boundary)."""

    epoch: int
    batch: int
    weights: Path


def backup_position(backup: Path) -> Position | None:
    """The position of the backup in folder ``backup``; None when there is none."""
    meta = read_json(backup / POSITION_FILE)
    if meta is not None:
        return Position(int(meta["epoch"]), int(meta["batch"]), backup / meta["weights"])
    legacy = read_json(backup / KERAS_METADATA)
    if legacy is not None and (backup / KERAS_WEIGHTS).exists():
        return Position(int(legacy["epoch"]), 0, backup / KERAS_WEIGHTS)
    return None


def check_weights_file(path: Path) -> None:
    """Raise a one-line ``ConfigError`` when a backup's weights file is missing or cut short."""
    import h5py  # small next to TensorFlow; only a resumed run gets here

    try:
        with h5py.File(path, "r") as f:
            f.visit(lambda name: None)  # reads every group header, not only the superblock
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"backup {path} is unreadable ({' '.join(str(error).split())[:200]}); rerun with "
            "resume=false to start afresh (the unreadable backup is moved aside, not deleted)"
        ) from None


@dataclass
class Plan:
    """What a run does with its output directory: start fresh or resume, and what it moves."""

    output_dir: Path
    resume: Position | None = None
    # MLflow run to reopen (from run.json); None starts a new one.
    run_id: str | None = None
    # The metrics of the epochs before ``resume.epoch``.
    history: dict[str, list[float]] = field(default_factory=dict)
    # Files of an earlier, unfinished run that a fresh start moves under superseded/.
    move_aside: list[Path] = field(default_factory=list)
    superseded_run_id: str | None = None

    def apply(self) -> Path | None:
        """Move a superseded run's files aside; returns the folder they went to (or None)."""
        present = [p for p in self.move_aside if p.exists()]
        if not present:
            return None
        target = self.output_dir / "superseded" / time.strftime("%Y%m%d-%H%M%S")
        while target.exists():
            target = target.with_name(target.name + "+")
        target.mkdir(parents=True)
        for path in present:
            os.replace(path, target / path.name)
        return target


def plan(output_dir: Path, config: Mapping[str, str], resume: bool, is_chief: bool = True) -> Plan:
    """Decide how a run uses ``output_dir``; changes nothing on disk.

    Args:
        output_dir: this process's folder (a worker's own folder under multi_worker).
        config: the run's flattened config (``segkit.tracking.tracker.flatten``).
        resume: the ``resume`` setting: False starts fresh, moving an unfinished run aside.
        is_chief: whether this process owns the best checkpoint and the MLflow run.

    Raises:
        ConfigError: the folder holds a finished run, or an unfinished one whose config
            differs, or a backup that cannot be read.
    """
    state = read_json(run_file(output_dir)) or {}
    best = best_checkpoint(output_dir)
    backup = backup_dir(output_dir)
    position = backup_position(backup)
    finished = state.get("status") == "FINISHED" or (
        is_chief and not state and best.exists() and position is None
    )
    if finished:
        raise ConfigError(
            f"output_dir={output_dir} already holds a finished run"
            f"{' (' + str(best) + ')' if best.exists() else ''}; choose a new output_dir to "
            "train again"
        )
    ours = [state_dir(output_dir), backup, best.parent]
    if not resume or position is None:
        # Nothing to resume from (or a fresh start asked for): earlier state goes aside.
        return Plan(output_dir, move_aside=ours, superseded_run_id=state.get("run_id"))
    changed = sorted(
        key
        for key in set(config) | set(state.get("config", {}))
        if config.get(key) != state.get("config", {}).get(key) and not _may_change(key)
    )
    if state and changed:
        shown = ", ".join(
            f"{k}={state.get('config', {}).get(k)}->{config.get(k)}" for k in changed[:5]
        )
        raise ConfigError(
            f"output_dir={output_dir} holds an unfinished run with other settings ({shown}); "
            "rerun it unchanged to resume, or add resume=false to start afresh (its files are "
            "moved aside)"
        )
    check_weights_file(position.weights)
    journal = read_json(journal_file(output_dir)) or {}
    history = {k: list(v)[: position.epoch] for k, v in journal.items()}
    return Plan(output_dir, resume=position, run_id=state.get("run_id"), history=history)


def _may_change(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in MAY_CHANGE)


def save_state(output_dir: Path, **values: Any) -> None:
    """Update ``run.json`` with ``values`` (atomically)."""
    state = read_json(run_file(output_dir)) or {}
    state.update(values)
    write_json(run_file(output_dir), state)


@contextlib.contextmanager
def lock(output_dir: Path) -> Iterator[None]:
    """Hold ``output_dir``'s lock while training: a second process there is refused.

    Raises:
        ConfigError: another process holds it.
    """
    # Next to .segkit/, not in it: a fresh start moves .segkit/ aside while holding the lock.
    path = output_dir / f"{STATE_DIR}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise ConfigError(
                f"output_dir={output_dir} is in use by another segkit process (pid {holder}); "
                "wait for it or choose another output_dir"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
