"""What Hydra tells the running job: its folder, its overrides, and its place in a ``-m`` sweep.

Every function returns None (or raises, for the output folder) when the code runs without Hydra,
e.g. ``segkit.app.run.train(cfg)`` called from a notebook.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from segkit.core.errors import ConfigError


@dataclass(frozen=True)
class SweepJob:
    """A job of a ``-m`` sweep: the sweep's folder and the job's number in it."""

    sweep_dir: Path
    num: int


def output_dir(configured: str | None) -> Path:
    """The configured output directory, or Hydra's job directory when it is null."""
    if configured is None:
        if not HydraConfig.initialized():
            raise ConfigError(
                "output_dir is null and there is no Hydra job directory: "
                "set output_dir when calling train() without Hydra"
            )
        configured = HydraConfig.get().runtime.output_dir
    return Path(str(configured)).expanduser().resolve()


def task_overrides() -> list[str] | None:
    """The job's command-line overrides (sweep values resolved), or None without Hydra."""
    if not HydraConfig.initialized():
        return None
    return list(HydraConfig.get().overrides.task)


def sweep_job() -> SweepJob | None:
    """The sweep this job belongs to, or None for a single run or a run without Hydra."""
    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN:
        return None
    return SweepJob(sweep_dir(hydra), int(hydra.job.num))


def sweep_dir(hydra: DictConfig) -> Path:
    """The absolute sweep folder of the ``hydra`` config node.

    A relative ``hydra.sweep.dir`` is relative to where the command was started, which need not be
    the working directory of a job's process.
    """
    folder = Path(str(hydra.sweep.dir)).expanduser()
    return (Path(str(hydra.runtime.cwd)) / folder).resolve()
