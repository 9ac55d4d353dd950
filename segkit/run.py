"""``Run``: the one object that owns a training run; ``train(cfg)`` is its importable entry point.

Data flows one way: config -> index -> pipeline -> model -> metrics -> tracker. Everything that can
be wrong with the user's input (config values, dataset files, the output directory) is checked
before TensorFlow is imported and before an MLflow run exists, so a user mistake never leaves a run
behind. Once the MLflow run is started it is always ended: FINISHED, FAILED, or KILLED on Ctrl-C
or SIGTERM.

Under ``strategy: multi_worker`` every worker process builds a ``Run``; only the chief logs to
MLflow, writes the best checkpoint and evaluates it. Each other worker writes its own files (its
BackupAndRestore state) under ``<output_dir>/workers/<task>/``.
"""

from __future__ import annotations

import gc
import logging
import math
import platform
import shutil

from omegaconf import DictConfig, OmegaConf

import segkit
from segkit import hydra_job, paths, resume
from segkit.cluster import resolve_role
from segkit.config import EPOCH_SCORES, class_names, option_value, to_container, validate
from segkit.data import DatasetIndex, load_index
from segkit.errors import ConfigError, OutOfMemory, TrainingDiverged, out_of_memory, short_reason
from segkit.interrupts import StopRequest, sigterm_as_interrupt, stop_at_next_step
from segkit.tracking import (
    NullTracker,
    final_metric_name,
    flatten,
    library_versions,
    make_tracker,
)

log = logging.getLogger(__name__)


