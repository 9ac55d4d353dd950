"""The work behind ``python -m segkit.evaluate`` and ``python -m segkit.predict``.

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

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from segkit import hydra_job
from segkit.config import SCHEMAS, option_value, to_container, validate
from segkit.data.geometry import Policy
from segkit.data.index import SPLITS, is_image
from segkit.errors import ConfigError, DataError
from segkit.evaluation import model_io
from segkit.evaluation.inference import Predictor, settings_from_config
from segkit.evaluation.postprocess import PostprocessSettings
from segkit.tracking import flatten, make_tracker

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate the model of ``cfg`` (an ``evaluate`` config) on ``cfg.split``; returns scores.

    Raises:
        ConfigError, DataError: a user mistake (no such run, split, dataset), before any MLflow
            run is started.
    """
    validate(cfg)
    if cfg.split not in SPLITS:
        raise ConfigError(f"split={cfg.split!r}: expected one of {', '.join(SPLITS)}")
    settings = settings_from_config(cfg.inference)
    post = _postprocess(cfg)
    output_dir = hydra_job.output_dir(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        return _evaluate(cfg, settings, post, output_dir, Path(workdir))


def _evaluate(cfg, settings, post, output_dir: Path, workdir: Path) -> dict[str, float]:
    from segkit.data import load_index
    from segkit.evaluation.evaluator import evaluate_split

    source = model_io.resolve(cfg.model_path, cfg.run_id, str(cfg.tracking.uri), workdir)
    dataset = _dataset(cfg, source)
    index, _ = load_index(dataset, cfg.cache_dir)
    samples = index.splits.get(cfg.split) or []
    if not samples:
        raise DataError(f"split={cfg.split}: no samples in this split of dataset {dataset.name}")
    if cfg.max_samples:
        samples = samples[: int(cfg.max_samples)]
    _check_model(source.model, dataset)
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
    tags = {"segkit.kind": "evaluation", "output_dir": str(output_dir)}
    with tracker.running(cfg.run_name or f"evaluate-{cfg.split}", params, tags):
        result = evaluate_split(
            samples,
            index.labels,
            dataset,
            predictor,
            post,
            output_dir,
            prefix=str(cfg.split),
            gallery=int(cfg.gallery),
        )
        tracker.log_metrics(result.scores, step=0)
        for path in result.files:
            tracker.log_artifact(path, "figures" if path.suffix == ".png" else None)
    log.info(
        "%s at original resolution (%d images): %s",
        cfg.split,
        len(samples),
        ", ".join(f"{k}={v:.4f}" for k, v in result.scores.items() if k.count("/") == 1),
    )
    return result.scores


def _postprocess(cfg: DictConfig) -> PostprocessSettings:
    if cfg.postprocess.min_size < 0:
        raise ConfigError(f"postprocess.min_size={cfg.postprocess.min_size}: expected >= 0")
    return PostprocessSettings(
        bool(cfg.postprocess.largest),
        int(cfg.postprocess.min_size),
        bool(cfg.postprocess.fill_holes),
    )


def _dataset(cfg: DictConfig, source: model_io.ModelSource) -> DictConfig:
    """The dataset to evaluate on: the chosen option, else the training run's own (with its
    split files, so the split is exactly the one the run held out)."""
    if cfg.dataset is not None:
        dataset = cfg.dataset
    elif (dataset := _run_dataset(source)) is not None:
        if source.splits is not None:
            dataset.split.files = str(source.splits)
    else:
        raise ConfigError(
            f"{source.description}: no training config found; choose the dataset with "
            "dataset=<name> dataset.root=..."
        )
    if cfg.dataset_root:
        dataset = OmegaConf.merge(dataset, {"root": str(cfg.dataset_root)})
    validate(OmegaConf.create({"dataset": dataset}))
    return dataset


def _run_dataset(source: model_io.ModelSource) -> DictConfig | None:
    """The training run's dataset node merged into today's schema (a run logged by an older
    segkit lacks the keys added since), or None without a training config."""
    if source.config is None or "dataset" not in source.config:
        return None
    schema = OmegaConf.structured(SCHEMAS["dataset"][str(source.config.dataset.name)])
    return OmegaConf.merge(schema, source.config.dataset)


def _tracking(cfg: DictConfig, source: model_io.ModelSource) -> DictConfig:
    """The tracking node, nesting the run under the training run in the training experiment."""
    tracking = cfg.tracking.copy()
    if not tracking.enabled or source.run_id is None:
        return tracking
    from mlflow import MlflowClient

    client = MlflowClient(str(tracking.uri))
    run = client.get_run(source.run_id)
    with open_dict(tracking):
        tracking.experiment = client.get_experiment(run.info.experiment_id).name
        tracking.parent_run_id = source.run_id
    return tracking


def _check_model(model, dataset: DictConfig) -> None:
    size, channels = model.input_shape[1], model.input_shape[-1]
    if size is not None and int(size) != int(dataset.image_size):
        raise ConfigError(
            f"dataset.image_size={dataset.image_size} but the model takes {size} px inputs"
        )
    if int(channels) != int(dataset.channels):
        raise ConfigError(f"dataset.channels={dataset.channels} but the model takes {channels}")


def predict(cfg: DictConfig) -> list[Path]:
    """Write a mask (and overlay) per image of ``cfg.input``; returns the masks written.

    Masks are 0/255 PNGs for binary models and palette PNGs of class indices otherwise, each at
    its image's size, named ``<stem>.png`` (``<stem>_overlay.jpg`` for overlays).

    Raises:
        ConfigError, DataError: no model, no images, an output inside the input folder.
    """
    from segkit.data.decode import header_size, read_image

    settings = settings_from_config(cfg.inference)
    post = _postprocess(cfg)
    images = _input_images(Path(str(cfg.input)).expanduser())
    output = Path(str(cfg.output)).expanduser().resolve()
    with tempfile.TemporaryDirectory() as workdir:  # downloads; the model is then in memory
        source = model_io.resolve(cfg.model_path, cfg.run_id, str(cfg.tracking.uri), Path(workdir))
    model = source.model
    output.mkdir(parents=True, exist_ok=True)
    dataset = _run_dataset(source)
    if dataset is not None:
        policy = Policy.from_config(dataset)
        num_classes, ignore = int(dataset.num_classes), int(dataset.ignore_index)
    else:
        size = int(model.input_shape[1])
        policy = Policy(option_value(cfg.resize), size)
        outputs = int(model.output_shape[-1])
        num_classes, ignore = (2 if outputs == 1 else outputs), 255
    predictor = Predictor(model, policy, settings)
    channels = int(model.input_shape[-1])
    written = []
    for path in images:
        height, width = header_size(str(path))
        image, _ = read_image(str(path), None, channels, predictor.request(height, width))
        labels = post.apply(
            predictor.labels(predictor.probabilities(image, (height, width))), num_classes
        )
        mask_file = output / f"{path.stem}.png"
        _write_mask(labels, num_classes, mask_file)
        written.append(mask_file)
        if cfg.overlays:
            # Decoded again only when the model's input was smaller or not RGB.
            full = image if image.shape == (height, width, 3) else read_image(str(path), None, 3)[0]
            _write_overlay(full, labels, num_classes, ignore, output / f"{path.stem}_overlay.jpg")
    log.info("wrote %d masks to %s", len(written), output)
    return written


def _input_images(path: Path) -> list[Path]:
    if path.is_file():
        if not is_image(path):
            raise DataError(f"input={path}: not an image file")
        return [path]
    if not path.is_dir():
        raise DataError(f"input={path}: no such file or folder")
    images = [p for p in sorted(path.iterdir()) if is_image(p)]
    if not images:
        raise DataError(f"input={path}: no images in the folder")
    stems = [p.stem for p in images]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise DataError(f"input={path}: several images named {duplicates[0]}.* (masks would clash)")
    return images


def _write_mask(labels: np.ndarray, num_classes: int, path: Path) -> None:
    from PIL import Image

    from segkit.evaluation.figures import label_colours

    if num_classes == 2:
        Image.fromarray((labels > 0).astype(np.uint8) * 255).save(path)
        return
    image = Image.fromarray(labels, mode="P")
    palette = (label_colours(num_classes)[:, :3] * 255).astype(np.uint8)
    palette[0] = 0
    image.putpalette(palette.ravel().tolist())
    image.save(path)


def _write_overlay(image, labels, num_classes, ignore, path: Path) -> None:
    from PIL import Image

    from segkit.evaluation.figures import label_colours

    colours = (label_colours(num_classes, ignore)[:, :3] * 255).astype(np.float32)
    foreground = (labels > 0) & (labels != ignore)
    blended = image.astype(np.float32)
    blended[foreground] = 0.5 * blended[foreground] + 0.5 * colours[labels[foreground]]
    Image.fromarray(blended.astype(np.uint8)).save(path, quality=90)
