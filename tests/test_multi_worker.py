"""Multi-worker training: real worker processes on loopback, and how a worker finds its cluster."""

from __future__ import annotations

import json
import re
from pathlib import Path

import keras
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from helpers import TINY, free_port, start_module
from segkit.config.trainer import MultiWorkerConfig
from segkit.core.errors import ConfigError
from segkit.training import compat_multi_worker
from segkit.training.cluster import ClusterRole, make_resolver, resolve_role
from segkit.training.strategy import synchronize_batch_norm, weights_digest

# A task index the cluster does not have.
OUTSIDE = {"type": "worker", "index": 3}
DIGEST = re.compile(r"trained weights: sha256 (\w+) \((worker-\d)\)")


def trainer_cfg(**multi_worker):
    return OmegaConf.create(
        {"strategy": "multi_worker", "multi_worker": {**vars(MultiWorkerConfig()), **multi_worker}}
    )


def run_workers(tmp_path: Path, cache_dir: Path, envs: list[dict[str, str]], *extra: str):
    """Start one `python -m segkit.train trainer=multi_worker` per env, sharing one output_dir."""
    common = [
        "trainer=multi_worker",
        "trainer.epochs=1",
        "trainer.batch_size=4",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=2",
        "trainer.verbose=0",
        "trainer.schedule.name=constant",
        *TINY,
        f"cache_dir={cache_dir}",
        f"output_dir={tmp_path / 'out'}",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"tracking.artifact_location={tmp_path / 'artifacts'}",
        *extra,
    ]
    procs = [
        start_module(
            "segkit.train", *common, f"hydra.run.dir={tmp_path / f'h{i}'}", cwd=tmp_path, env=env
        )
        for i, env in enumerate(envs)
    ]
    try:
        for i, proc in enumerate(procs):
            _, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 0, f"worker {i}: {stderr[-3000:]}"
    finally:
        for proc in procs:  # one worker failing leaves the other waiting on its collectives
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return [(tmp_path / f"h{i}" / "train.log").read_text() for i in range(len(envs))]


def tf_config(ports: list[int], index: int) -> dict[str, str]:
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    return {
        "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
    }


def assert_one_run_and_identical_weights(tmp_path: Path, logs: list[str]) -> None:
    found = [DIGEST.search(log) for log in logs]
    assert all(found), logs
    digests = {m.group(2): m.group(1) for m in found}
    assert set(digests) == {"worker-0", "worker-1"}
    assert digests["worker-0"] == digests["worker-1"]
    for log in logs:
        assert "applied segkit's multi-worker compatibility patch" in log
    # Only the chief wrote the best checkpoint: one epoch, so it holds the final weights.
    best = tmp_path / "out" / "checkpoints" / "best.keras"
    assert weights_digest(keras.saving.load_model(best, compile=False)) == digests["worker-0"]
    assert not list((tmp_path / "out" / "workers").rglob("*.keras"))
    # Exactly one MLflow run, the chief's, finished with its scores.
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("segkit").experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["replicas"] == "2" and run.data.tags["workers"] == "2"
    assert run.data.tags["weights.sha256"] == digests["worker-0"]
    assert "best/val/dice" in run.data.metrics and "test/dice" in run.data.metrics


def test_two_workers_from_tf_config_train_identical_weights_and_log_one_run(tmp_path, cache_dir):
    ports = [free_port(), free_port()]
    logs = run_workers(tmp_path, cache_dir, [tf_config(ports, 0), tf_config(ports, 1)])
    assert_one_run_and_identical_weights(tmp_path, logs)
    assert "cluster from tf_config" in logs[0]


@pytest.mark.slow
def test_two_workers_from_slurm_variables(tmp_path, cache_dir):
    # Two tasks of one Slurm step on this host, as srun starts them; ports base and base + 1.
    base = free_port()
    slurm = {
        "SLURM_STEP_NUM_TASKS": "2",
        "SLURM_STEP_NODELIST": "localhost",
        "SLURM_STEP_TASKS_PER_NODE": "2",
    }
    envs = [{**slurm, "SLURM_PROCID": str(i)} for i in range(2)]
    extra = ("trainer.multi_worker.gpus_per_node=0", f"trainer.multi_worker.port_base={base}")
    logs = run_workers(tmp_path, cache_dir, envs, *extra)
    assert_one_run_and_identical_weights(tmp_path, logs)
    assert "cluster from slurm" in logs[0]


