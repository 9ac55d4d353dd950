"""End-to-end runs: a real SQLite MLflow store, real processes, real logical devices."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from helpers import (
    TINY,
    TINY_MODELS,
    compose_config,
    run_module,
    start_module,
    wait_for_metrics,
    with_model,
)
from segkit.app.run import train
from segkit.core.errors import ConfigError, TrainingDiverged
from segkit.core.scores import scores_numpy
from segkit.data import build_index
from segkit.data.formats.synthetic import dataset_dir
from segkit.data.pipeline import make_dataset
from segkit.training.metrics import confusion_matrix

EPOCH_METRICS = ("train/loss", "val/loss", "val/dice", "val/miou", "val/pixel_accuracy")


def only_run(uri: str, experiment: str = "segkit"):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id]) if exp else []
    assert len(runs) == 1, [r.info.status for r in runs]
    return client, runs[0]


def test_smoke_run_logs_a_finished_run_with_metrics_params_and_artifacts(smoke_overrides, tmp_path):
    system = ["tracking.system_metrics=true", "tracking.system_metrics_interval=0.2"]
    cfg = compose_config([*smoke_overrides, "trainer.epochs=2", *system])
    results = train(cfg)
    for split in ("val", "test"):
        for score in ("loss", "dice", "miou", "pixel_accuracy"):
            assert np.isfinite(results[f"{split}/{score}"])
    client, run = only_run(cfg.tracking.uri)
    assert run.info.status == "FINISHED"
    for name in EPOCH_METRICS:
        history = client.get_metric_history(run.info.run_id, name)
        assert [m.step for m in history] == [0, 1], name
    assert run.data.metrics["best/val/dice"] == pytest.approx(results["val/dice"])
    assert run.data.metrics["test/dice"] == pytest.approx(results["test/dice"])
    assert run.data.params["trainer.epochs"] == "2"
    assert run.data.params["model.name"] == "unet"
    assert run.data.params["data.train_samples"] == "16"  # 24 - 2 * round(0.15 * 24)
    assert run.data.tags["replicas"] == "1" and run.data.tags["seed"] == "0"
    # trainer.precision=auto is resolved for this machine and logged.
    assert run.data.params["trainer.precision"] == "auto"
    assert run.data.params["precision"] == run.data.tags["precision"]
    assert run.data.tags["precision"] in ("float32", "mixed_float16", "mixed_bfloat16")
    assert run.data.tags["precision.reason"]
    speed = client.get_metric_history(run.info.run_id, "train/images_per_second")
    assert [m.step for m in speed] == [0, 1] and all(m.value > 0 for m in speed)
    assert run.data.tags["data.validation"].startswith("full: 24 samples")
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "model", "figures", "splits"} <= artifacts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "figures")} == {
        "figures/learning_curves.png"
    }
    local = client.download_artifacts(run.info.run_id, "model/best.keras", str(tmp_path))
    model = keras.saving.load_model(local, compile=False)
    assert model.output_shape == (None, 32, 32, 1)
    # Each split is an MLflow dataset input, named, digested, with its split as context.
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs if i.tags}
    assert set(inputs) == {"train", "val", "test"}
    assert inputs["train"].name == "synthetic-train" and len(inputs["train"].digest) == 16
    assert json.loads(inputs["val"].profile)["num_samples"] == 4
    assert json.loads(inputs["train"].source)["uri"] == str(cfg.dataset.root)
    # MLflow's own source tags, and its system metrics while the run lasted.
    assert run.data.tags["mlflow.source.type"] == "LOCAL" and run.data.tags["mlflow.user"]
    assert any(k.startswith("system/cpu_utilization") for k in run.data.metrics)
    # The logged model's requirements were given, not inferred: the installed versions.
    (logged,) = client.search_logged_models([run.info.experiment_id])
    folder = mlflow.artifacts.download_artifacts(logged.artifact_location, dst_path=str(tmp_path))
    requirements = (Path(folder) / "requirements.txt").read_text().split()
    assert f"keras=={keras.__version__}" in requirements
    assert f"numpy=={np.__version__}" in requirements
    config_text = (tmp_path / "run" / "config.yaml").read_text()
    assert "epochs: 2" in config_text and "${" not in config_text  # resolved


def test_tracking_none_trains_and_logs_nothing(smoke_overrides, tmp_path):
    (tmp_path / "mlflow.db").unlink()  # the empty store smoke_overrides provides
    results = train(compose_config([*smoke_overrides, "tracking=none"]))
    assert "val/dice" in results
    assert not (tmp_path / "mlflow.db").exists()
    assert (tmp_path / "run" / "checkpoints" / "best.keras").is_file()


def test_finished_output_dir_is_never_overwritten(smoke_overrides, tmp_path):
    cfg = compose_config([*smoke_overrides, "tracking=none"])
    train(cfg)
    best = tmp_path / "run" / "checkpoints" / "best.keras"
    before = best.read_bytes()
    with pytest.raises(ConfigError, match="already holds a finished run"):
        train(cfg)
    assert best.read_bytes() == before


def test_failure_during_training_ends_the_run_failed(tmp_path, cache_dir, smoke_overrides):
    cache = tmp_path / "cache"
    shutil.copytree(cache_dir, cache)
    images = sorted((dataset_dir(cache / "synthetic", 24, 0, 48, 72)).rglob("*.jpg"))
    for path in images:
        path.write_bytes(b"not a jpeg")
    # Validation would refuse these files before the run starts; switched off, decoding fails
    # in the middle of training.
    cfg = compose_config([*smoke_overrides, f"cache_dir={cache}", "dataset.validate=off"])
    with pytest.raises(Exception, match="(?i)jpeg|image|decode"):
        train(cfg)
    _, run = only_run(cfg.tracking.uri)
    assert run.info.status == "FAILED"


def test_mirrored_strategy_on_two_logical_cpus_scores_like_numpy(smoke_overrides, tmp_path):
    cfg = compose_config(
        [
            *smoke_overrides,
            "trainer=mirrored",
            "trainer.epochs=1",
            "trainer.batch_size=4",
            "trainer.limit_train_batches=2",
            "trainer.logical_cpu_devices=2",
            "trainer.verbose=0",
        ]
    )
    results = train(cfg)
    _, run = only_run(cfg.tracking.uri)
    assert run.info.status == "FINISHED" and run.data.tags["replicas"] == "2"
    # The metric aggregated over both replicas equals one confusion matrix over all of val.
    model = keras.saving.load_model(tmp_path / "run" / "checkpoints" / "best.keras", compile=False)
    matrix = np.zeros((2, 2))
    val = make_dataset(
        build_index(cfg.dataset).splits["val"], cfg.dataset, batch_size=4, training=False, seed=0
    )
    for images, masks in val:
        matrix += keras.ops.convert_to_numpy(
            confusion_matrix(masks, model.predict(images, verbose=0), 2)
        )
    expected = scores_numpy(matrix)
    for score in ("dice", "miou", "pixel_accuracy"):
        assert results[f"val/{score}"] == pytest.approx(expected[score], abs=1e-6)


def test_command_line_run_uses_the_local_sqlite_store(tmp_path, cache_dir):
    result = run_module(
        "segkit.train", "trainer=smoke", *TINY, f"cache_dir={cache_dir}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _, run = only_run(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert run.info.status == "FINISHED"
    assert run.data.tags["hydra.overrides"].startswith("trainer=smoke")
    assert list((tmp_path / "outputs").glob("*/*/checkpoints/best.keras"))


@pytest.mark.slow  # ~15 s subprocess; the fast suite covers SIGTERM -> KILLED in test_faults
def test_sigterm_ends_the_run_killed_and_exits_nonzero(tmp_path, cache_dir):
    args = [
        "trainer=smoke",
        *TINY,
        f"cache_dir={cache_dir}",
        "trainer.epochs=500",
        "trainer.limit_train_batches=null",
    ]
    proc = start_module("segkit.train", *args, cwd=tmp_path)
    db = tmp_path / "mlflow.db"
    assert wait_for_metrics(db), "training never logged an epoch"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    assert "interrupted" in stderr
    _, run = only_run(f"sqlite:///{db}")
    assert run.info.status == "KILLED"


def test_divergence_ends_the_run_failed_with_the_reason(smoke_overrides):
    cfg = compose_config(
        [*smoke_overrides, "trainer.optimizer.name=sgd", "trainer.optimizer.lr=1e30"]
    )
    with pytest.raises(TrainingDiverged, match="diverged in epoch 1"):
        train(cfg)
    _, run = only_run(cfg.tracking.uri)
    assert run.info.status == "FAILED"
    assert "diverged" in run.data.tags["failure_reason"]


@pytest.mark.parametrize("model", sorted(TINY_MODELS))
def test_every_model_trains_a_step_under_mirrored_strategy(smoke_overrides, model):
    # float16 with loss scaling across replicas: the combination most likely to break.
    overrides = [
        *with_model(smoke_overrides, model),
        "tracking=none",
        "trainer=mirrored",
        "trainer.precision=mixed_float16",
        "trainer.epochs=1",
        "trainer.batch_size=4",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        "trainer.logical_cpu_devices=2",
        "trainer.verbose=0",
    ]
    results = train(compose_config(overrides))
    assert np.isfinite(results["val/loss"]) and 0.0 <= results["val/dice"] <= 1.0


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_smoke_run_under_mixed_precision(smoke_overrides, policy):
    results = train(
        compose_config([*smoke_overrides, "tracking=none", f"trainer.precision={policy}"])
    )
    assert np.isfinite(results["val/loss"]) and 0.0 <= results["val/dice"] <= 1.0
    assert keras.config.dtype_policy().name == "float32"  # restored after the run
