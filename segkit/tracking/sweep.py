"""A ``-m`` sweep in MLflow: its parent run's record, the jobs' outcomes, and the summary.

The process that starts the sweep publishes its parent run in
``<sweep dir>/.segkit/parent_run.json``; each job, in whatever process a launcher runs it, nests
its run under it and leaves its outcome in ``<sweep dir>/.segkit/jobs/<job>.json``. At the end
``summarise_sweep`` joins the two records that survive any launcher (the job files, also of jobs
that failed before they could start an MLflow run, and the child runs) into ``summary.csv`` and
``summary.md``: one row per job with its overrides, status and final scores, logged on the
parent run with the best job's score.

Jobs whose overrides differ only by ``seed`` or ``dataset.split.fold`` are repeats of one group
(``segkit.tracking.sweep_groups``): per group, each final score's n, mean, sd, min and max are
logged on the parent as metrics ``<group>/<score>/<stat>`` (``model-unet/best/val/dice/mean``,
``all/test/dice/sd``), as a ``Groups`` table in ``summary.md``, in ``summary_groups.csv`` and as
the box plot ``figures/sweep_scores.png`` (drawn by the function the caller passes in).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segkit.core.atomic import write_json
from segkit.core.markdown import table_row
from segkit.core.naming import final_metric_name, is_final_score, metric_direction
from segkit.core.paths import state_dir
from segkit.tracking import sweep_groups
from segkit.tracking.tracker import PARENT_TAG, MlflowTracker

FIXED_COLUMNS = ("job", "status", "run_id", "returned", "overrides")
PARENT_FILE = "parent_run.json"
JOBS_DIR = "jobs"
# MLflow takes at most 1000 metrics in one log_batch request.
METRICS_PER_REQUEST = 1000


@dataclass
class JobRow:
    """One job of the sweep."""

    job: int
    status: str
    overrides: str
    run_id: str = ""
    # What the job returned to the sweeper (the value of ``optimized_metric``).
    returned: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    # Every override of the job, also those common to all jobs (``overrides`` drops them).
    all_overrides: list[str] = field(default_factory=list)


def publish_parent(sweep_dir: Path, parent: MlflowTracker) -> None:
    """Record the sweep's parent run in the sweep folder, for every job to read."""
    record = {"run_id": parent.run_id, "uri": parent.cfg.uri, "experiment": parent.cfg.experiment}
    write_json(state_dir(sweep_dir) / PARENT_FILE, record)


def parent_record(sweep_dir: Path) -> dict[str, str] | None:
    """The sweep's parent run (``run_id``, ``uri``, ``experiment``), or None without one."""
    path = state_dir(sweep_dir) / PARENT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def record_job(sweep_dir: Path, record: dict[str, Any]) -> Path | None:
    """Write one job's outcome as ``jobs/<job>.json`` (whole, or not at all); nothing when the
    sweep has no parent run (so no summary to write)."""
    if parent_record(sweep_dir) is None:
        return None
    path = state_dir(sweep_dir) / JOBS_DIR / f"{record['job']}.json"
    write_json(path, record)  # atomic: a reader never sees half a file
    return path


def summarise_sweep(
    parent: MlflowTracker,
    sweep_dir: Path,
    metric: str | None,
    stopped_early: bool,
    plot_groups: Callable[[dict, list[str], Path], Path] | None = None,
) -> str:
    """Log the summary tables, the groups' statistics (and ``plot_groups``' figure of them),
    the best job's score and the failures on the parent run; returns the status to end it with
    (FAILED when a job failed or the sweep stopped early)."""
    client = parent.client
    runs = client.search_runs(
        [client.get_run(parent.run_id).info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent.run_id}'",
        max_results=50000,
    )
    rows = build_rows(state_dir(sweep_dir) / JOBS_DIR, list(runs))
    groups_md = log_groups(parent, rows, sweep_dir, metric, plot_groups)
    for path in write_tables(rows, sweep_dir, groups_md):
        parent.log_artifact(path)
    optuna_results = sweep_dir / "optimization_results.yaml"
    if optuna_results.is_file():
        parent.log_artifact(optuna_results)
    best = best_row(rows, metric) if metric else None
    if best is not None:
        name = final_metric_name(metric)
        parent.log_metrics({name: best.metrics[name]}, step=0)
        parent.set_tags({"sweep.best_run_id": best.run_id, "sweep.best_job": str(best.job)})
    failed = [r.job for r in rows if r.status != "FINISHED"]
    tags = {"sweep.jobs": str(len(rows)), "sweep.failed_jobs": str(len(failed))}
    if failed:
        tags["failure_reason"] = f"job(s) {', '.join(map(str, failed))} did not finish"
    elif stopped_early:
        tags["failure_reason"] = "the sweep stopped before all its jobs ended"
    parent.set_tags(tags)
    return "FAILED" if stopped_early or failed else "FINISHED"


