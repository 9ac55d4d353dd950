"""``-m`` sweeps in MLflow: one parent run per sweep, each job a child run under it.

``SweepCallback`` is a Hydra callback (registered in conf/train.yaml under ``hydra.callbacks``).
In the process that starts the sweep, ``on_multirun_start`` refuses a local store that parallel
jobs would write at once, creates the parent run with the sweep's overrides as params, and
publishes it in the sweep folder (``segkit.tracking.sweep``). Each job, in whatever process the
launcher runs it (this one, a joblib worker, a Slurm task), nests its run under the parent
(``join_sweep``); ``on_job_end`` records the job's outcome. ``on_multirun_end`` logs the summary
on the parent and ends it FINISHED, or FAILED if a job failed. A sweep that stops early (a failed
job under the basic sweeper, Ctrl-C, SIGTERM) ends its parent FAILED when the process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import logging
import re
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from segkit.app import hydra_job
from segkit.config.validate import validate
from segkit.config.values import option_value
from segkit.core.errors import CallbackAbort, ConfigError, SegkitError, short_reason
from segkit.evaluation.sweep_figure import plot_group_scores
from segkit.tracking import sweep
from segkit.tracking.store import is_local_store
from segkit.tracking.tracker import make_tracker
from segkit.training.cluster import resolve_role
from segkit.training.signals import sigterm_as_interrupt

log = logging.getLogger(__name__)

# Hydra's sequential launcher; every other launcher (joblib, submitit, ray, ...) runs jobs at once.
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
# Characters MLflow accepts in a param name.
UNSAFE_PARAM_CHARS = re.compile(r"[^\w\-. /]")


class SweepCallback(Callback):
    """Groups the jobs of a sweep under one MLflow parent run; see the module docstring."""

    def __init__(self) -> None:
        self._parent = None
        self._sweep_dir: Path | None = None
        self._signals = contextlib.ExitStack()

    def __getstate__(self) -> dict[str, Any]:
        # Launchers pickle the callbacks into each job's process (joblib, submitit). The parent
        # run and the signal handler belong to the process that started the sweep; job processes
        # only record outcomes (on_job_end), which needs no state.
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Check the config and the store; start the parent run; publish its id.

        Raises:
            CallbackAbort: carrying the user error that stops the sweep before any job starts.
        """
        try:
            self._start(config)
        except (SegkitError, OmegaConfBaseException) as error:
            raise CallbackAbort(error) from error

    def _start(self, config: DictConfig) -> None:
        job_config = _without_hydra(config)
        validate(job_config)
        # A value every job would miss (dataset.root=???) stops the sweep before its first job.
        OmegaConf.to_container(job_config, resolve=True, throw_on_missing=True)
        tracking = job_config.tracking
        launcher = str(OmegaConf.select(config, "hydra.launcher._target_", default=""))
        if tracking.enabled and launcher != BASIC_LAUNCHER and is_local_store(tracking.uri):
            choice = OmegaConf.select(config, "hydra.runtime.choices")["hydra/launcher"]
            raise ConfigError(
                f"hydra/launcher={choice} runs jobs in parallel, and several processes "
                f"must not write the local store tracking.uri={tracking.uri} at once: start an "
                "MLflow server with `make server` and add tracking=server (or use tracking=none)"
            )
        multi_worker = option_value(job_config.trainer.strategy) == "multi_worker"
        if multi_worker and "submitit" not in launcher:
            # Collective ops are set up once per process: each job needs processes of its own.
            raise ConfigError(
                "trainer.strategy=multi_worker in a -m sweep needs its own worker processes for "
                "each job: add hydra/launcher=slurm_multi_worker (or train without -m)"
            )
        if not (tracking.enabled and tracking.sweep.parent_run):
            return
        self._sweep_dir = hydra_job.sweep_dir(config.hydra)
        tracker = make_tracker(tracking)  # fails fast when the server does not answer
        folder = self._sweep_dir
        name = tracking.sweep.run_name or f"sweep {folder.parent.name}/{folder.name}"
        overrides = [str(o) for o in config.hydra.overrides.task]
        tags = {
            "sweep.dir": str(self._sweep_dir),
            "sweep.launcher": _short(launcher),
            "sweep.sweeper": _short(str(OmegaConf.select(config, "hydra.sweeper._target_"))),
            "hydra.overrides": " ".join(overrides) or "(none)",
        }
        tracker.start(name, _sweep_params(config, overrides), tags)
        self._parent = tracker
        # From here on the parent run must be ended, however the sweep ends.
        self._signals.enter_context(sigterm_as_interrupt())
        atexit.register(self._abandon)
        sweep.publish_parent(self._sweep_dir, tracker)  # every job reads it
        log.info("sweep parent run %s in %s", tracker.run_id, tracking.uri)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        """Record the job's outcome for the summary (in the job's own process)."""
        if config.hydra.mode != RunMode.MULTIRUN or not _is_chief(config):
            return
        failed = job_return.status.name != "COMPLETED"
        # JobReturn re-raises a failed job's exception on `return_value`; the field holds it.
        value = job_return._return_value
        record = {
            "job": int(config.hydra.job.num),
            "overrides": [str(o) for o in job_return.overrides or []],
            "status": job_return.status.name,
            "returned": float(value) if isinstance(value, int | float) else None,
            "error": short_reason(value) if failed else "",
        }
        sweep.record_job(hydra_job.sweep_dir(config.hydra), record)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Summarise the jobs on the parent run and end it."""
        self._finish(str(config.optimized_metric), stopped_early=False)

    def _abandon(self) -> None:
        """At exit, a parent run still open means the sweep stopped before it could end."""
        try:
            self._finish(None, stopped_early=True)
        except Exception as error:  # the interpreter is exiting: report, do not raise
            log.warning("could not end the sweep's parent run: %s", short_reason(error))

    def _finish(self, metric: str | None, stopped_early: bool) -> None:
        parent, self._parent = self._parent, None
        self._signals.close()
        atexit.unregister(self._abandon)
        if parent is None or self._sweep_dir is None:
            return
        status = "FAILED"
        try:
            status = sweep.summarise_sweep(
                parent, self._sweep_dir, metric, stopped_early, plot_group_scores
            )
        finally:
            parent.end(status)
            log.info("sweep parent run %s ended %s", parent.run_id, status)


def join_sweep(cfg: DictConfig) -> None:
    """Nest this job's MLflow run under its sweep's parent run; nothing outside ``-m``.

    Reads the parent's id from the sweep folder, so it works in any process a launcher uses.
    """
    job = hydra_job.sweep_job()
    if job is None or not cfg.tracking.enabled:
        return
    parent = sweep.parent_record(job.sweep_dir)
    if parent is None:
        return  # tracking.sweep.parent_run is off
    if (parent["uri"], parent["experiment"]) != (cfg.tracking.uri, cfg.tracking.experiment):
        log.warning(
            "job %d logs to %s (experiment %s), not where its sweep's parent run is: not nested",
            job.num,
            cfg.tracking.uri,
            cfg.tracking.experiment,
        )
        return
    cfg.tracking.parent_run_id = parent["run_id"]


def _sweep_params(config: DictConfig, overrides: list[str]) -> dict[str, str]:
    """The sweep's overrides (``key=1,2``) and the sweeper's search space, as params."""
    params: dict[str, str] = {}
    for override in overrides:
        key, _, value = override.partition("=")
        params[key.lstrip("+~")] = value
    space = OmegaConf.select(config, "hydra.sweeper.params")
    if space:
        params.update({str(k): str(v) for k, v in space.items()})
    return {UNSAFE_PARAM_CHARS.sub("_", k): v for k, v in params.items()}


def _without_hydra(config: DictConfig) -> DictConfig:
    """The job's part of a composed config (what the task function receives)."""
    job_config = copy.deepcopy(config)
    with read_write(job_config), open_dict(job_config):
        del job_config["hydra"]
    return job_config


def _is_chief(config: DictConfig) -> bool:
    """Only the chief of a multi-worker job records it (every Slurm task runs the job)."""
    if option_value(config.trainer.strategy) != "multi_worker":
        return True
    try:
        return resolve_role(config.trainer).is_chief
    except ConfigError:
        return True  # the job failed on this very error: record it once


def _short(target: str) -> str:
    """``...joblib_launcher.JoblibLauncher`` -> ``JoblibLauncher``."""
    return target.rsplit(".", 1)[-1] or "none"
