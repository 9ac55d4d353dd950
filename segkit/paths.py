"""Where a run's files go inside its output directory (one place, no heavy imports)."""

from __future__ import annotations

from pathlib import Path


def best_checkpoint(output_dir: Path) -> Path:
    """The best model of a run, as a ``.keras`` file."""
    return output_dir / "checkpoints" / "best.keras"


def backup_dir(output_dir: Path) -> Path:
    """The backup a killed run resumes from (``segkit.checkpoints.Backup``); deleted when the run
    is FINISHED. Whether a folder holds a finished run is ``segkit.resume.plan``'s business."""
    return output_dir / "backup"