def log_groups(
    parent: MlflowTracker,
    rows: list[JobRow],
    folder: Path,
    metric: str | None,
    plot_groups: Callable[[dict, list[str], Path], Path] | None,
) -> list[str]:
    """Log the statistics of each group of repeats (``segkit.tracking.sweep_groups``) on the
    parent run: as metrics ``<group>/<score>/<stat>``, ``summary_groups.csv`` and the figure
    ``figures/sweep_scores.png`` (drawn by ``plot_groups``, the sweep's metric first); returns
    the ``Groups`` section of ``summary.md``."""
    labels = sweep_groups.group_labels([r.all_overrides for r in rows])
    finished = [r.status == "FINISHED" for r in rows]
    values = sweep_groups.group_values(labels, [r.metrics for r in rows], finished)
    groups = sweep_groups.summarise_groups(values)
    parent.log_artifact(sweep_groups.write_group_table(groups, folder))
    aggregates = list(sweep_groups.group_metrics(groups).items())
    for start in range(0, len(aggregates), METRICS_PER_REQUEST):  # one request per batch
        parent.log_metrics(dict(aggregates[start : start + METRICS_PER_REQUEST]), step=0)
    if plot_groups is not None and any(values.values()):
        first = [final_metric_name(metric)] if metric else []
        parent.log_artifact(plot_groups(values, first, folder / "sweep_scores.png"), "figures")
    return sweep_groups.group_markdown(groups)


def build_rows(records_dir: Path, runs: list[Any]) -> list[JobRow]:
    """Rows from the job records in ``records_dir`` and the sweep's child runs (MLflow ``Run``)."""
    rows: dict[int, JobRow] = {}
    for path in sorted(records_dir.glob("*.json")) if records_dir.is_dir() else []:
        record = json.loads(path.read_text())
        rows[record["job"]] = JobRow(
            job=record["job"],
            status="FINISHED" if record["status"] == "COMPLETED" else "FAILED",
            overrides=" ".join(record["overrides"]),
            returned=record.get("returned"),
            error=record.get("error", ""),
            all_overrides=list(record["overrides"]),
        )
    for run in runs:
        tags = run.data.tags
        job = int(tags.get("sweep.job", -1))
        if job not in rows:  # no record: the run's tag has its overrides
            given = tags.get("hydra.overrides", "")
            every = [] if given == "(none)" else given.split()
            rows[job] = JobRow(job, "", given, all_overrides=every)
        row = rows[job]
        row.run_id, row.status = run.info.run_id, run.info.status
        row.error = row.error or tags.get("failure_reason", "")
        row.metrics = {k: v for k, v in run.data.metrics.items() if is_final_score(k)}
    ordered = sorted(rows.values(), key=lambda r: r.job)
    _drop_common_overrides(ordered)
    return ordered


def best_row(rows: list[JobRow], metric: str) -> JobRow | None:
    """The finished job with the best final value of ``metric`` (e.g. ``val/dice``)."""
    name = final_metric_name(metric)
    scored = [
        r for r in rows if r.status == "FINISHED" and math.isfinite(r.metrics.get(name, math.nan))
    ]
    if not scored:
        return None
    sign = 1.0 if metric_direction(metric) == "maximize" else -1.0
    return max(scored, key=lambda r: sign * r.metrics[name])


def write_tables(rows: list[JobRow], folder: Path, more: Sequence[str] = ()) -> list[Path]:
    """``summary.csv`` and ``summary.md`` in ``folder``: jobs, overrides, status, final scores;
    ``more`` lines end the markdown (the groups' table)."""
    scores = sorted({k for r in rows for k in r.metrics})
    header = [*FIXED_COLUMNS, *scores, "error"]

    def table(number: Callable[[float | None], str]) -> list[list[str]]:
        return [
            [
                str(r.job),
                r.status,
                r.run_id,
                number(r.returned),
                r.overrides,
                *(number(r.metrics.get(k)) for k in scores),
                r.error,
            ]
            for r in rows
        ]

    csv_path = folder / "summary.csv"
    with csv_path.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *table(_exact)])
    md_path = folder / "summary.md"
    lines = [table_row(header), table_row(["---"] * len(header))]
    lines += [table_row(r) for r in table(_rounded)]
    lines += list(more)
    md_path.write_text("\n".join(lines) + "\n")
    return [csv_path, md_path]


def _drop_common_overrides(rows: list[JobRow]) -> None:
    """Keep only the overrides that tell the jobs apart (the parent run has them all)."""
    if len(rows) < 2:
        return
    common = set.intersection(*(set(r.overrides.split()) for r in rows))
    for row in rows:
        row.overrides = " ".join(o for o in row.overrides.split() if o not in common)


def _exact(value: float | None) -> str:
    return "" if value is None else repr(value)


def _rounded(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
