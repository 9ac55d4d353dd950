"""The summary of a ``-m`` sweep: one row per job with its overrides, status and final scores.

Rows join two records that survive any launcher: the small JSON file each job leaves in the sweep
folder (also for a job that failed before it could start an MLflow run) and the job's child run.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segkit.config import metric_direction
from segkit.resume import write_json
from segkit.tracking import final_metric_name

FIXED_COLUMNS = ("job", "status", "run_id", "returned", "overrides")


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


def write_job_record(folder: Path, job: int, record: dict[str, Any]) -> Path:
    """Write one job's outcome as ``<folder>/<job>.json`` (whole, or not at all)."""
    path = folder / f"{job}.json"
    write_json(path, record)  # atomic: a reader never sees half a file
    return path


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
        )
    for run in runs:
        tags = run.data.tags
        job = int(tags.get("sweep.job", -1))
        row = rows.setdefault(job, JobRow(job, "", tags.get("hydra.overrides", "")))
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


def write_tables(rows: list[JobRow], folder: Path) -> list[Path]:
    """``summary.csv`` and ``summary.md`` in ``folder``: jobs, overrides, status, final scores."""
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
    lines = [_md_row(header), _md_row(["---"] * len(header))]
    lines += [_md_row(r) for r in table(_rounded)]
    md_path.write_text("\n".join(lines) + "\n")
    return [csv_path, md_path]


def _drop_common_overrides(rows: list[JobRow]) -> None:
    """Keep only the overrides that tell the jobs apart (the parent run has them all)."""
    if len(rows) < 2:
        return
    common = set.intersection(*(set(r.overrides.split()) for r in rows))
    for row in rows:
        row.overrides = " ".join(o for o in row.overrides.split() if o not in common)


def is_final_score(key: str) -> bool:
    """``best/val/dice`` and ``test/dice``; not the per-class ``test/dice/<class>``."""
    parts = key.split("/")
    return (parts[0] == "best" and len(parts) == 3) or (parts[0] == "test" and len(parts) == 2)


def _exact(value: float | None) -> str:
    return "" if value is None else repr(value)


def _rounded(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
