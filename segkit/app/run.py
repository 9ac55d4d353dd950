"""``Run``: the one object that owns a training run; ``train(cfg)`` is its importable entry point.

Data flows one way: config -> index -> pipeline -> model -> metrics -> tracker. Everything that can
be wrong with the user's input (config values, dataset files, the output directory) is checked
before TensorFlow is imported and before an MLflow run exists, so a user mistake never leaves a run
behind. Once the MLflow run is started it is always ended: FINISHED, FAILED, or KILLED on Ctrl-C
or SIGTERM. The steps that need TensorFlow are ``segkit.app.run_steps``.

Under ``strategy: multi_worker`` every worker process builds a ``Run``; only the chief logs to
MLflow, writes the best checkpoint and evaluates it. Each other worker writes its own files (its
BackupAndRestore state) under ``<output_dir>/workers/<task>/``.
"""

from __future__ import annotations

import gc
import logging
import platform
import shutil

from omegaconf import DictConfig

import segkit
from segkit.app import hydra_job
from segkit.config.validate import check_splits, validate
from segkit.config.values import to_container
from segkit.core.errors import SegkitError, TrainingDiverged, short_reason
from segkit.core.paths import backup_dir, check_writable_folder
from segkit.data import load_index
from segkit.data.fingerprint import dataset_inputs
from segkit.data.index import DatasetIndex
from segkit.tracking.source import library_versions
from segkit.tracking.tracker import NullTracker, flatten, make_tracker
from segkit.training import state
from segkit.training.cluster import resolve_role
from segkit.training.failures import disk_full, out_of_memory
from segkit.training.precision import precision_policy
from segkit.training.signals import sigterm_as_interrupt

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
        check_writable_folder(self.worker_dir, "output_dir")
        # Fresh start, resume, or refusal (a finished run, a changed config, a cut backup).
        self.config_flat = flatten(to_container(cfg))
        self.plan = state.plan(
            self.worker_dir, self.config_flat, bool(cfg.resume), self.role.is_chief
        )
        self.index: DatasetIndex
        self.index, self.validation = load_index(
            cfg.dataset,
            cfg.cache_dir,
            report_file=self.worker_dir / "data_problems.txt",
            progress_mode=cfg.progress,
        )
        check_splits(cfg, self.index.counts())
        self.tracker = make_tracker(cfg.tracking) if self.role.is_chief else NullTracker()
        self.history: dict[str, list[float]] = {}
        self.precision = ""  # the dtype policy: `execute` resolves trainer.precision here

    def execute(self) -> dict[str, float]:
        """Train, restore the best checkpoint, evaluate on val and test, log everything.

        Returns:
            Final scores of the best checkpoint: ``val/<score>`` and ``test/<score>`` for loss,
            dice, miou and pixel_accuracy (test only when the split is not empty).
        """
        from segkit.app import run_steps  # lazy: TensorFlow loads once every input check passed

        self.precision, reason = run_steps.prepare(self)
        log.info("precision %s: %s", self.precision, reason)
        self.worker_dir.mkdir(parents=True, exist_ok=True)
        tags = {**self._tags(), "precision": self.precision, "precision.reason": reason}
        with state.lock(self.worker_dir):  # held until the run has ended
            return self._train_and_end(run_steps, tags)

    def _train_and_end(self, steps, tags: dict[str, str]) -> dict[str, float]:
        """Open the run, fit, evaluate and log in it, then end it FINISHED, FAILED or KILLED
        (also when opening it failed half-way, e.g. the store refused a tag)."""
        status, opened = "FAILED", False
        try:
            self._open_run(tags)
            opened = True
            with sigterm_as_interrupt(), precision_policy(self.precision):
                model, confusion = steps.fit(self)
                results = steps.evaluate(self, model, confusion)
                if self.role.is_chief:
                    steps.log_artifacts(self)
            status = "FINISHED"
            return results
        except KeyboardInterrupt as interrupt:
            status = "KILLED"
            hint = f"{interrupt}; " if str(interrupt) else ""
            raise KeyboardInterrupt(f"{hint}to resume: {self._resume_command()}") from None
        except Exception as error:
            user_error = self._record_failure(error)
            if user_error is not None:
                raise user_error from None
            raise
        finally:
            self._end_run(status)
            if opened:
                self._save_state(status)
            if status == "FINISHED":  # kept until now: a kill while evaluating resumes
                shutil.rmtree(backup_dir(self.worker_dir), ignore_errors=True)

    def _save_state(self, status: str) -> None:
        """Record how the run ended in its folder; on a full disk, say so rather than raise
        over the error that ended the run (the next start sees it unfinished and resumes)."""
        try:
            state.save_state(self.worker_dir, status=status)
        except OSError as error:
            log.warning("could not record the run as %s: %s", status, short_reason(error))

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

    def _record_failure(self, error: Exception) -> SegkitError | None:
        """Tag the run with why it failed (and the epoch it diverged in); returns the one-line
        error to raise instead when it ran out of memory or disk space."""
        import keras  # lazy: keeps TensorFlow out of start-up (training has loaded it by now)

        tags = {"failure_reason": short_reason(error)}
        if isinstance(error, TrainingDiverged) and error.epoch is not None:
            tags["diverged.epoch"] = str(error.epoch)
        memory = out_of_memory(error, self.cfg.trainer.batch_size, self.cfg.dataset.image_size)
        disk = disk_full(error, self.output_dir)
        if disk is not None:
            tags["failure_reason"] = short_reason(disk)
        if memory is not None:
            tags["failure_reason"] = short_reason(memory)
            # Free the model and the batches the failed frames hold (and stop the input
            # pipeline's threads) before anything else needs memory: ending the run.
            error.__traceback__ = None
            keras.backend.clear_session(free_memory=True)
            gc.collect()
        self.tracker.set_tags(tags)
        return memory or disk

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
            ds = self.cfg.dataset
            self.tracker.log_datasets(dataset_inputs(self.index, str(ds.name), str(ds.root)))
        if plan.resume is not None:
            count = self.tracker.backfill(plan.history)
            log.info(
                "resuming %s after %d epoch(s) + %d batch(es)%s",
                f"MLflow run {self.tracker.run_id}" if reopened else "the run",
                plan.resume.epoch,
                plan.resume.batch,
                f"; {count} epoch(s) logged from the record" if count else "",
            )
        state.save_state(
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
        tags.update({f"split.{k}.ids": self.index.ids_digest(k) for k in self.index.splits})
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
