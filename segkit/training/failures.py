"""Why a training run failed, as the one-line errors a user can act on."""

from __future__ import annotations

import errno
import math
from pathlib import Path

from segkit.core.errors import DiskFull, OutOfMemory, TrainingDiverged


def check_finite(losses: list[float]) -> None:
    """Raise ``TrainingDiverged`` if a training loss was NaN or infinite (TerminateOnNaN)."""
    for epoch, loss in enumerate(losses):
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"training diverged in epoch {epoch + 1} (train/loss={loss}); the best "
                "checkpoint and the backup of the last good epoch are kept; try a lower "
                "trainer.optimizer.lr",
                epoch=epoch + 1,
            )


def out_of_memory(error: BaseException, batch_size: int, image_size: int) -> OutOfMemory | None:
    """A one-line ``OutOfMemory`` when ``error`` is the accelerator or the host running out of
    memory (also when it surfaced from a data-loading thread or a oneDNN kernel); else None."""
    import tensorflow as tf  # lazy: only called once training has imported it

    text = str(error)
    if isinstance(error, tf.errors.ResourceExhaustedError):
        where = "accelerator memory" if "GPU" in text else "memory"
    elif isinstance(error, MemoryError) or "MemoryError" in text:
        where = "host memory"
    elif isinstance(error, tf.errors.OpError) and "mkl" in text and "Status: 1," in text:
        # oneDNN (TensorFlow's CPU kernels) reports its dnnl_out_of_memory status (1) as an
        # op that "could not create a primitive".
        where = "host memory"
    else:
        return None
    return OutOfMemory(
        f"out of {where} with trainer.batch_size={batch_size} and dataset.image_size="
        f"{image_size}: try a smaller trainer.batch_size or dataset.image_size (or a smaller model)"
    )


# What a full or read-only disk looks like: the OSError's errno, or TensorFlow's text of it.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
DISK_TEXTS = ("No space left on device", "Disk quota exceeded", "Read-only file system")


def disk_full(error: BaseException, output_dir: Path) -> DiskFull | None:
    """A one-line ``DiskFull`` when ``error`` is a disk that filled up (or became read-only)
    under the run (the best checkpoint is written atomically, so the last one is intact)."""
    reason = next((t for t in DISK_TEXTS if t in str(error)), None)
    if isinstance(error, OSError) and error.errno in DISK_ERRNOS:
        reason = error.strerror
    if reason is None:
        return None
    where = f" in {error.filename}" if getattr(error, "filename", None) else ""
    return DiskFull(
        f"{reason}{where} (output_dir={output_dir}): checkpoints written before are intact; "
        "free some space and run the same command again to resume"
    )
