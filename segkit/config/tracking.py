"""Tracking schema: the MLflow store, experiment and what each run logs."""

from __future__ import annotations

from dataclasses import dataclass, field

from segkit.config.ranges import ranged


@dataclass
class SweepTrackingConfig:
    """How the jobs of a ``-m`` sweep are grouped in MLflow."""

    # One parent run for the sweep with each job as a child run (tag mlflow.parentRunId).
    parent_run: bool = True
    # Name of the parent run; null = "<run name>-sweep".
    run_name: str | None = None


@dataclass
class TrackingConfig:
    """Where runs are logged. ``enabled: false`` (tracking=none) logs nothing."""

    enabled: bool = True
    # sqlite:///file.db (one process at a time) or http(s)://host:port of an `mlflow server`.
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "segkit"
    # Artifact root for a new experiment; null lets MLflow choose (./mlartifacts next to the db).
    artifact_location: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    log_model: bool = True
    # Also log the best model with MLflow's keras flavour and register it under this name in the
    # model registry (models:/<name>/<version>); null = log it unregistered.
    register_model: str | None = None
    # Validation images whose predictions are logged as one image per epoch (0 = none).
    sample_predictions: int = ranged(4, ge=0)
    # Seconds an http(s) tracking server has to answer the check made before anything is trained.
    server_timeout: float = ranged(5.0, gt=0)
    # Nest the run under this MLflow run; segkit sets it for each job of a -m sweep.
    parent_run_id: str | None = None
    # MLflow's system-metrics monitor for the run's lifetime: CPU, memory, disk, network (and
    # GPU with nvidia-ml-py installed) as system/... metrics, sampled every interval seconds.
    system_metrics: bool = False
    system_metrics_interval: float = ranged(10.0, gt=0)
    sweep: SweepTrackingConfig = field(default_factory=SweepTrackingConfig)
