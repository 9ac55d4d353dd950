"""MLflow tracking through an explicit client (no global active run).

``make_tracker`` returns an ``MlflowTracker`` or, with ``tracking.enabled: false``, a
``NullTracker`` that accepts the same calls and logs nothing. A run is ended FINISHED, FAILED or
KILLED by ``Tracker.end`` (``running`` does it for a block); a training run
(``segkit.app.run``) ends its run on every exit path too.

A tracking server (``http(s)://`` URI) is asked whether it answers when the tracker is made
(``segkit.tracking.store.check_server``), so an unreachable server stops the command before
anything is trained; MLflow's own client would retry each request for minutes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from segkit.core.errors import ConfigError, short_reason
from segkit.tracking.local_store import ensure_local_store
from segkit.tracking.source import source_tags
from segkit.tracking.store import check_server

# MLflow's limits: a param value is at most 6000 characters; log_batch takes up to 100 params.
MAX_PARAM_LENGTH = 6000
PARAMS_PER_BATCH = 100
# The tag MLflow's UI nests a run under its parent with.
PARENT_TAG = "mlflow.parentRunId"
# MLflow 3's UI shows an experiment of this kind as model training (its runs table first),
# not as a GenAI app (its traces).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# The input tag MLflow's UI shows a dataset's role in a run with (train, val, test).
DATASET_CONTEXT_TAG = "mlflow.data.context"


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``; lists become JSON, None becomes ``null``."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple, Mapping)):
            flat[name] = json.dumps(value)
        else:
            flat[name] = "null" if value is None else str(value)
    return flat


class NullTracker:
    """Tracking switched off: every call is accepted and nothing is logged."""

    run_id: str | None = None

    def start(self, run_name: str, params: Mapping[str, str], tags: Mapping[str, str]) -> None:
        """Start nothing."""

    def reopen(self, run_id: str, tags: Mapping[str, str]) -> bool:
        """Reopen nothing: a resumed run without tracking logs nothing either."""
        return False

    def backfill(self, history: Mapping[str, list[float]]) -> int:
        """Log nothing; returns 0."""
        return 0

    def close_stale(self, run_id: str) -> None:
        """End nothing."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log nothing."""

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Log nothing."""

    def log_datasets(self, inputs: list[Mapping[str, Any]]) -> None:
        """Log nothing."""

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Log nothing."""

    def log_image(self, image, key: str, step: int) -> None:
        """Log nothing."""

    def end(self, status: str) -> None:
        """End nothing."""

    @contextmanager
    def running(
        self, run_name: str, params: Mapping[str, str], tags: Mapping[str, str]
    ) -> Iterator[None]:
        """A run for the block: FINISHED when it completes, KILLED on Ctrl-C, FAILED with a
        ``failure_reason`` tag on an error (never left RUNNING)."""
        self.start(run_name, params, tags)
        status = "FAILED"
        try:
            yield
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        except Exception as error:
            self.set_tags({"failure_reason": short_reason(error)})
            raise
        finally:
            self.end(status)


