"""Fine-tuning: a frozen encoder, unfrozen at ``model.fine_tune_at`` with a lower learning rate."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import compose_config, with_model
from segkit.app.run import Run
from segkit.core.paths import backup_dir, best_checkpoint
from segkit.models import build_model
from segkit.training import fit as finetune
from segkit.training import state as resume
from segkit.training.callbacks import build_callbacks
from segkit.training.cluster import resolve_role
from segkit.training.fit import compile_model
from segkit.training.optim import ScaledSchedule, build_optimizer, build_schedule
from segkit.training.strategy import make_strategy


@pytest.fixture
def encoder_weights(tmp_path):
    """A MobileNetV2 (alpha 0.35) no-top weights file, standing in for the ImageNet one."""
    base = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), include_top=False, weights=None, alpha=0.35
    )
    path = tmp_path / "mobilenet_v2_no_top.weights.h5"
    base.save_weights(path)
    return path


def fine_tune_overrides(smoke_overrides, weights, *extra: str) -> list[str]:
    return [
        *with_model(smoke_overrides, "mobilenet_unet"),
        f"model.encoder.weights={weights}",
        "model.encoder.trainable=false",
        "model.fine_tune_at=1",
        "model.fine_tune_lr_factor=0.1",
        "trainer.epochs=2",
        "tracking=none",
        *extra,
    ]


def encoder_arrays(model: keras.Model) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(w).copy() for w in model.get_layer("encoder").weights]


class Record(keras.callbacks.Callback):
    """Encoder weights and learning rate at the end of each epoch; optionally stop at one."""

    def __init__(self, stop_at: int | None = None):
        super().__init__()
        self.stop_at, self.epochs, self.encoder, self.lr = stop_at, [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.stop_at:
            raise KeyboardInterrupt("stopped by the test")

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)
        self.encoder.append(encoder_arrays(self.model))
        self.lr.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def test_phases_follow_the_config(smoke_overrides, encoder_weights):
    cfg = compose_config(fine_tune_overrides(smoke_overrides, encoder_weights, "trainer.epochs=5"))
    assert finetune.training_phases(cfg.model, 5) == [
        finetune.Phase(0, 1),
        finetune.Phase(1, 5, 0.1),
    ]
    plain = compose_config(with_model(smoke_overrides, "mobilenet_unet"))
    assert finetune.training_phases(plain.model, 5) == [finetune.Phase(0, 5)]


def fit_tiny(cfg, output_dir, callbacks):
    """``fit_in_phases`` on a tiny random dataset, as ``Run.fit`` calls it."""
    strategy = make_strategy(cfg.trainer, resolve_role(cfg.trainer))
    with strategy.scope():
        model = build_model(cfg.model, cfg.dataset)
        confusion = compile_model(model, cfg.trainer, cfg.dataset, 2)
    rng = np.random.default_rng(0)
    x = rng.random((4, 32, 32, 3), np.float32)
    y = (x[..., :1] > 0.5).astype(np.uint8)
    stream = tf.data.Dataset.from_tensor_slices((x, y)).batch(2).repeat()
    finetune.fit_in_phases(
        model,
        confusion,
        strategy=strategy,
        cfg=cfg,
        steps_per_epoch=2,
        callbacks=build_callbacks(cfg.trainer, backup_dir(output_dir), best_checkpoint(output_dir))
        + callbacks,
        train_data=lambda first_epoch: stream,
        after_phase=lambda: None,
        verbose=0,
    )
    return model


# fit_tiny has no validation data, so the best-checkpoint callback has nothing to compare.
@pytest.mark.filterwarnings("ignore:Can save best model only")
def test_encoder_frozen_then_trained_slower_and_a_stopped_run_resumes_in_phase_two(
    smoke_overrides, encoder_weights, tmp_path
):
    cfg = compose_config(fine_tune_overrides(smoke_overrides, encoder_weights, "trainer.epochs=3"))
    out = tmp_path / "out"
    record = Record(stop_at=2)
    with pytest.raises(KeyboardInterrupt):
        fit_tiny(cfg, out, [record])
    assert record.epochs == [0, 1]
    before = encoder_arrays(build_model(cfg.model, cfg.dataset))  # the weights file's values
    for a, b in zip(before, record.encoder[0], strict=True):
        np.testing.assert_array_equal(a, b)  # phase 1: frozen, batch norm statistics included
    assert any(not np.array_equal(a, b) for a, b in zip(before, record.encoder[1], strict=True))
    assert record.lr == pytest.approx([1e-3, 1e-4])  # smoke: constant schedule, then x 0.1
    assert backup_dir(out).exists()

    resumed = Record()
    model = fit_tiny(cfg, out, [resumed])
    assert resumed.epochs == [2]  # phase 1 restored and skipped, phase 2 continued
    assert resumed.lr == pytest.approx([1e-4])
    encoder = model.get_layer("encoder")
    assert encoder.trainable and encoder.get_layer("block_1_expand").trainable
    assert not encoder.get_layer("block_1_expand_BN").trainable  # batch norms stay frozen
    # Kept after fit: the run deletes it once FINISHED (a kill while evaluating resumes).
    assert resume.backup_position(backup_dir(out)).epoch == 3


@pytest.mark.slow  # ~15 s; the fast resume-in-phase-two test also trains both phases
def test_two_phase_run_logs_continuous_epochs(smoke_overrides, encoder_weights, tmp_path):
    run = Run(compose_config(fine_tune_overrides(smoke_overrides, encoder_weights)))
    results = run.execute()
    assert np.isfinite(results["val/dice"])
    assert len(run.history["train/loss"]) == 2 and len(run.history["val/dice"]) == 2
    assert run.history["train/lr"] == pytest.approx([1e-3, 1e-4])
    assert (tmp_path / "run" / "checkpoints" / "best.keras").is_file()
    assert not backup_dir(tmp_path / "run").exists()


def test_second_phase_schedule_continues_the_first_scaled(tmp_path):
    cfg = compose_config(["trainer.epochs=10", "trainer.schedule.warmup_epochs=0"])
    steps = 5
    first = build_schedule(cfg.trainer, steps)
    second = build_schedule(cfg.trainer, steps, scale=0.1, start_epoch=4)
    assert isinstance(second, ScaledSchedule)
    for step in (0, 7, 29):
        expected = 0.1 * float(first(step + 4 * steps))
        assert float(second(step)) == pytest.approx(expected, rel=1e-6)
    # An optimizer with it is saved with the model and loads back (compile=True).
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=build_optimizer(cfg.trainer, steps, 0.1, 4), loss="mse")
    model.fit(np.zeros((2, 2)), np.zeros((2, 1)), verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    saved = loaded.optimizer.get_config()["learning_rate"]
    assert "ScaledSchedule" in saved["class_name"] and saved["config"]["offset"] == 20
    constant = compose_config(["trainer=smoke"])
    assert build_schedule(constant.trainer, steps, 0.1, 4) == pytest.approx(1e-4)