def test_single_process_strategies_are_the_chief_of_one():
    role = resolve_role(OmegaConf.create({"strategy": "mirrored"}), environ={"TF_CONFIG": "x"})
    assert role == ClusterRole() and role.is_chief and not role.multi_worker


@pytest.mark.parametrize(
    ("cluster", "task", "chief", "workers"),
    [
        ({"worker": ["a:1", "b:1"]}, ("worker", 0), True, 2),
        ({"worker": ["a:1", "b:1"]}, ("worker", 1), False, 2),
        ({"chief": ["c:1"], "worker": ["a:1"]}, ("chief", 0), True, 2),
        ({"chief": ["c:1"], "worker": ["a:1"]}, ("worker", 0), False, 2),
    ],
)
def test_role_from_tf_config(cluster, task, chief, workers):
    spec = {"cluster": cluster, "task": {"type": task[0], "index": task[1]}}
    role = resolve_role(trainer_cfg(), environ={"TF_CONFIG": json.dumps(spec)})
    assert (role.source, role.task_type, role.task_id) == ("tf_config", *task)
    assert role.is_chief is chief and role.num_workers == workers


@pytest.mark.parametrize(
    ("environ", "cluster", "match"),
    [
        ({}, "auto", "trainer.strategy=multi_worker found no cluster"),
        ({"TF_CONFIG": "{not json"}, "auto", "TF_CONFIG is not a cluster description"),
        ({"TF_CONFIG": '{"cluster": {"worker": ["a:1"]}}'}, "auto", "TF_CONFIG is not a"),
        (
            {"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"]}, "task": OUTSIDE})},
            "auto",
            "TF_CONFIG task worker:3 is not in its cluster",
        ),
        ({"TF_CONFIG": "{}"}, "slurm", "cluster=slurm outside a Slurm job step"),
    ],
)
def test_missing_or_bad_cluster_is_a_one_line_config_error(environ, cluster, match):
    with pytest.raises(ConfigError, match=match) as error:
        resolve_role(trainer_cfg(cluster=cluster), environ=environ)
    assert "\n" not in str(error.value)


def test_role_and_resolver_from_slurm_variables(monkeypatch):
    slurm = {
        "SLURM_PROCID": "1",
        "SLURM_STEP_NUM_TASKS": "2",
        "SLURM_STEP_NODELIST": "node[07-08]",
        "SLURM_STEP_TASKS_PER_NODE": "1(x2)",
    }
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    trainer = trainer_cfg(gpus_per_node=0, port_base=7000)
    role = resolve_role(trainer)
    assert (role.source, role.task_id, role.num_workers, role.is_chief) == ("slurm", 1, 2, False)
    resolver = make_resolver(trainer, role)
    assert resolver.cluster_spec().as_dict() == {"worker": ["node07:7000", "node08:7000"]}
    assert (resolver.task_type, resolver.task_id) == ("worker", 1)


def test_compatibility_patch_is_guarded_by_keras_version():
    assert compat_multi_worker.needed("3.15.1") and compat_multi_worker.needed("3.0.0")
    assert not compat_multi_worker.needed("3.16.0")
    assert not compat_multi_worker.needed("2.15.0")
    # Applying twice patches once; single-process strategies go to Keras' own functions.
    from keras.src.backend.tensorflow import trainer as tf_trainer

    assert compat_multi_worker.apply() is compat_multi_worker.needed(keras.__version__)
    patched = tf_trainer.reduce_per_replica
    compat_multi_worker.apply()
    assert tf_trainer.reduce_per_replica is patched


def test_synchronize_batch_norm_reaches_nested_models():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.BatchNormalization()])
    assert synchronize_batch_norm(outer) == 2
    assert all(layer.synchronized for layer in [inner.layers[0], outer.layers[1]])