class MlflowTracker(NullTracker):
    """One MLflow run in the store at ``tracking.uri``, experiment ``tracking.experiment``."""

    def __init__(self, cfg: DictConfig):
        # lazy: MLflow takes seconds to import, and a command reports a mistake in its input
        # (config, data, output folder) before it makes the tracker.
        from mlflow import MlflowClient

        self.cfg = cfg
        self.client = MlflowClient(tracking_uri=str(cfg.uri))
        self.run_id = None
        self.monitor = None  # MLflow's system-metrics monitor, with tracking.system_metrics

    def _experiment_id(self) -> str:
        name = str(self.cfg.experiment)
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            location = self.cfg.artifact_location
            return self.client.create_experiment(
                name, artifact_location=location or None, tags=EXPERIMENT_KIND
            )
        if experiment.lifecycle_stage == "deleted":
            raise ConfigError(
                f"tracking.experiment={name!r} is deleted in {self.cfg.uri}; restore it in the "
                "MLflow UI or choose another name"
            )
        return experiment.experiment_id

    def start(self, run_name: str, params: Mapping[str, str], tags: Mapping[str, str]) -> None:
        """Create the run, then log its params (in batches MLflow accepts) and tags."""
        from mlflow.entities import Param  # lazy: see __init__

        tags = {**source_tags(), **dict(self.cfg.tags), **tags}
        if self.cfg.parent_run_id:
            tags[PARENT_TAG] = str(self.cfg.parent_run_id)
        run = self.client.create_run(self._experiment_id(), run_name=run_name, tags=tags)
        self.run_id = run.info.run_id
        items = [Param(k, v[:MAX_PARAM_LENGTH]) for k, v in params.items()]
        try:
            for i in range(0, len(items), PARAMS_PER_BATCH):
                self.client.log_batch(self.run_id, params=items[i : i + PARAMS_PER_BATCH])
        except BaseException:  # the run exists: never leave it RUNNING, whoever called start
            self.end("FAILED")
            raise
        self._monitor_system(resume=False)

    def _monitor_system(self, resume: bool) -> None:
        """Start MLflow's own system-metrics monitor on the run (``tracking.system_metrics``):
        CPU, memory, disk, network and, with ``nvidia-ml-py`` installed, GPU, as
        ``system/...`` metrics every ``system_metrics_interval`` seconds until ``end``."""
        if not self.cfg.get("system_metrics"):
            return
        # lazy: the monitor imports psutil, which only this setting needs
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        self.monitor = SystemMetricsMonitor(
            self.run_id,
            sampling_interval=float(self.cfg.system_metrics_interval),
            resume_logging=resume,
            tracking_uri=str(self.cfg.uri),
        )
        self.monitor.start()

    def reopen(self, run_id: str, tags: Mapping[str, str]) -> bool:
        """Continue MLflow run ``run_id`` (a resumed run): mark it RUNNING again and set tags.

        Returns False, changing nothing, when this store has no such run in the experiment
        (another ``tracking.uri``, or the run was deleted): the caller then starts a new run.
        """
        from mlflow.exceptions import MlflowException  # lazy: see __init__

        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return False
        if run.info.lifecycle_stage != "active" or run.info.experiment_id != self._experiment_id():
            return False
        self.run_id = run_id
        self.client.update_run(run_id, status="RUNNING")
        self.set_tags(tags)
        self._monitor_system(resume=True)
        return True

    def close_stale(self, run_id: str) -> None:
        """Mark run ``run_id`` KILLED if it is still RUNNING: a run whose process was killed
        (SIGKILL, out of memory) and that a fresh start in its output_dir supersedes."""
        from mlflow.exceptions import MlflowException  # lazy: see __init__

        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return
        if run.info.status == "RUNNING":
            self.client.set_tag(run_id, "killed.reason", "process ended without ending the run")
            self.client.set_terminated(run_id, status="KILLED")

    def backfill(self, history: Mapping[str, list[float]]) -> int:
        """Log the epochs of ``history`` the run lacks (a run killed after recording an epoch
        but before logging it); returns how many epochs were logged."""
        if not history:
            return 0
        first = next(iter(history))
        logged = {m.step for m in self.client.get_metric_history(self.run_id, first)}
        missing = [e for e in range(len(history[first])) if e not in logged]
        for epoch in missing:
            self.log_metrics(
                {k: v[epoch] for k, v in history.items() if epoch < len(v)}, step=epoch
            )
        return len(missing)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log metric values at one step (an epoch), in a single request."""
        from mlflow.entities import Metric  # lazy: see __init__

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file or a folder to the run's artifacts."""
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_datasets(self, inputs: list[Mapping[str, Any]]) -> None:
        """Log dataset inputs (``segkit.data.fingerprint.dataset_inputs``): the UI's Datasets
        column shows each by name and digest, with its context (the split) as a tag."""
        # lazy: see __init__
        from mlflow.entities import Dataset, DatasetInput, InputTag

        entries = [
            DatasetInput(
                Dataset(
                    name=str(item["name"]),
                    digest=str(item["digest"]),
                    source_type="local",
                    source=json.dumps({"uri": str(item["source"])}),
                    profile=json.dumps(item.get("profile") or {}),
                ),
                tags=[InputTag(DATASET_CONTEXT_TAG, str(item["context"]))],
            )
            for item in inputs
        ]
        if entries:
            self.client.log_inputs(self.run_id, datasets=entries)

    def log_image(self, image, key: str, step: int) -> None:
        """Log an image (uint8 [H, W, 3]) under ``key`` at ``step``: the MLflow UI shows the
        steps of a key with a slider."""
        self.client.log_image(self.run_id, image, key=key, step=step)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set tags on the run."""
        if self.run_id is None:  # failed before its run started: nothing to tag
            return
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def end(self, status: str) -> None:
        """Stop the system-metrics monitor (flushing its last samples), then mark the run
        FINISHED, FAILED or KILLED."""
        if self.monitor is not None:
            self.monitor.finish()
            self.monitor = None
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status=status)


def make_tracker(cfg: DictConfig) -> NullTracker:
    """The tracker for the ``tracking`` config node.

    Raises:
        ConfigError: the tracking server does not answer within ``tracking.server_timeout``;
            a local store file that is not an MLflow store (a missing one is created whole).
    """
    if not cfg.enabled:
        return NullTracker()
    check_server(str(cfg.uri), float(cfg.server_timeout))
    ensure_local_store(str(cfg.uri))
    return MlflowTracker(cfg)
