"""Where segkit's own files go inside a run's (or a sweep's) output folder.

Training resumes from them (``segkit.training.state``), evaluation finds a run's config and splits
beside its checkpoint, and a sweep keeps its parent run's record in the same ``.segkit/`` folder.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from segkit.core.errors import ConfigError

# segkit's own state inside an output folder (a run's or a sweep's).
STATE_DIR = ".segkit"
# A run's resolved config and its split id lists, in its output folder and as MLflow artifacts.
CONFIG_FILE = "config.yaml"
SPLITS_DIR = "splits"
# The artifact folder a run logs its best checkpoint (checkpoints/best.keras) into.
MODEL_ARTIFACT_DIR = "model"


def state_dir(output_dir: Path) -> Path:
    """Where segkit keeps a run's (or a sweep's) own state inside its output folder."""
    return output_dir / STATE_DIR


def best_checkpoint(output_dir: Path) -> Path:
    """The best model of a run, as a ``.keras`` file."""
    return output_dir / "checkpoints" / "best.keras"


def backup_dir(output_dir: Path) -> Path:
    """The backup a killed run resumes from (``segkit.training.checkpoints.Backup``); deleted
    when the run is FINISHED. Whether a folder holds a finished run is
    ``segkit.training.state.plan``'s business."""
    return output_dir / "backup"


def run_folder_of(checkpoint: Path) -> Path:
    """The output folder of a run whose best checkpoint is ``checkpoint``
    (``<output_dir>/checkpoints/best.keras``)."""
    return checkpoint.parent.parent


def check_writable_folder(folder: Path, key: str) -> None:
    """Create ``folder`` if needed and check a file can be written in it, so that a read-only
    or full file system stops a command with one line before it has done anything.

    Raises:
        ConfigError: naming ``key`` and the folder: a file there, or the system's reason.
    """
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{key}={folder}: is a file; expected a folder")
    probe = folder / f".write-test-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "xb") as handle:
            handle.write(b"x")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise ConfigError(
            f"{key}={folder}: cannot write there ({error.strerror or error}); give a folder "
            "on a writable disk with free space"
        ) from None
    finally:
        probe.unlink(missing_ok=True)
