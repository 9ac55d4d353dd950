"""Sweeps with -m: real Hydra multiruns in a subprocess, real MLflow stores, real launchers."""

from __future__ import annotations

import csv
import json
import math
import signal
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.utils.validation import _validate_metric_name
from omegaconf import OmegaConf

from helpers import TINY, run_module, start_module, wait_for_metrics
from segkit.evaluation.sweep_figure import plot_group_scores
from segkit.tracking.sweep import JobRow, log_groups
from segkit.tracking.sweep_groups import group_labels, metric_label

EPOCH_METRICS = ("train/loss", "train/lr", "val/loss", "val/dice", "val/miou", "val/pixel_accuracy")
FINAL_METRICS = ("best/val/dice", "best/val/loss", "test/dice", "test/miou")


def sweep_args(tmp_path: Path, cache_dir: Path, *extra: str) -> list[str]:
    """A -m sweep of smoke runs on the tiny dataset, its folder at tmp_path/sweep."""
    return [
        "-m",
        "trainer=smoke",
        *TINY,
        f"cache_dir={cache_dir}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        *extra,
    ]


def sweep_runs(uri: str, experiment: str = "segkit"):
    """(client, parent run, child runs by job number) of the only sweep in ``experiment``."""
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in parents]
    parent = parents[0]
    children = {int(r.data.tags["sweep.job"]): r for r in runs if r is not parent}
    for child in children.values():
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    return client, parent, children


def assert_complete(client: MlflowClient, run, epochs: int = 1) -> None:
    """A FINISHED run with every per-epoch metric at every epoch and every final metric."""
    assert run.info.status == "FINISHED", run.data.tags.get("failure_reason")
    for name in EPOCH_METRICS:
        history = client.get_metric_history(run.info.run_id, name)
        assert [m.step for m in history] == list(range(epochs)), name
    assert set(FINAL_METRICS) <= set(run.data.metrics)


