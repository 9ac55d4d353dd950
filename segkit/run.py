"""``Run``: the one object that owns a training run; ``train(cfg)`` is its importable entry point.

Data flows one way: config -> index -> pipeline -> model -> metrics -> tracker. Everything that can
be wrong with the user's input (config values, dataset files, the output directory) is checked
before TensorFlow is imported and before an MLflow run exists, so a user mistake never leaves a run
behind. Once the MLflow run is started it is always ended: FINISHED, FAILED, or KILLED on Ctrl-C
or SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import math
import platform
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

import segkit
from segkit import paths
from segkit.config import option_value, to_container, validate
from segkit.data import load_index
from segkit.errors import ConfigError, TrainingDiverged
from segkit.tracking import flatten, make_tracker

log = logging.getLogger(__name__)
SCORES = ("loss", "dice", "miou", "pixel_accuracy")


class Run:
    """One training run of a composed config: data, model, trainer and tracker.

    Constructing a ``Run`` validates the config, checks the output directory, indexes the
    dataset and validates its files; nothing heavy is imported yet and nothing is logged.
    ``execute`` trains, evaluates and logs.
    """

    def __init__(self, cfg: DictConfig):
        validate(cfg)
        self.cfg = cfg
        self.output_dir = paths.resolve_output_dir(cfg.output_dir)
        _check_output_dir(self.output_dir)
        self.index, self.validation = load_index(
            cfg.dataset, cfg.cache_dir, report_file=self.output_dir / "data_problems.txt"
        )
        self.tracker = make_tracker(cfg.tracking)
        self.history: dict[str, list[float]] = {}

    def execute(self) -> dict[str, float]:
        """Train, restore the best checkpoint, evaluate on val and test, log everything.

        Returns:
            Final scores of the best checkpoint: ``val/<score>`` and ``test/<score>`` for loss,
            dice, miou and pixel_accuracy (test only when the split is not empty).
        """
        import keras  # heavy imports start here, after every input check passed

        from segkit import trainer

        cfg = self.cfg
        trainer.configure_logical_cpus(int(cfg.trainer.logical_cpu_devices))
        keras.utils.set_random_seed(int(cfg.seed))
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.tracker.start(self._run_name(), self._params(), self._tags())
        status = "FAILED"
        try:
            with (
                _sigterm_as_interrupt(),
                trainer.precision_policy(option_value(cfg.trainer.precision)),
            ):
                model, confusion = self.fit()
                results = self.evaluate(model, confusion)
                self._log_artifacts()
            status = "FINISHED"
            return results
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        except Exception as error:
            self.tracker.set_tags({"failure_reason": _one_line(error)})
            raise
        finally:
            self.tracker.end(status)

    def fit(self):
        """Build the model under the strategy and fit it; returns (model, confusion metric)."""
        from segkit import trainer
        from segkit.data.pipeline import make_dataset
        from segkit.models import build_model

        cfg, tcfg = self.cfg, self.cfg.trainer
        strategy = trainer.make_strategy(tcfg)
        train_samples = self.index.splits["train"]
        steps = trainer.steps_per_epoch(
            len(train_samples), int(tcfg.batch_size), tcfg.limit_train_batches
        )
        with strategy.scope():
            model = build_model(cfg.model, cfg.dataset)
            confusion = trainer.compile_model(model, tcfg, cfg.dataset, steps)
        replicas = strategy.num_replicas_in_sync
        self.tracker.set_tags(
            {"replicas": str(replicas), "model.parameters": str(model.count_params())}
        )
        log.info(
            "model %s: %d parameters, %d replica(s), precision %s",
            model.name,
            model.count_params(),
            replicas,
            option_value(tcfg.precision),
        )
        train_ds = make_dataset(
            train_samples,
            cfg.dataset,
            batch_size=int(tcfg.batch_size),
            training=True,
            seed=int(cfg.seed),
            limit_batches=tcfg.limit_train_batches,
            labels=self.index.labels,
            augment=cfg.augment,
            epochs=int(tcfg.epochs),
            cache_dir=cfg.cache_dir,
        )
        val_ds = self._eval_dataset("val")
        metrics_logger = trainer.MetricsLogger(self.tracker)
        callbacks = trainer.build_callbacks(tcfg, self.output_dir) + [metrics_logger]
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=int(tcfg.epochs),
            # The training dataset holds every epoch (each shuffled and augmented from the
            # seed and its epoch number): Keras reads it as one stream.
            steps_per_epoch=steps,
            callbacks=callbacks,
            verbose=int(tcfg.verbose),
            shuffle=False,
        )
        self.history = metrics_logger.history
        _check_finite(self.history.get("train/loss", []))
        return model, confusion

    def evaluate(self, model, confusion) -> dict[str, float]:
        """Restore the best checkpoint and score it on val and, if not empty, test."""
        import keras

        from segkit.metrics import scores_numpy

        best = paths.best_checkpoint(self.output_dir)
        if best.is_file():
            model.set_weights(keras.saving.load_model(best, compile=False).get_weights())
        names = list(self.cfg.dataset.class_names or range(int(self.cfg.dataset.num_classes)))
        results: dict[str, float] = {}
        for split in ("val", "test"):
            if not self.index.splits.get(split):
                continue
            logs = model.evaluate(self._eval_dataset(split), return_dict=True, verbose=0)
            split_scores = {f"{split}/{k}": float(logs[k]) for k in SCORES}
            per_class = scores_numpy(confusion.matrix.numpy())
            for i, name in enumerate(names):
                for kind in ("dice", "iou"):
                    value = per_class[f"{kind}_per_class"][i]
                    if value == value:  # NaN: class absent from labels and predictions
                        split_scores[f"{split}/{kind}/{name}"] = float(value)
            results.update(split_scores)
        epochs = len(next(iter(self.history.values()), []))
        self.tracker.log_metrics({_best_name(k): v for k, v in results.items()}, step=epochs)
        log.info(
            "final scores: %s",
            ", ".join(f"{k}={v:.4f}" for k, v in results.items() if k.count("/") == 1),
        )
        return results

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

    def _run_name(self) -> str:
        return self.cfg.run_name or f"{self.cfg.model.name}-{self.cfg.dataset.name}"

    def _params(self) -> dict[str, str]:
        params = flatten(to_container(self.cfg))
        params.update({f"data.{k}_samples": str(v) for k, v in self.index.counts().items()})
        return params

    def _tags(self) -> dict[str, str]:
        import keras
        import tensorflow as tf

        tags = {
            "segkit.version": segkit.__version__,
            "tensorflow.version": tf.__version__,
            "keras.version": keras.__version__,
            "python.version": platform.python_version(),
            "seed": str(self.cfg.seed),
            "output_dir": str(self.output_dir),
        }
        tags.update({f"split.{k}": v for k, v in self.index.origin.items()})
        tags["data.validation"] = self.validation.describe()
        overrides = _hydra_overrides()
        if overrides is not None:
            tags["hydra.overrides"] = " ".join(overrides) or "(none)"
        return tags


def train(cfg: DictConfig) -> dict[str, float]:
    """Train the model the config describes and return the best checkpoint's final scores.

    Importable without Hydra: pass a config composed with ``hydra.compose`` (or built by hand)
    whose ``output_dir`` is set.

    Raises:
        ConfigError, DataError: a user mistake, found before anything is trained or logged.
    """
    return Run(cfg).execute()


def _check_output_dir(output_dir: Path) -> None:
    """Refuse to write over a finished run's checkpoint (an unfinished one is resumed)."""
    best = paths.best_checkpoint(output_dir)
    if best.exists() and not paths.backup_dir(output_dir).exists():
        raise ConfigError(
            f"output_dir={output_dir} already holds a finished run ({best}); "
            "choose a new output_dir to train again"
        )


def _hydra_overrides() -> list[str] | None:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return list(HydraConfig.get().overrides.task)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (Slurm's pre-emption notice, `kill`) like Ctrl-C while training."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_finite(losses: list[float]) -> None:
    """Raise ``TrainingDiverged`` if a training loss was NaN or infinite (TerminateOnNaN)."""
    for epoch, loss in enumerate(losses):
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"training diverged in epoch {epoch + 1} (train/loss={loss}); the best "
                "checkpoint so far is kept; try a lower trainer.optimizer.lr"
            )


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:500]


def _best_name(key: str) -> str:
    """``val/dice`` -> ``best/val/dice``: scores of the restored best checkpoint."""
    return key if key.startswith("test/") else f"best/{key}"


__all__ = ["Run", "train"]