class Run:
    """One training run of a composed config: data, model, trainer and tracker.

    Constructing a ``Run`` validates the config, checks the output directory, indexes the
    dataset and validates its files; nothing heavy is imported yet and nothing is logged.
    ``execute`` trains, evaluates and logs.
    """

    def __init__(self, cfg: DictConfig):
        validate(cfg)
        self.cfg = cfg
        self.role = resolve_role(cfg.trainer)
        if self.role.multi_worker:
            log.info("multi-worker run: %s", self.role.describe())
        self.output_dir = hydra_job.output_dir(cfg.output_dir)
        # Where this process writes its own files: workers other than the chief keep theirs apart,
        # so that workers sharing a file system (or an output_dir) never write the same file.
        self.worker_dir = (
            self.output_dir if self.role.is_chief else self.output_dir / "workers" / self.role.name
        )
        # Fresh start, resume, or refusal (a finished run, a changed config, a cut backup).
        self.config_flat = flatten(to_container(cfg))
        self.plan = resume.plan(
            self.worker_dir, self.config_flat, bool(cfg.resume), self.role.is_chief
        )
        self.index: DatasetIndex
        self.index, self.validation = load_index(
            cfg.dataset, cfg.cache_dir, report_file=self.worker_dir / "data_problems.txt"
        )
        if cfg.optimized_metric.startswith("test/") and not self.index.splits.get("test"):
            raise ConfigError(
                f"optimized_metric={cfg.optimized_metric} but dataset {cfg.dataset.name!r} has "
                "no test split: optimise a val/ score"
            )
        self.tracker = make_tracker(cfg.tracking) if self.role.is_chief else NullTracker()
        self.history: dict[str, list[float]] = {}
        self.precision = ""  # the dtype policy: `execute` resolves trainer.precision here

    def execute(self) -> dict[str, float]:
        """Train, restore the best checkpoint, evaluate on val and test, log everything.

        Returns:
            Final scores of the best checkpoint: ``val/<score>`` and ``test/<score>`` for loss,
            dice, miou and pixel_accuracy (test only when the split is not empty).
        """
        import keras  # heavy imports start here, after every input check passed

        from segkit import precision, trainer

        cfg = self.cfg
        trainer.configure_logical_cpus(int(cfg.trainer.logical_cpu_devices))
        # The jobs of a sweep run one after another in one process: start each from a clean slate.
        keras.backend.clear_session()
        keras.utils.set_random_seed(int(cfg.seed))
        trainer.set_op_determinism(bool(cfg.trainer.deterministic))
        self.precision, reason = precision.resolve(option_value(cfg.trainer.precision))
        log.info("precision %s: %s", self.precision, reason)
        self.worker_dir.mkdir(parents=True, exist_ok=True)
        tags = {**self._tags(), "precision": self.precision, "precision.reason": reason}
        with resume.lock(self.worker_dir):  # held until the run has ended
            return self._train_and_end(tags)

    def _train_and_end(self, tags: dict[str, str]) -> dict[str, float]:
        """Open the run, fit, evaluate and log in it, then end it FINISHED, FAILED or KILLED
        (also when opening it failed half-way, e.g. the store refused a tag)."""
        from segkit import trainer

        status, opened = "FAILED", False
        try:
            self._open_run(tags)
            opened = True
            with sigterm_as_interrupt(), trainer.precision_policy(self.precision):
                model, confusion = self.fit()
                results = self.evaluate(model, confusion)
                if self.role.is_chief:
                    self._log_artifacts()
            status = "FINISHED"
            return results
        except KeyboardInterrupt as interrupt:
            status = "KILLED"
            hint = f"{interrupt}; " if str(interrupt) else ""
            raise KeyboardInterrupt(f"{hint}to resume: {self._resume_command()}") from None
        except Exception as error:
            memory = self._record_failure(error)
            if memory is not None:
                raise memory from error
            raise
        finally:
            self._end_run(status)
            if opened:
                resume.save_state(self.worker_dir, status=status)
            if status == "FINISHED":  # kept until now: a kill while evaluating resumes
                shutil.rmtree(paths.backup_dir(self.worker_dir), ignore_errors=True)

    def _end_run(self, status: str) -> None:
        """End the MLflow run; a second failure is logged, not raised over the first error."""
        try:
            self.tracker.end(status)
        except Exception:  # e.g. memory still short after an OOM: once more, freed
            gc.collect()
            try:
                self.tracker.end(status)
            except Exception as error:
                log.warning("could not mark the MLflow run %s: %s", status, short_reason(error))

    def _record_failure(self, error: Exception) -> OutOfMemory | None:
        """Tag the run with why it failed (and the epoch it diverged in); returns the one-line
        error to raise instead when it ran out of memory."""
        import keras

        tags = {"failure_reason": short_reason(error)}
        if isinstance(error, TrainingDiverged) and error.epoch is not None:
            tags["diverged.epoch"] = str(error.epoch)
        memory = out_of_memory(error, self.cfg.trainer.batch_size, self.cfg.dataset.image_size)
        if memory is not None:
            tags["failure_reason"] = short_reason(memory)
            # Free the model and the batches the failed frames hold (and stop the input
            # pipeline's threads) before anything else needs memory: ending the run.
            error.__traceback__ = None
            keras.backend.clear_session(free_memory=True)
            gc.collect()
        self.tracker.set_tags(tags)
        return memory

    def _open_run(self, tags: dict[str, str]) -> None:
        """Start the MLflow run, or reopen the one an unfinished run in ``output_dir`` logged
        to, after moving a superseded run's files aside (``resume=false``)."""
        plan = self.plan
        moved = plan.apply()
        if moved is not None:
            log.warning("an unfinished earlier run's files were moved to %s", moved)
            tags["superseded.files"] = str(moved)
        if plan.superseded_run_id:
            tags["superseded.run_id"] = plan.superseded_run_id
            self.tracker.close_stale(plan.superseded_run_id)
        if plan.resume is not None:
            tags["resumed.from"] = f"epoch {plan.resume.epoch} batch {plan.resume.batch}"
        reopened = bool(plan.resume and plan.run_id and self.tracker.reopen(plan.run_id, tags))
        if not reopened:
            self.tracker.start(self._run_name(), self._params(), tags)
        if plan.resume is not None:
            count = self.tracker.backfill(plan.history)
            log.info(
                "resuming %s after %d epoch(s) + %d batch(es)%s",
                f"MLflow run {self.tracker.run_id}" if reopened else "the run",
                plan.resume.epoch,
                plan.resume.batch,
                f"; {count} epoch(s) logged from the record" if count else "",
            )
        resume.save_state(
            self.worker_dir,
            run_id=self.tracker.run_id,
            tracking_uri=str(self.cfg.tracking.uri) if self.cfg.tracking.enabled else None,
            status="RUNNING",
            config=self.config_flat,
        )

    def _resume_command(self) -> str:
        given = hydra_job.task_overrides() or []
        overrides = [o for o in given if not o.startswith("output_dir=")]
        return " ".join(["python -m segkit.train", *overrides, f"output_dir={self.output_dir}"])

    def fit(self):
        """Build the model under the strategy and fit it; returns (model, confusion metric).

        With ``model.fine_tune_at`` the fit has two phases: the encoder frozen, then unfrozen
        with a new optimizer at a lower learning rate; epochs are numbered continuously.
        """
        from segkit import checkpoints, finetune, trainer
        from segkit.evaluation.callbacks import prediction_samples
        from segkit.models import build_model

        cfg, tcfg = self.cfg, self.cfg.trainer
        strategy = trainer.make_strategy(tcfg, self.role)
        train_samples = self.index.splits["train"]
        steps = trainer.steps_per_epoch(
            len(train_samples), int(tcfg.batch_size), tcfg.limit_train_batches
        )
        with strategy.scope():
            model = build_model(cfg.model, cfg.dataset)
            if self.role.multi_worker and tcfg.multi_worker.sync_batch_norm:
                trainer.synchronize_batch_norm(model)
            confusion = trainer.compile_model(model, tcfg, cfg.dataset, steps)
        replicas, parameters = strategy.num_replicas_in_sync, model.count_params()
        self.tracker.set_tags({"replicas": str(replicas), "model.parameters": str(parameters)})
        log.info(
            "model %s: %d parameters, %d replica(s), precision %s",
            model.name,
            parameters,
            replicas,
            self.precision,
        )
        val_ds = self._eval_dataset("val")
        if self.role.multi_worker:
            val_ds = trainer.shard_by_element(val_ds)
        # A resumed run continues the record of the epochs before (see MetricsLogger).
        metrics_logger = trainer.MetricsLogger(
            self.tracker, resume.journal_file(self.worker_dir), dict(self.plan.history)
        )
        checkpoint = paths.best_checkpoint(self.output_dir) if self.role.is_chief else None
        stop = StopRequest()
        callbacks = trainer.build_callbacks(
            tcfg, paths.backup_dir(self.worker_dir), checkpoint, metrics_logger, stop
        )
        checkpoints.restore_monitors(callbacks, metrics_logger.history)
        # Images of fixed validation samples, one per epoch (watch the masks form in the UI).
        callbacks += prediction_samples(cfg, self.index, self.tracker)
        self.history = metrics_logger.history
        with stop_at_next_step(stop):
            confusion = finetune.fit_in_phases(
                model,
                confusion,
                strategy=strategy,
                cfg=cfg,
                steps_per_epoch=steps,
                callbacks=callbacks,
                train_data=self.train_dataset,
                after_phase=lambda: _check_finite(self.history.get("train/loss", [])),
                validation_data=val_ds,
                verbose=int(tcfg.verbose),
                shuffle=False,
            )
        # Equal on every worker of a multi-worker run, and between runs that should be identical.
        digest = trainer.weights_digest(model)
        log.info("trained weights: sha256 %s (%s)", digest, self.role.name)
        self.tracker.set_tags({"weights.sha256": digest})
        return model, confusion

    def evaluate(self, model, confusion) -> dict[str, float]:
        """Restore the best checkpoint and score it on val and, if not empty, test.

        In a multi-worker run the chief scores the checkpoint alone, outside the strategy (the
        other workers have no copy of it); the other workers return no scores.
        """
        import keras

        from segkit import trainer
        from segkit.metrics import per_class_scores, scores_numpy

        best = paths.best_checkpoint(self.output_dir)
        if self.role.multi_worker:
            if not self.role.is_chief:
                log.info("%s: done; the chief evaluates the best checkpoint", self.role.name)
                return {}
            # Compiled outside the strategy: the chief alone runs it.
            model = keras.saving.load_model(best, compile=False)
            confusion = trainer.compile_model(model, self.cfg.trainer, self.cfg.dataset, 1)
        elif best.is_file():
            model.set_weights(keras.saving.load_model(best, compile=False).get_weights())
        names = class_names(self.cfg.dataset)
        results: dict[str, float] = {}
        for split in ("val", "test"):
            if not self.index.splits.get(split):
                continue
            logs = model.evaluate(self._eval_dataset(split), return_dict=True, verbose=0)
            results.update({f"{split}/{k}": float(logs[k]) for k in EPOCH_SCORES})
            results.update(per_class_scores(scores_numpy(confusion.matrix.numpy()), names, split))
        epochs = len(next(iter(self.history.values()), []))
        self.tracker.log_metrics({final_metric_name(k): v for k, v in results.items()}, step=epochs)
        log.info(
            "final scores: %s",
            ", ".join(f"{k}={v:.4f}" for k, v in results.items() if k.count("/") == 1),
        )
        return results

    def train_dataset(self, first_epoch: int = 0, skip_batches: int = 0):
        """The training batches of epochs ``first_epoch`` to ``trainer.epochs - 1`` as one
        stream, each epoch shuffled and augmented from the seed and its number (fit it with
        ``steps_per_epoch``), without the first ``skip_batches`` (a resumed partial epoch)."""
        from segkit import trainer
        from segkit.data.pipeline import make_dataset

        cfg, tcfg = self.cfg, self.cfg.trainer
        dataset = make_dataset(
            self.index.splits["train"],
            cfg.dataset,
            batch_size=int(tcfg.batch_size),
            training=True,
            seed=int(cfg.seed),
            limit_batches=tcfg.limit_train_batches,
            labels=self.index.labels,
            augment=cfg.augment,
            epochs=int(tcfg.epochs),
            first_epoch=first_epoch,
            cache_dir=cfg.cache_dir,
        )
        if skip_batches:
            dataset = dataset.skip(skip_batches)
        return trainer.shard_by_element(dataset) if self.role.multi_worker else dataset

    def _eval_dataset(self, split: str):
        from segkit.data.pipeline import make_dataset

        tcfg = self.cfg.trainer
        return make_dataset(
            self.index.splits[split],
            self.cfg.dataset,
            batch_size=int(tcfg.batch_size),
            training=False,
            seed=int(self.cfg.seed),
            limit_batches=tcfg.limit_val_batches,
            labels=self.index.labels,
            cache_dir=self.cfg.cache_dir,
        )

    def _log_artifacts(self) -> None:
        from segkit.evaluation.model_io import log_keras_model
        from segkit.report import plot_learning_curves

        out = self.output_dir
        config_file = out / "config.yaml"
        config_file.write_text(OmegaConf.to_yaml(to_container(self.cfg)))
        self.tracker.log_artifact(config_file)
        for path in self.index.write_split_files(out / "splits"):
            self.tracker.log_artifact(path, "splits")
        if self.history:
            self.tracker.log_artifact(
                plot_learning_curves(self.history, out / "learning_curves.png"), "figures"
            )
        hydra_dir = out / ".hydra"
        if hydra_dir.is_dir():
            self.tracker.log_artifact(hydra_dir, "hydra")
        best = paths.best_checkpoint(out)
        if self.cfg.tracking.log_model and best.is_file():
            self.tracker.log_artifact(best, "model")
            log_keras_model(self.tracker, best, self.cfg)

    def _run_name(self) -> str:
        name = self.cfg.run_name or f"{self.cfg.model.name}-{self.cfg.dataset.name}"
        job = hydra_job.sweep_job()
        return name if job is None else f"{name}-{job.num}"

    def _params(self) -> dict[str, str]:
        params = {**self.config_flat, "precision": self.precision}
        params.update({f"data.{k}_samples": str(v) for k, v in self.index.counts().items()})
        return params

    def _tags(self) -> dict[str, str]:
        tags = {
            "segkit.version": segkit.__version__,
            "python.version": platform.python_version(),
            **library_versions(),
            "seed": str(self.cfg.seed),
            "deterministic": str(bool(self.cfg.trainer.deterministic)).lower(),
            "output_dir": str(self.output_dir),
        }
        tags.update({f"split.{k}": v for k, v in self.index.origin.items()})
        tags["data.validation"] = self.validation.describe()
        if self.role.multi_worker:
            tags.update({"cluster": self.role.source, "workers": str(self.role.num_workers)})
        overrides = hydra_job.task_overrides()
        if overrides is not None:
            tags["hydra.overrides"] = " ".join(overrides) or "(none)"
        job = hydra_job.sweep_job()
        if job is not None:
            tags.update({"sweep.job": str(job.num), "sweep.dir": str(job.sweep_dir)})
        return tags


def train(cfg: DictConfig) -> dict[str, float]:
    """Train the model the config describes and return the best checkpoint's final scores.

    Importable without Hydra: pass a config composed with ``hydra.compose`` (or built by hand)
    whose ``output_dir`` is set.

    Raises:
        ConfigError, DataError: a user mistake, found before anything is trained or logged.
    """
    return Run(cfg).execute()


def _check_finite(losses: list[float]) -> None:
    """Raise ``TrainingDiverged`` if a training loss was NaN or infinite (TerminateOnNaN)."""
    for epoch, loss in enumerate(losses):
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"training diverged in epoch {epoch + 1} (train/loss={loss}); the best "
                "checkpoint and the backup of the last good epoch are kept; try a lower "
                "trainer.optimizer.lr",
                epoch=epoch + 1,
            )


__all__ = ["Run", "train"]
