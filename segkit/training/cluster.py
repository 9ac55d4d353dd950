"""Where this process stands in a multi-worker cluster: read from TF_CONFIG or from Slurm.

``resolve_role`` reads only the environment, so a run knows before TensorFlow is imported whether
it is the chief (the one worker that logs to MLflow and writes the best checkpoint) and can report
a missing or malformed cluster description as a one-line ``ConfigError``. ``make_resolver`` builds
the TensorFlow cluster resolver the strategy is created from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from omegaconf import DictConfig

from segkit.config.values import option_value
from segkit.core.errors import ConfigError

# Slurm sets these in every task of a job step (srun, or submitit's tasks).
SLURM_RANK = "SLURM_PROCID"
SLURM_TASKS = "SLURM_STEP_NUM_TASKS"


@dataclass(frozen=True)
class ClusterRole:
    """This process's task in the cluster; a single-process run is the chief of a cluster of 1."""

    source: str = "single"
    task_type: str = "worker"
    task_id: int = 0
    num_workers: int = 1
    is_chief: bool = True

    @property
    def multi_worker(self) -> bool:
        """Whether the run is spread over several worker processes."""
        return self.source != "single"

    @property
    def name(self) -> str:
        """``worker-1``: names the folder a non-chief worker writes its own files to."""
        return f"{self.task_type}-{self.task_id}"

    def describe(self) -> str:
        """``worker-0 of 2 (cluster from tf_config), the chief``, for the log."""
        chief = ", the chief" if self.is_chief else ""
        return f"{self.name} of {self.num_workers} (cluster from {self.source}){chief}"


def resolve_role(trainer: DictConfig, environ: Mapping[str, str] | None = None) -> ClusterRole:
    """This process's role for ``trainer.strategy``, from ``TF_CONFIG`` or Slurm's variables.

    Raises:
        ConfigError: ``strategy: multi_worker`` and no usable cluster description.
    """
    if option_value(trainer.strategy) != "multi_worker":
        return ClusterRole()
    env = os.environ if environ is None else environ
    source = option_value(trainer.multi_worker.cluster)
    if source == "auto":
        source = "tf_config" if env.get("TF_CONFIG") else "slurm" if SLURM_RANK in env else ""
    if source == "tf_config":
        role = _from_tf_config(env.get("TF_CONFIG", ""))
    elif source == "slurm":
        role = _from_slurm(env)
    else:
        raise ConfigError(
            "trainer.strategy=multi_worker found no cluster: set TF_CONFIG on every worker, or "
            "run inside a Slurm job step (srun, or hydra/launcher=slurm_multi_worker)"
        )
    return role


def _from_tf_config(text: str) -> ClusterRole:
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        task_type, task_id = str(task["type"]), int(task["index"])
        members = {kind: list(cluster[kind]) for kind in ("chief", "worker") if kind in cluster}
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(
            "TF_CONFIG is not a cluster description like "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
            f'"task": {{"type": "worker", "index": 0}}}} ({error!r})'
        ) from None
    if task_type not in members or not 0 <= task_id < len(members[task_type]):
        raise ConfigError(
            f"TF_CONFIG task {task_type}:{task_id} is not in its cluster "
            f"({', '.join(f'{k}: {len(v)}' for k, v in members.items()) or 'no chief or worker'})"
        )
    # Without an explicit chief, worker 0 is the chief (TensorFlow's own convention).
    chief = task_type == "chief" or ("chief" not in members and task_id == 0)
    workers = sum(len(v) for v in members.values())
    return ClusterRole("tf_config", task_type, task_id, workers, chief)


def _from_slurm(env: Mapping[str, str]) -> ClusterRole:
    try:
        rank = int(env[SLURM_RANK])
        tasks = int(env.get(SLURM_TASKS) or env["SLURM_NTASKS"])
    except (KeyError, ValueError):
        raise ConfigError(
            f"trainer.multi_worker.cluster=slurm outside a Slurm job step: {SLURM_RANK} and "
            f"{SLURM_TASKS} are not set (start the workers with srun)"
        ) from None
    return ClusterRole("slurm", "worker", rank, tasks, rank == 0)


def make_resolver(trainer: DictConfig, role: ClusterRole):
    """The TensorFlow cluster resolver for ``role.source`` (TF_CONFIG or Slurm)."""
    import tensorflow as tf  # lazy: a run learns its role (resolve_role) before TensorFlow loads

    resolvers = tf.distribute.cluster_resolver
    if role.source == "tf_config":
        return resolvers.TFConfigClusterResolver()
    mw = trainer.multi_worker
    gpus = mw.gpus_per_node
    if gpus == 0:
        # The resolver hands every task at least one GPU id: on CPU nodes give it one id per
        # task to hand out, and keep it from setting CUDA_VISIBLE_DEVICES.
        return resolvers.SlurmClusterResolver(
            port_base=int(mw.port_base),
            gpus_per_node=role.num_workers,
            gpus_per_task=1,
            auto_set_gpu=False,
        )
    return resolvers.SlurmClusterResolver(
        port_base=int(mw.port_base), gpus_per_node=None if gpus is None else int(gpus)
    )
