"""The steps of a training run that need TensorFlow, in the order ``Run`` takes them.

``prepare`` sets the process up (devices, seeds, determinism, precision); ``fit`` builds the model
under the strategy and trains it with its callbacks; ``evaluate`` scores the restored best
checkpoint on val and test; ``log_artifacts`` logs what the run leaves behind. Importing this
module imports TensorFlow, so ``segkit.app.run`` imports it only once every input check passed.
"""

from __future__ import annotations

import logging

import keras
from omegaconf import OmegaConf

from segkit.config.values import option_value, to_container
from segkit.core.naming import (
    EPOCH_SCORES,
    class_names,
    final_metric_name,
    is_split_score,
    metric_name,
    per_class_scores,
)
from segkit.core.paths import CONFIG_FILE, MODEL_ARTIFACT_DIR, SPLITS_DIR, backup_dir
from segkit.core.paths import best_checkpoint as best_checkpoint_of
from segkit.core.scores import scores_numpy
from segkit.data.pipeline import make_dataset
from segkit.evaluation.callbacks import prediction_samples
from segkit.evaluation.figures import plot_learning_curves
from segkit.evaluation.model_source import load_keras
from segkit.models import build_model
from segkit.tracking.keras_model import log_keras_model
from segkit.training import precision, strategy
from segkit.training.callbacks import MetricsLogger, build_callbacks
from segkit.training.checkpoints import restore_monitors
from segkit.training.failures import check_finite
from segkit.training.fit import compile_model, fit_in_phases, steps_per_epoch
from segkit.training.signals import StopRequest, stop_at_next_step
from segkit.training.state import journal_file

log = logging.getLogger(__name__)


def prepare(run) -> tuple[str, str]:
    """Set the process up for ``run``: logical devices, a clean Keras session, the seeds, op
    determinism; returns the dtype policy to train under and why (``trainer.precision``)."""
    tcfg = run.cfg.trainer
    strategy.configure_logical_cpus(int(tcfg.logical_cpu_devices))
    # The jobs of a sweep run one after another in one process: start each from a clean slate.
    keras.backend.clear_session()
    keras.utils.set_random_seed(int(run.cfg.seed))
    strategy.set_op_determinism(bool(tcfg.deterministic))
    return precision.resolve(option_value(tcfg.precision))


def fit(run):
    """Build the model under the strategy and fit it; returns (model, confusion metric).

    With ``model.fine_tune_at`` the fit has two phases: the encoder frozen, then unfrozen
    with a new optimizer at a lower learning rate; epochs are numbered continuously.
    """
    cfg, tcfg = run.cfg, run.cfg.trainer
    distribution = strategy.make_strategy(tcfg, run.role)
    steps = steps_per_epoch(
        len(run.index.splits["train"]), int(tcfg.batch_size), tcfg.limit_train_batches
    )
    with distribution.scope():
        model = build_model(cfg.model, cfg.dataset)
        if run.role.multi_worker and tcfg.multi_worker.sync_batch_norm:
            strategy.synchronize_batch_norm(model)
        confusion = compile_model(model, tcfg, cfg.dataset, steps)
    replicas, parameters = distribution.num_replicas_in_sync, model.count_params()
    run.tracker.set_tags({"replicas": str(replicas), "model.parameters": str(parameters)})
    log.info(
        "model %s: %d parameters, %d replica(s), precision %s",
        model.name,
        parameters,
        replicas,
        run.precision,
    )
    stop = StopRequest()
    callbacks = _callbacks(run, stop)
    val_ds = eval_dataset(run, "val")
    with stop_at_next_step(stop):
        confusion = fit_in_phases(
            model,
            confusion,
            strategy=distribution,
            cfg=cfg,
            steps_per_epoch=steps,
            callbacks=callbacks,
            train_data=lambda *position: train_dataset(run, *position),
            after_phase=lambda: check_finite(run.history.get("train/loss", [])),
            validation_data=strategy.shard_by_element(val_ds) if run.role.multi_worker else val_ds,
            verbose=int(tcfg.verbose),
            shuffle=False,
        )
    # Equal on every worker of a multi-worker run, and between runs that should be identical.
    digest = strategy.weights_digest(model)
    log.info("trained weights: sha256 %s (%s)", digest, run.role.name)
    run.tracker.set_tags({"weights.sha256": digest})
    return model, confusion


