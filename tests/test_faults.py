"""Faults a run must survive: the cases of scripts/fault_matrix.py, and resuming in-process."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import threading
import time

import pytest
from mlflow import MlflowClient

from helpers import REPO, compose_config
from segkit.app.run import Run
from segkit.core.errors import ConfigError
from segkit.training import state as resume

_spec = importlib.util.spec_from_file_location("fault_matrix", REPO / "scripts" / "fault_matrix.py")
fault_matrix = importlib.util.module_from_spec(_spec)
sys.modules["fault_matrix"] = fault_matrix  # dataclasses look their module up there
_spec.loader.exec_module(fault_matrix)

FAST = [name for name, (_, trains) in fault_matrix.CASES.items() if not trains]
SLOW = [name for name, (_, trains) in fault_matrix.CASES.items() if trains]


def run_or_skip(name: str, folder, cache_dir):
    """The case's row; skipped, with the case's reason, where this machine cannot run it."""
    try:
        return fault_matrix.run_case(name, folder, cache_dir)
    except fault_matrix.Skipped as skipped:
        pytest.skip(f"{name}: {skipped}")


@pytest.mark.parametrize("name", FAST)
def test_fault_without_training(name, tmp_path, cache_dir):
    row = run_or_skip(name, tmp_path / "case", cache_dir)
    assert row.ok, row
    assert row.data_lost == "none", row


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_fault_with_training(name, tmp_path, cache_dir):
    row = run_or_skip(name, tmp_path / "case", cache_dir)
    assert row.ok, row
    assert row.data_lost == "none", row


def signal_after_first_backup(output_dir, delay: float) -> threading.Thread:
    """SIGTERM this process ``delay`` seconds after the run's first backup, as Slurm would."""

    def send():
        position = output_dir / "backup" / resume.POSITION_FILE
        deadline = time.monotonic() + 120
        while not position.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        # Only while a run handles it: the default action would end the test process.
        if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_interrupted_run_resumes_in_the_same_mlflow_run_with_identical_weights(
    smoke_overrides, tmp_path
):
    common = [
        "trainer.epochs=4",
        "trainer.limit_train_batches=null",  # 8 steps per epoch
        "trainer.deterministic=true",
    ]
    reference = compose_config(
        [*smoke_overrides, *common, f"output_dir={tmp_path / 'ref'}", "tracking.experiment=ref"]
    )
    Run(reference).execute()
    cfg = compose_config([*smoke_overrides, *common])
    out = tmp_path / "run"
    thread = signal_after_first_backup(out, delay=0.1)
    with pytest.raises(KeyboardInterrupt, match="to resume: python -m segkit.train"):
        Run(cfg).execute()
    thread.join()
    client = MlflowClient(cfg.tracking.uri)
    (killed,) = client.search_runs([client.get_experiment_by_name("segkit").experiment_id])
    assert killed.info.status == "KILLED"
    position = resume.backup_position(out / "backup")
    assert position is not None and (position.epoch, position.batch) >= (1, 0)

    Run(cfg).execute()  # the same command again
    (run,) = client.search_runs([killed.info.experiment_id])
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    for name in ("train/loss", "val/dice", "train/lr"):
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, name))
        assert steps == [0, 1, 2, 3], name
    (ref,) = client.search_runs([client.get_experiment_by_name("ref").experiment_id])
    assert run.data.tags["weights.sha256"] == ref.data.tags["weights.sha256"]
    assert run.data.tags["resumed.from"].startswith(f"epoch {position.epoch}")
    assert not (out / "backup").exists()  # deleted once FINISHED
    assert json.loads(resume.run_file(out).read_text())["status"] == "FINISHED"
    for name in ("numpy", "mlflow", "hydra", "omegaconf", "albumentations", "tensorflow"):
        assert run.data.tags[f"{name}.version"] != "unknown", name
    assert run.data.tags["seed"] == "0" and run.data.tags["deterministic"] == "true"


def test_resume_refuses_a_changed_config_and_resume_false_moves_the_old_run_aside(tmp_path):
    out = tmp_path / "run"
    backup = out / "backup"
    backup.mkdir(parents=True)
    (backup / "epoch0001-batch00000.weights.h5").write_bytes(b"weights")
    resume.write_json(
        backup / resume.POSITION_FILE,
        {"epoch": 1, "batch": 0, "weights": "epoch0001-batch00000.weights.h5"},
    )
    resume.save_state(out, run_id="abc", status="KILLED", config={"trainer.epochs": "3"})
    with pytest.raises(ConfigError, match=r"trainer.epochs=3->4.*resume=false"):
        resume.plan(out, {"trainer.epochs": "4"}, resume=True)
    fresh = resume.plan(out, {"trainer.epochs": "4"}, resume=False)
    assert fresh.resume is None and fresh.superseded_run_id == "abc"
    moved = fresh.apply()
    assert (moved / "backup" / "epoch0001-batch00000.weights.h5").read_bytes() == b"weights"
    assert not backup.exists() and not resume.run_file(out).exists()


def test_finished_run_is_refused_and_a_second_process_is_locked_out(tmp_path):
    out = tmp_path / "run"
    resume.save_state(out, status="FINISHED")
    for value in (True, False):
        with pytest.raises(ConfigError, match="already holds a finished run"):
            resume.plan(out, {}, resume=value)
    held = f"in use by another segkit process \\(pid {os.getpid()}\\)"
    with resume.lock(out), pytest.raises(ConfigError, match=held), resume.lock(out):
        pass


def test_keras_backup_of_an_older_segkit_is_resumed(tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / resume.KERAS_WEIGHTS).write_bytes(b"x")
    (backup / resume.KERAS_METADATA).write_text('{"epoch": 2, "batch": 0}')
    position = resume.backup_position(backup)
    assert (position.epoch, position.batch, position.weights.name) == (2, 0, "latest.weights.h5")


def test_best_checkpoint_is_written_atomically_and_never_from_a_nan_epoch(tmp_path):
    import keras

    from segkit.training.checkpoints import AtomicModelCheckpoint

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    best = tmp_path / "checkpoints" / "best.keras"
    callback = AtomicModelCheckpoint(str(best), monitor="val_dice", mode="max", save_best_only=True)
    callback.set_model(model)
    callback.on_epoch_end(0, {"loss": float("nan"), "val_dice": 0.5})  # NaN weights score too
    assert not best.exists()
    callback.on_epoch_end(1, {"loss": 0.3, "val_dice": 0.6})
    assert best.is_file() and keras.saving.load_model(best).count_params() == 3
    written = best.read_bytes()
    callback.on_epoch_end(2, {"loss": 0.2, "val_dice": float("nan")})
    callback.on_epoch_end(3, {"loss": 0.2, "val_dice": 0.55})  # worse: kept
    assert best.read_bytes() == written
    assert sorted(p.name for p in best.parent.iterdir()) == ["best.keras"]  # no temporary left
