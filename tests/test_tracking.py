"""The MLflow tracker against a real SQLite store and a real `mlflow server`."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from helpers import free_port
from segkit.config.tracking import TrackingConfig
from segkit.core.errors import ConfigError
from segkit.tracking.store import check_server, is_local_store
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
