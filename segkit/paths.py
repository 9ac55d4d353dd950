"""Where a run's files go inside its output directory (one place, no heavy imports)."""

from __future__ import annotations

from pathlib import Path


def best_checkpoint(output_dir: Path) -> Path:
    """The best model of a run, as a ``.keras`` file."""
    return output_dir / "checkpoints" / "best.keras"


def backup_dir(output_dir: Path) -> Path:
    """BackupAndRestore's state while a run is unfinished (deleted when it finishes)."""
    return output_dir / "backup"