def _callbacks(run, stop: StopRequest) -> list[keras.callbacks.Callback]:
    """The run's callbacks; a resumed run continues the record of the epochs before (its
    metrics, and the best score its checkpoint callback must beat)."""
    metrics_logger = MetricsLogger(
        run.tracker, journal_file(run.worker_dir), dict(run.plan.history)
    )
    checkpoint = best_checkpoint_of(run.output_dir) if run.role.is_chief else None
    callbacks = build_callbacks(
        run.cfg.trainer, backup_dir(run.worker_dir), checkpoint, metrics_logger, stop
    )
    restore_monitors(callbacks, metrics_logger.history)
    # Images of fixed validation samples, one per epoch (watch the masks form in the UI).
    callbacks += prediction_samples(run.cfg, run.index, run.tracker)
    run.history = metrics_logger.history
    return callbacks


def evaluate(run, model, confusion) -> dict[str, float]:
    """Restore the best checkpoint and score it on val and, if not empty, test.

    In a multi-worker run the chief scores the checkpoint alone, outside the strategy (the
    other workers have no copy of it); the other workers return no scores.
    """
    best = best_checkpoint_of(run.output_dir)
    if run.role.multi_worker:
        if not run.role.is_chief:
            log.info("%s: done; the chief evaluates the best checkpoint", run.role.name)
            return {}
        # Compiled outside the strategy: the chief alone runs it.
        model = keras.saving.load_model(best, compile=False)
        confusion = compile_model(model, run.cfg.trainer, run.cfg.dataset, 1)
    elif best.is_file():
        model.set_weights(keras.saving.load_model(best, compile=False).get_weights())
    names = class_names(run.cfg.dataset)
    results: dict[str, float] = {}
    for split in ("val", "test"):
        if not run.index.splits.get(split):
            continue
        logs = model.evaluate(eval_dataset(run, split), return_dict=True, verbose=0)
        results.update({metric_name(split, k): float(logs[k]) for k in EPOCH_SCORES})
        results.update(per_class_scores(scores_numpy(confusion.matrix.numpy()), names, split))
    epochs = len(next(iter(run.history.values()), []))
    run.tracker.log_metrics({final_metric_name(k): v for k, v in results.items()}, step=epochs)
    log.info(
        "final scores: %s",
        ", ".join(f"{k}={v:.4f}" for k, v in results.items() if is_split_score(k)),
    )
    return results


def train_dataset(run, first_epoch: int = 0, skip_batches: int = 0):
    """The training batches of epochs ``first_epoch`` to ``trainer.epochs - 1`` as one
    stream, each epoch shuffled and augmented from the seed and its number (fit it with
    ``steps_per_epoch``), without the first ``skip_batches`` (a resumed partial epoch)."""
    cfg, tcfg = run.cfg, run.cfg.trainer
    dataset = make_dataset(
        run.index.splits["train"],
        cfg.dataset,
        batch_size=int(tcfg.batch_size),
        training=True,
        seed=int(cfg.seed),
        limit_batches=tcfg.limit_train_batches,
        labels=run.index.labels,
        augment=cfg.augment,
        epochs=int(tcfg.epochs),
        first_epoch=first_epoch,
        cache_dir=cfg.cache_dir,
        progress_mode=cfg.progress,
    )
    if skip_batches:
        dataset = dataset.skip(skip_batches)
    return strategy.shard_by_element(dataset) if run.role.multi_worker else dataset


def eval_dataset(run, split: str):
    """The batches of ``split``, in order, not augmented (``trainer.limit_val_batches``)."""
    tcfg = run.cfg.trainer
    return make_dataset(
        run.index.splits[split],
        run.cfg.dataset,
        batch_size=int(tcfg.batch_size),
        training=False,
        seed=int(run.cfg.seed),
        limit_batches=tcfg.limit_val_batches,
        labels=run.index.labels,
        cache_dir=run.cfg.cache_dir,
        progress_mode=run.cfg.progress,
    )


def log_artifacts(run) -> None:
    """The resolved config, the splits, the learning curves, Hydra's record and the best model
    (as a file and as a keras-flavour MLflow model)."""
    out, tracker = run.output_dir, run.tracker
    config_file = out / CONFIG_FILE
    config_file.write_text(OmegaConf.to_yaml(to_container(run.cfg)))
    tracker.log_artifact(config_file)
    for path in run.index.write_split_files(out / SPLITS_DIR):
        tracker.log_artifact(path, SPLITS_DIR)
    if run.history:
        tracker.log_artifact(
            plot_learning_curves(run.history, out / "learning_curves.png"), "figures"
        )
    hydra_dir = out / ".hydra"
    if hydra_dir.is_dir():
        tracker.log_artifact(hydra_dir, "hydra")
    best = best_checkpoint_of(out)
    if run.cfg.tracking.log_model and best.is_file() and tracker.run_id is not None:
        tracker.log_artifact(best, MODEL_ARTIFACT_DIR)
        log_keras_model(tracker.run_id, load_keras(best), run.cfg)
