"""``python -m segkit.evaluate``: a trained model's scores on a split at the original resolution.

An evaluation by run id is logged as a new MLflow run nested under the training run (tag
``mlflow.parentRunId``, ``segkit.kind=evaluation``), not into the training run itself: the
training run stays as it finished (its status, end time and final metrics at training size), and
each evaluation keeps its own settings (split, threshold, TTA, post-processing) as params, so
several evaluations of one model sit side by side under it in the MLflow UI.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from segkit.app import hydra_job
from segkit.config.validate import check_model_input, validate
from segkit.config.values import to_container
from segkit.core.errors import ConfigError, DataError
from segkit.core.naming import is_split_score
from segkit.data import load_index
from segkit.data.fingerprint import dataset_inputs
from segkit.data.geometry import Policy
from segkit.data.index import DatasetIndex, ids_digest
from segkit.evaluation import model_source
from segkit.evaluation.evaluator import evaluate_split
from segkit.evaluation.inference import Predictor
from segkit.tracking.tracker import flatten, make_tracker

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate the model of ``cfg`` (an ``evaluate`` config) on ``cfg.split``; returns scores.

    Raises:
        ConfigError, DataError: a user mistake (no such run, split, dataset), before any MLflow
            run is started.
    """
    validate(cfg)
    output_dir = hydra_job.output_dir(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        return _evaluate(cfg, output_dir, Path(workdir))


def _evaluate(cfg: DictConfig, output_dir: Path, workdir: Path) -> dict[str, float]:
    source = model_source.resolve(cfg.model_path, cfg.run_id, str(cfg.tracking.uri), workdir)
    dataset = _dataset(cfg, source)
    index, _ = load_index(dataset, cfg.cache_dir, progress_mode=cfg.progress)
    samples = index.splits.get(cfg.split) or []
    if not samples:
        raise DataError(f"split={cfg.split}: no samples in this split of dataset {dataset.name}")
    if cfg.max_samples:
        samples = samples[: int(cfg.max_samples)]
    check_model_input(source.model.input_shape, dataset)
    settings = OmegaConf.to_object(cfg.inference)
    predictor = Predictor(source.model, Policy.from_config(dataset), settings)
    tracker = make_tracker(_tracking(cfg, source))
    params = flatten(
        {
            "split": cfg.split,
            "source": source.description,
            "dataset": to_container(dataset),
            "inference": {**to_container(cfg.inference), "resolved_mode": predictor.mode},
            "postprocess": to_container(cfg.postprocess),
            "samples": len(samples),
        }
    )
    tags = {
        "segkit.kind": "evaluation",
        "output_dir": str(output_dir),
        "split.ids": ids_digest([s.id for s in samples]),
    }
    with tracker.running(cfg.run_name or f"evaluate-{cfg.split}", params, tags):
        evaluated = DatasetIndex(splits={str(cfg.split): samples})
        tracker.log_datasets(dataset_inputs(evaluated, str(dataset.name), str(dataset.root)))
        result = evaluate_split(
            samples,
            index.labels,
            dataset,
            predictor,
            OmegaConf.to_object(cfg.postprocess),
            output_dir,
            prefix=str(cfg.split),
            gallery=int(cfg.gallery),
            progress_mode=cfg.progress,
        )
        tracker.log_metrics(result.scores, step=0)
        for path in result.files:
            tracker.log_artifact(path, "figures" if path.suffix == ".png" else None)
    log.info(
        "%s at original resolution (%d images): %s",
        cfg.split,
        len(samples),
        ", ".join(f"{k}={v:.4f}" for k, v in result.scores.items() if is_split_score(k)),
    )
    return result.scores


def _dataset(cfg: DictConfig, source: model_source.ModelSource) -> DictConfig:
    """The dataset to evaluate on: the chosen option, else the training run's own (with its
    split files, so the split is exactly the one the run held out)."""
    if cfg.dataset is not None:
        dataset = cfg.dataset
    elif (dataset := model_source.run_dataset(source)) is not None:
        if source.splits is not None:
            # The run's own id lists; they replace the folds that drew them (a fold run's val
            # and test are in them), which validation refuses beside split.files.
            dataset.split.files = str(source.splits)
            if dataset.split.get("folds") is not None:
                dataset.split.folds = dataset.split.fold = None
    else:
        raise ConfigError(
            f"{source.description}: no training config found; choose the dataset with "
            "dataset=<name> dataset.root=..."
        )
    if cfg.dataset_root:
        dataset = OmegaConf.merge(dataset, {"root": str(cfg.dataset_root)})
    validate(OmegaConf.create({"dataset": dataset}))
    return dataset


def _tracking(cfg: DictConfig, source: model_source.ModelSource) -> DictConfig:
    """The tracking node, nesting the run under the training run in the training experiment."""
    tracking = cfg.tracking.copy()
    if not tracking.enabled or source.run_id is None:
        return tracking
    from mlflow import MlflowClient  # lazy: MLflow takes seconds to import; only runs need it

    client = MlflowClient(str(tracking.uri))
    run = client.get_run(source.run_id)
    with open_dict(tracking):
        tracking.experiment = client.get_experiment(run.info.experiment_id).name
        tracking.parent_run_id = source.run_id
    return tracking