class RecordingParent:
    """Stands in for the parent run's tracker: keeps what is logged on it."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.artifacts: list[str] = []

    def log_metrics(self, metrics, step: int) -> None:
        self.metrics.update(metrics)

    def log_artifact(self, path, artifact_path=None) -> None:
        self.artifacts.append(f"{artifact_path}/{Path(path).name}" if artifact_path else path.name)


def job_row(job: int, overrides: list[str], dice: float, status: str = "FINISHED") -> JobRow:
    """A job of a sweep with ``trainer=smoke`` (common to all) and ``overrides``."""
    metrics = {"best/val/dice": dice, "test/dice": dice - 0.1}
    return JobRow(job, status, "", metrics=metrics, all_overrides=["trainer=smoke", *overrides])


def test_jobs_group_by_their_overrides_without_seed_and_fold(tmp_path):
    rows = [
        job_row(0, ["model=unet", "trainer.optimizer.lr=0.01", "seed=0"], 0.8),
        job_row(1, ["model=unet", "trainer.optimizer.lr=0.01", "seed=1"], 0.9),
        job_row(2, ["model=unet", "trainer.optimizer.lr=0.01", "++seed=2"], 0.7),
        job_row(3, ["model=unet", "trainer.optimizer.lr=0.1", "seed=0"], 0.6),
        job_row(4, ["model=unet", "trainer.optimizer.lr=0.1", "seed=1"], 0.99, "FAILED"),
        job_row(5, ["model=unet", "trainer.optimizer.lr=0.1", "seed=2"], math.nan),
    ]
    parent = RecordingParent()
    markdown = log_groups(parent, rows, tmp_path, "val/dice", plot_group_scores)
    # model=unet and trainer=smoke are common to all jobs, seeds are repeats.
    found, three = parent.metrics, [0.8, 0.9, 0.7]
    small = "trainer.optimizer.lr-0.01"
    assert found[f"{small}/best/val/dice/n"] == 3
    assert found[f"{small}/best/val/dice/mean"] == np.mean(three)
    assert found[f"{small}/best/val/dice/sd"] == np.std(three, ddof=1)
    assert found[f"{small}/best/val/dice/min"] == 0.7 and found[f"{small}/best/val/dice/max"] == 0.9
    assert found[f"{small}/test/dice/mean"] == np.mean([v - 0.1 for v in three])
    # The failed job and the NaN are left out: one value, so no sd.
    large = "trainer.optimizer.lr-0.1"
    assert found[f"{large}/best/val/dice/n"] == 1 and found[f"{large}/best/val/dice/max"] == 0.6
    assert f"{large}/best/val/dice/sd" not in found
    assert len(found) == 2 * 5 + 2 * 4
    for name in found:
        _validate_metric_name(name)  # MLflow's own rule
    assert parent.artifacts == ["summary_groups.csv", "figures/sweep_scores.png"]
    assert (tmp_path / "sweep_scores.png").stat().st_size > 0
    with (tmp_path / "summary_groups.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [(r["group"], r["score"], r["n"]) for r in table] == [
        ("trainer.optimizer.lr=0.01", "best/val/dice", "3"),
        ("trainer.optimizer.lr=0.01", "test/dice", "3"),
        ("trainer.optimizer.lr=0.1", "best/val/dice", "1"),
        ("trainer.optimizer.lr=0.1", "test/dice", "1"),
    ]
    assert float(table[0]["sd"]) == np.std(three, ddof=1) and table[2]["sd"] == ""
    assert markdown[1:4] == ["## Groups", "", "| group | n | best/val/dice | test/dice |"]
    assert markdown[5].startswith("| trainer.optimizer.lr=0.01 | 3 | 0.8000 ± 0.1000 [0.7000, 0.9")
    assert markdown[6] == "| trainer.optimizer.lr=0.1 | 1 | 0.6000 | 0.5000 |"


def test_group_labels_drop_repeats_and_common_overrides():
    assert group_labels(
        [["seed=0", "dataset.split.fold=0"], ["seed=1", "+dataset.split.fold=1"]]
    ) == [
        "all",
        "all",
    ]
    assert group_labels([["model=unet", "a=1", "~b"], ["model=unet", "a=2", "~b"]]) == [
        "a=1",
        "a=2",
    ]
    assert group_labels([["x=1", "y=2", "seed=0"], ["x=2", "y=2", "seed=0"], ["x=2", "y=3"]]) == [
        "x=1 y=2",
        "x=2 y=2",
        "x=2 y=3",
    ]
    assert metric_label("dataset.root=/data/a b:c,d") == "dataset.root-_data_a b_c_d"
    long = metric_label("model.decoder_filters=" + "16," * 100)
    assert len(long) == 150 and long != metric_label("model.decoder_filters=" + "16," * 99)


def summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "summary.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_grid_sweep_nests_four_finished_runs_under_one_parent(tmp_path, cache_dir):
    args = sweep_args(tmp_path, cache_dir, "trainer.optimizer.lr=1e-3,1e-2", "seed=0,1")
    result = run_module("segkit.train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client, parent, children = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert parent.info.status == "FINISHED"
    assert sorted(children) == [0, 1, 2, 3]
    combos = set()
    for child in children.values():
        assert_complete(client, child)
        combos.add((child.data.params["trainer.optimizer.lr"], child.data.params["seed"]))
    assert combos == {("0.001", "0"), ("0.001", "1"), ("0.01", "0"), ("0.01", "1")}
    # The sweep's overrides are the parent's params.
    assert parent.data.params["trainer.optimizer.lr"] == "1e-3,1e-2"
    assert parent.data.params["seed"] == "0,1"
    assert parent.data.params["trainer"] == "smoke"
    assert parent.data.tags["sweep.jobs"] == "4" and parent.data.tags["sweep.failed_jobs"] == "0"
    # The best job by val/dice is named on the parent, with its score.
    best = max(children.values(), key=lambda r: r.data.metrics["best/val/dice"])
    assert parent.data.tags["sweep.best_run_id"] == best.info.run_id
    assert parent.data.metrics["best/val/dice"] == pytest.approx(best.data.metrics["best/val/dice"])
    # The summary table: on the parent run and in the sweep folder, one row per job.
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"summary.csv", "summary.md"} <= artifacts
    rows = summary_rows(tmp_path / "sweep")
    assert [r["job"] for r in rows] == ["0", "1", "2", "3"]
    for row in rows:
        child = children[int(row["job"])]
        assert row["status"] == "FINISHED" and row["run_id"] == child.info.run_id
        assert float(row["best/val/dice"]) == pytest.approx(child.data.metrics["best/val/dice"])
        assert float(row["returned"]) == pytest.approx(child.data.metrics["best/val/dice"])
        # Only the overrides that tell the jobs apart.
        assert row["overrides"].split() == [
            f"trainer.optimizer.lr={child.data.params['trainer.optimizer.lr']}",
            f"seed={child.data.params['seed']}",
        ]
    # The seeds are repeats: per learning rate, the parent has the statistics of its two jobs.
    with (tmp_path / "sweep" / "summary_groups.csv").open() as handle:
        table = {(r["group"], r["score"]): r for r in csv.DictReader(handle)}
    for lr in ("0.001", "0.01"):  # as Hydra writes the values 1e-3 and 1e-2 in a job's overrides
        group = f"trainer.optimizer.lr={lr}"
        jobs = [c for c in children.values() if c.data.params["trainer.optimizer.lr"] == lr]
        dice = [c.data.metrics["best/val/dice"] for c in jobs]
        name = f"trainer.optimizer.lr-{lr}/best/val/dice"  # the group as a metric name
        assert parent.data.metrics[f"{name}/n"] == len(dice) == 2
        assert parent.data.metrics[f"{name}/mean"] == pytest.approx(np.mean(dice))
        assert parent.data.metrics[f"{name}/sd"] == pytest.approx(np.std(dice, ddof=1))
        assert parent.data.metrics[f"{name}/min"] == pytest.approx(min(dice))
        test_dice = [c.data.metrics["test/dice"] for c in jobs]
        assert parent.data.metrics[f"trainer.optimizer.lr-{lr}/test/dice/max"] == max(test_dice)
        row = table[group, "best/val/dice"]
        assert row["n"] == "2" and float(row["mean"]) == pytest.approx(np.mean(dice))
        assert float(row["sd"]) == pytest.approx(np.std(dice, ddof=1))
    assert {group for group, _ in table} == {
        "trainer.optimizer.lr=0.001",
        "trainer.optimizer.lr=0.01",
    }
    assert "\n## Groups\n" in (tmp_path / "sweep" / "summary.md").read_text()
    assert "summary_groups.csv" in artifacts
    figures = {a.path for a in client.list_artifacts(parent.info.run_id, "figures")}
    assert "figures/sweep_scores.png" in figures


@pytest.mark.slow  # ~20 s two-job sweep in a subprocess; runs in make test-all
def test_failed_job_ends_the_sweep_and_its_parent_failed(tmp_path, cache_dir):
    # Two jobs: the basic sweeper runs both, then stops on the one that diverged.
    args = sweep_args(
        tmp_path, cache_dir, "trainer.optimizer.name=sgd", "trainer.optimizer.lr=1e-3,1e30"
    )
    result = run_module("segkit.train", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1].startswith("segkit.train: error: training diverged")
    )
    _, parent, children = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert parent.info.status == "FAILED"
    assert parent.data.tags["failure_reason"] == "job(s) 1 did not finish"
    assert [children[0].info.status, children[1].info.status] == ["FINISHED", "FAILED"]
    rows = summary_rows(tmp_path / "sweep")
    assert [(r["job"], r["status"]) for r in rows] == [("0", "FINISHED"), ("1", "FAILED")]
    assert "diverged" in rows[1]["error"]


def test_optuna_search_of_three_trials_returns_the_best(tmp_path, cache_dir):
    args = sweep_args(tmp_path, cache_dir, "hparams_search=optuna", "hydra.sweeper.n_trials=3")
    result = run_module("segkit.train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    _, parent, children = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert parent.info.status == "FINISHED" and sorted(children) == [0, 1, 2]
    scores = {job: run.data.metrics["best/val/dice"] for job, run in children.items()}
    best_job = max(scores, key=scores.get)
    found = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert found.best_value == pytest.approx(scores[best_job])
    best = children[best_job].data.params
    assert found.best_params["trainer.optimizer.lr"] == pytest.approx(
        float(best["trainer.optimizer.lr"])
    )
    assert str(found.best_params["trainer.loss"]) == best["trainer.loss"]
    # model.base_filters is fixed on the command line (TINY), so it left the search space.
    assert "model.base_filters" not in found.best_params
    assert {r.data.params["model.base_filters"] for r in children.values()} == {"4"}
    assert parent.data.tags["sweep.best_job"] == str(best_job)
    assert parent.data.params["trainer.optimizer.lr"] == "tag(log, interval(1e-4, 1e-2))"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["hydra/launcher=joblib", "trainer.optimizer.lr=1e-3,1e-2"],
            "hydra/launcher=joblib runs jobs in parallel, and several processes must not write "
            "the local store tracking.uri=sqlite:///mlflow.db at once: start an MLflow server "
            "with `make server` and add tracking=server",
        ),
        (
            ["trainer=multi_worker", "trainer.optimizer.lr=1e-3,1e-2"],
            "trainer.strategy=multi_worker in a -m sweep needs its own worker processes",
        ),
        (["hparams_search=optuna_isic"], "missing value for dataset.root"),
        (["+trainer.epoch=3", "seed=0,1"], "unknown config key trainer.epoch"),
    ],
)
def test_a_sweep_that_cannot_work_stops_before_its_first_job(
    tmp_path, cache_dir, overrides, message
):
    args = sweep_args(tmp_path, cache_dir, *overrides)
    if "hparams_search=optuna_isic" in overrides:  # TINY's keys are the synthetic dataset's
        args = ["-m", *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    result = run_module("segkit.train", *args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("segkit.train: error: ") and message in lines[0]
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("sweep", [False, True])
def test_unreachable_server_stops_before_training(tmp_path, cache_dir, sweep):
    args = sweep_args(tmp_path, cache_dir, "tracking=server", "tracking.uri=http://127.0.0.1:9")
    if not sweep:
        args = [a for a in args if a != "-m"]
    result = run_module("segkit.train", *args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "tracking.uri=http://127.0.0.1:9: no MLflow server answers" in lines[0]
    assert "make server" in lines[0]
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "mlflow.db").exists()
    assert not list(tmp_path.glob("outputs/*/*/checkpoints"))  # Hydra made the folder, no more


def test_joblib_sweep_against_a_server_loses_no_run_and_no_metric(
    tmp_path, cache_dir, mlflow_server
):
    args = sweep_args(
        tmp_path,
        cache_dir,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "tracking=server",
        f"tracking.uri={mlflow_server}",
        "tracking.experiment=joblib",
        "trainer.epochs=2",
        "trainer.optimizer.lr=1e-3,1e-2",
    )
    result = run_module("segkit.train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client, parent, children = sweep_runs(mlflow_server, "joblib")
    assert parent.info.status == "FINISHED" and sorted(children) == [0, 1]
    for child in children.values():
        assert_complete(client, child, epochs=2)
        assert {a.path for a in client.list_artifacts(child.info.run_id)} >= {
            "model",
            "config.yaml",
        }
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"summary.csv"}
    assert not (tmp_path / "mlflow.db").exists()
    # Two worker processes ran the jobs, each reading the parent's id from the sweep folder.
    record = json.loads((tmp_path / "sweep" / ".segkit" / "parent_run.json").read_text())
    assert record["run_id"] == parent.info.run_id


def test_submitit_local_runs_one_job(tmp_path, cache_dir, mlflow_server):
    args = sweep_args(
        tmp_path,
        cache_dir,
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        "tracking=server",
        f"tracking.uri={mlflow_server}",
        "tracking.experiment=submitit",
    )
    result = run_module("segkit.train", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client, parent, children = sweep_runs(mlflow_server, "submitit")
    assert parent.info.status == "FINISHED" and list(children) == [0]
    assert_complete(client, children[0])
    assert list((tmp_path / "sweep" / ".submitit").glob("*/*_result.pkl"))


@pytest.mark.slow
def test_sigterm_during_a_sweep_ends_its_parent_run(tmp_path, cache_dir):
    args = sweep_args(
        tmp_path, cache_dir, "trainer.epochs=500", "trainer.limit_train_batches=null", "seed=0,1"
    )
    proc = start_module("segkit.train", *args, cwd=tmp_path)
    assert wait_for_metrics(tmp_path / "mlflow.db"), "the first job never logged an epoch"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    _, parent, children = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert parent.info.status == "FAILED"
    assert list(children) == [0] and children[0].info.status == "KILLED"
