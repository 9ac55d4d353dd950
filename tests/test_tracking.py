"""The MLflow tracker against a real SQLite store and a real `mlflow server`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from helpers import free_port
from segkit.config.tracking import TrackingConfig
from segkit.core.errors import ConfigError
from segkit.data.fingerprint import dataset_inputs
from segkit.data.index import DatasetIndex, Sample
from segkit.tracking.source import entry_point, git_tags
from segkit.tracking.store import check_server, is_local_store, runs_table_url
from segkit.tracking.tracker import MlflowTracker, NullTracker, flatten, make_tracker


def tracking_cfg(tmp_path, **extra):
    cfg = OmegaConf.structured(TrackingConfig)
    cfg.merge_with(
        {
            "uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "experiment": "t",
            "artifact_location": str(tmp_path / "art"),
            "tags": {"team": "vision"},
            **extra,
        }
    )
    return cfg


def test_flatten_nested_config():
    flat = flatten({"a": {"b": 1, "c": {"d": None}}, "e": [1, 2], "f": {}, "g": "x"})
    assert flat == {"a.b": "1", "a.c.d": "null", "e": "[1, 2]", "f": "{}", "g": "x"}


def test_tracker_logs_params_in_batches_metrics_artifacts_and_status(tmp_path):
    tracker = make_tracker(tracking_cfg(tmp_path))
    assert isinstance(tracker, MlflowTracker)
    params = {f"p{i:03d}": str(i) for i in range(250)}  # more than one log_batch takes
    params["long"] = "x" * 7000  # longer than MLflow accepts: truncated, not an error
    tracker.start("name", params, {"seed": "0"})
    tracker.log_metrics({"val/dice": 0.5, "train/loss": 1.0}, step=0)
    tracker.log_metrics({"val/dice": 0.7}, step=1)
    note = tmp_path / "note.txt"
    note.write_text("hello")
    tracker.log_artifact(note, "notes")
    tracker.end("FINISHED")
    client = MlflowClient(tracking_cfg(tmp_path).uri)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "name"
    assert len(run.data.params) == 251 and len(run.data.params["long"]) == 6000
    assert run.data.tags["team"] == "vision" and run.data.tags["seed"] == "0"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "val/dice")] == [0.5, 0.7]
    assert [a.path for a in client.list_artifacts(run.info.run_id, "notes")] == ["notes/note.txt"]


def test_deleted_experiment_is_a_clear_error(tmp_path):
    cfg = tracking_cfg(tmp_path)
    client = MlflowClient(cfg.uri)
    client.delete_experiment(client.create_experiment("t"))
    with pytest.raises(ConfigError, match="tracking.experiment='t' is deleted"):
        make_tracker(cfg).start("x", {}, {})


def test_disabled_tracking_is_a_null_tracker(tmp_path):
    tracker = make_tracker(tracking_cfg(tmp_path, enabled=False))
    assert type(tracker) is NullTracker
    tracker.start("x", {"a": "1"}, {})
    tracker.log_metrics({"m": 1.0}, 0)
    tracker.end("FINISHED")
    assert not (tmp_path / "mlflow.db").exists()


def test_run_nests_under_its_parent_run(tmp_path):
    parent = make_tracker(tracking_cfg(tmp_path))
    parent.start("sweep", {}, {})
    child = make_tracker(tracking_cfg(tmp_path, parent_run_id=parent.run_id))
    child.start("job", {}, {})
    run = MlflowClient(tracking_cfg(tmp_path).uri).get_run(child.run_id)
    assert run.data.tags["mlflow.parentRunId"] == parent.run_id


@pytest.mark.parametrize(
    ("uri", "local"),
    [
        ("sqlite:///mlflow.db", True),
        ("sqlite:////abs/mlflow.db", True),
        ("./mlruns", True),
        ("file:///tmp/mlruns", True),
        ("http://127.0.0.1:5000", False),
        ("https://mlflow.example.org", False),
        ("postgresql://user@db/mlflow", False),
        ("databricks", False),
    ],
)
def test_local_stores_are_files(uri, local):
    assert is_local_store(uri) is local


def test_server_check_passes_a_running_server(mlflow_server, tmp_path):
    check_server(mlflow_server, timeout=5)
    tracker = make_tracker(tracking_cfg(tmp_path, uri=mlflow_server, experiment="check"))
    tracker.start("x", {"a": "1"}, {})
    tracker.end("FINISHED")
    assert MlflowClient(mlflow_server).get_run(tracker.run_id).info.status == "FINISHED"


def test_unreachable_server_is_a_one_line_error_naming_the_uri(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ConfigError) as error:
        make_tracker(tracking_cfg(tmp_path, uri=uri, server_timeout=2))
    message = str(error.value)
    assert message.startswith(f"tracking.uri={uri}: no MLflow server answers")
    assert "make server" in message and "\n" not in message
    check_server("sqlite:///x.db", timeout=1)  # not a server: nothing to check


@pytest.mark.parametrize(
    ("raised", "status"),
    [(None, "FINISHED"), (ValueError, "FAILED"), (KeyboardInterrupt, "KILLED")],
)
def test_a_tracked_block_never_leaves_its_run_running(tmp_path, raised, status):
    tracker = make_tracker(tracking_cfg(tmp_path))
    try:
        with tracker.running("block", {}, {}):
            if raised:
                raise raised("bad input.png")
    except (ValueError, KeyboardInterrupt):
        pass
    run = MlflowClient(tracking_cfg(tmp_path).uri).get_run(tracker.run_id)
    assert run.info.status == status
    assert ("failure_reason" in run.data.tags) == (status == "FAILED")


def _samples(folder: Path, names: list[str]) -> list[Sample]:
    folder.mkdir(parents=True, exist_ok=True)
    samples = []
    for name in names:
        for suffix in ("jpg", "png"):
            (folder / f"{name}.{suffix}").write_bytes(b"pixels of " + name.encode())
        samples.append(Sample(name, str(folder / f"{name}.jpg"), str(folder / f"{name}.png")))
    return samples


def _logged_digests(client: MlflowClient, run_id: str) -> dict[str, str]:
    inputs = client.get_run(run_id).inputs.dataset_inputs
    return {i.tags[0].value: i.dataset.digest for i in inputs}


def test_each_split_is_a_dataset_input_whose_digest_follows_its_files(tmp_path):
    index = DatasetIndex(
        splits={
            "train": _samples(tmp_path / "data", ["a", "b", "c"]),
            "val": _samples(tmp_path / "data", ["d"]),
            "test": [],
        }
    )
    client = MlflowClient(tracking_cfg(tmp_path).uri)
    digests = []
    for _ in range(2):
        tracker = make_tracker(tracking_cfg(tmp_path))
        with tracker.running("data", {}, {}):
            tracker.log_datasets(dataset_inputs(index, "mine", str(tmp_path / "data")))
        digests.append(_logged_digests(client, tracker.run_id))
        # One training image changes (another size): only the train split's digest follows.
        (tmp_path / "data" / "b.jpg").write_bytes(b"other pixels, another size")
    assert set(digests[0]) == {"train", "val"}  # an empty split is no input
    assert digests[0]["val"] == digests[1]["val"]
    assert digests[0]["train"] != digests[1]["train"]
    dataset = client.get_run(tracker.run_id).inputs.dataset_inputs[0].dataset
    assert dataset.name in ("mine-train", "mine-val") and dataset.source_type == "local"


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
def test_runs_carry_mlflow_source_tags_with_the_commit_and_dirty_flag(tmp_path, monkeypatch):
    repo = tmp_path / "project"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "notes.txt").write_text("first")
    _git(repo, "add", "notes.txt")
    _git(repo, "commit", "-q", "-m", "first")
    monkeypatch.chdir(repo)
    client = MlflowClient(tracking_cfg(tmp_path).uri)
    tags = []
    for change in ("untracked.txt", "notes.txt"):  # an untracked file is not a change
        (repo / change).write_text("edited")
        tracker = make_tracker(tracking_cfg(tmp_path))
        with tracker.running("git", {}, {}):
            pass
        tags.append(client.get_run(tracker.run_id).data.tags)
    head = _git(repo, "rev-parse", "HEAD")
    assert [t["mlflow.source.git.commit"] for t in tags] == [head, head]
    assert [t["mlflow.source.git.dirty"] for t in tags] == ["false", "true"]
    assert tags[0]["mlflow.source.type"] == "LOCAL" and tags[0]["mlflow.user"]
    assert tags[0]["mlflow.source.name"]
    # Outside a repository there is no commit to name.
    monkeypatch.chdir(tmp_path)
    assert git_tags() == {}


def test_entry_point_names_segkit_commands_as_typed():
    assert entry_point("/src/segkit/segkit/train.py") == "python -m segkit.train"
    assert entry_point("/venv/bin/segkit-predict") == "segkit-predict"


def test_ui_url_points_at_the_runs_table_of_a_model_training_experiment(tmp_path):
    cfg = tracking_cfg(tmp_path)
    ui = "http://127.0.0.1:5000"
    assert runs_table_url(ui, cfg.uri, "t") == ui  # no store yet: created by the first run
    tracker = make_tracker(cfg)
    with tracker.running("first", {}, {}):
        pass
    experiment = MlflowClient(cfg.uri).get_experiment_by_name("t")
    assert runs_table_url(ui, cfg.uri, "t") == f"{ui}/#/experiments/{experiment.experiment_id}/runs"
    assert runs_table_url(ui, cfg.uri, "other") == ui
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
