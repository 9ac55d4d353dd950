"""Where a run's files go inside its output directory (one place, no heavy imports)."""

from __future__ import annotations

from pathlib import Path

from segkit.errors import ConfigError


def best_checkpoint(output_dir: Path) -> Path:
    """The best model of a run, as a ``.keras`` file."""
    return output_dir / "checkpoints" / "best.keras"


def backup_dir(output_dir: Path) -> Path:
    """BackupAndRestore's state while a run is unfinished (deleted when it finishes)."""
    return output_dir / "backup"


def check_output_dir(output_dir: Path) -> None:
    """Refuse to write over a finished run's checkpoint (an unfinished one is resumed)."""
    best = best_checkpoint(output_dir)
    if best.exists() and not backup_dir(output_dir).exists():
        raise ConfigError(
            f"output_dir={output_dir} already holds a finished run ({best}); "
            "choose a new output_dir to train again"
        )
