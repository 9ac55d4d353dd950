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


def resolve_output_dir(configured: str | None) -> Path:
    """The configured output directory, or Hydra's job directory when it is null.

    Raises:
        ConfigError: it is null and no Hydra job is running.
    """
    from hydra.core.hydra_config import HydraConfig

    if configured is None:
        if not HydraConfig.initialized():
            raise ConfigError(
                "output_dir is null and there is no Hydra job directory: "
                "set output_dir when calling segkit from Python without Hydra"
            )
        configured = HydraConfig.get().runtime.output_dir
    return Path(str(configured)).expanduser().resolve()
