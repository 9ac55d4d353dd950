"""Every check of a composed config that a single field's type cannot express.

``validate`` runs on any command's config (train, inspect, evaluate, predict) before TensorFlow is
loaded and before an MLflow run exists: each group present is checked, including each dataset and
model schema's own ``check``. ``check_model_input`` and ``check_splits`` hold the two checks that
need what only a later step knows (a loaded model's input, a dataset's split sizes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf

from segkit.config.dataset import DatasetConfig
from segkit.config.inference import InferenceMode
from segkit.config.loss import parse_loss
from segkit.config.model import ModelConfig
from segkit.config.ranges import check_ranges
from segkit.config.values import option_value
from segkit.core.errors import ConfigError
from segkit.core.naming import (
    CLASS_SCORES,
    EPOCH_SCORES,
    SPLITS,
    class_names,
    metric_name,
    parse_metric,
)


def validate(cfg: DictConfig) -> None:
    """Check the combinations a single field's type cannot express.

    Raises:
        ConfigError: naming the key at fault and the values that would work.
    """
    _check_known_keys(cfg, "")
    check_ranges(cfg)
    if "dataset" in cfg and cfg.dataset is not None:  # evaluate: the run's dataset, checked later
        _validate_dataset(cfg.dataset)
    if "augment" in cfg:
        _validate_augment(cfg.augment)
    if "model" in cfg and "dataset" in cfg:
        schema = OmegaConf.get_type(cfg.model)
        if isinstance(schema, type) and issubclass(schema, ModelConfig):
            schema.check(cfg)
    if "trainer" in cfg:
        _validate_trainer(cfg.trainer, cfg.get("dataset"))
    if "optimized_metric" in cfg:
        _check_optimized_metric(str(cfg.optimized_metric), cfg.get("dataset"))
    if isinstance(cfg.get("split"), str) and cfg.split not in SPLITS:  # evaluate's split
        raise ConfigError(f"split={cfg.split!r}: expected one of {', '.join(SPLITS)}")
    if "inference" in cfg:
        _validate_inference(cfg.inference)


def check_model_input(input_shape: tuple, dataset: DictConfig) -> None:
    """A loaded model's input ``(batch, size, size, channels)`` against the ``dataset`` node."""
    size, channels = input_shape[1], input_shape[-1]
    if size is not None and int(size) != int(dataset.image_size):
        raise ConfigError(
            f"dataset.image_size={dataset.image_size} but the model takes {size} px inputs"
        )
    if int(channels) != int(dataset.channels):
        raise ConfigError(f"dataset.channels={dataset.channels} but the model takes {channels}")


def check_splits(cfg: DictConfig, counts: Mapping[str, int]) -> None:
    """A training config against the sizes of its dataset's splits (once the data is indexed)."""
    if cfg.optimized_metric.startswith("test/") and not counts.get("test"):
        raise ConfigError(
            f"optimized_metric={cfg.optimized_metric} but dataset {cfg.dataset.name!r} has "
            "no test split: optimise a val/ score"
        )


def _validate_dataset(ds: DictConfig) -> None:
    schema = OmegaConf.get_type(ds)
    schema = schema if isinstance(schema, type) and issubclass(schema, DatasetConfig) else None
    expected = schema.classes(ds) if schema is not None else None
    if expected is not None and ds.num_classes != expected:
        raise ConfigError(
            f"dataset.num_classes={ds.num_classes}: dataset {ds.name!r} has {expected} classes"
            f"{' (binary masks)' if expected == 2 else ''}"
        )
    if 0 <= ds.ignore_index < ds.num_classes or not 0 <= ds.ignore_index <= 255:
        raise ConfigError(
            f"dataset.ignore_index={ds.ignore_index}: expected a label value in "
            f"{ds.num_classes}..255, outside the classes 0..{ds.num_classes - 1} "
            "(255 by convention)"
        )
    if ds.class_names is not None and len(ds.class_names) != ds.num_classes:
        raise ConfigError(
            f"dataset.class_names has {len(ds.class_names)} names but dataset.num_classes="
            f"{ds.num_classes}"
        )
    if ds.channels not in (1, 3):
        raise ConfigError(f"dataset.channels={ds.channels}: expected 1 or 3")
    split = ds.split
    check_folds(split)
    if split.val + split.test >= 1:
        raise ConfigError(
            f"dataset.split val={split.val} test={split.test}: expected fractions that leave "
            "samples to train on (val + test < 1)"
        )
    _validate_rescale(ds)
    if schema is not None:
        schema.check(ds)


def check_folds(split: DictConfig) -> None:
    """``dataset.split.folds``/``fold``: both or neither, K >= 2, a fold in 0..K-1, no id lists.

    Raises:
        ConfigError: naming the key at fault and the values that would work.
    """
    folds, fold = split.get("folds"), split.get("fold")
    if folds is None:
        if fold is not None:
            raise ConfigError(
                f"dataset.split.fold={fold} needs dataset.split.folds=K (the number of folds)"
            )
        return
    if folds < 2:
        raise ConfigError(f"dataset.split.folds={folds}: expected >= 2 folds (or null for none)")
    if fold is None or not 0 <= fold < folds:
        raise ConfigError(
            f"dataset.split.fold={fold}: expected a fold in 0..{folds - 1} for "
            f"dataset.split.folds={folds} (one run per fold: -m dataset.split.fold="
            f"{','.join(str(i) for i in range(folds))})"
        )
    if split.files:
        raise ConfigError(
            f"dataset.split.folds={folds} with dataset.split.files={split.files}: the id lists fix "
            "every split; give one or the other"
        )


def _validate_rescale(ds: DictConfig) -> None:
    crop = option_value(ds.resize) in ("random_crop", "center_crop")
    if ds.rescale is not None and not crop:
        raise ConfigError(
            f"dataset.rescale={ds.rescale} only applies to dataset.resize=random_crop or "
            f"center_crop, not {option_value(ds.resize)}: set dataset.rescale=null"
        )
    if ds.rescale is not None and ds.rescale < ds.image_size:
        raise ConfigError(
            f"dataset.rescale={ds.rescale}: expected >= dataset.image_size={ds.image_size} "
            "(the shorter side must hold an image_size crop)"
        )


def _validate_augment(aug: DictConfig) -> None:
    if "scale" in aug:
        scale = list(aug.scale)
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ConfigError(f"augment.scale={scale}: expected [low, high] with 0 < low <= high")


def _validate_trainer(trainer: DictConfig, dataset: DictConfig | None) -> None:
    if dataset is not None:
        _validate_loss(trainer, int(dataset.num_classes))
    monitors = [metric_name("val", score) for score in EPOCH_SCORES]
    if trainer.monitor not in monitors:
        raise ConfigError(
            f"trainer.monitor={trainer.monitor!r}: expected one of {', '.join(monitors)}"
        )


def _validate_loss(trainer: DictConfig, num_classes: int) -> None:
    """The loss expression parses and every option is in its range."""
    parse_loss(trainer.loss)
    opts = trainer.loss_options
    weights = opts.ce.class_weights
    if weights is not None and (
        len(weights) != num_classes or min(weights) < 0 or max(weights) <= 0
    ):
        raise ConfigError(
            f"trainer.loss_options.ce.class_weights={list(weights)}: expected "
            f"dataset.num_classes={num_classes} weights >= 0 (background first), not all 0"
        )
    if opts.tversky.alpha + opts.tversky.beta <= 0:
        raise ConfigError("trainer.loss_options.tversky: alpha + beta must be > 0")


def _validate_inference(inference: DictConfig) -> None:
    modes = tuple(m.value for m in InferenceMode)
    if inference.mode not in modes:
        raise ConfigError(f"inference.mode={inference.mode!r}: expected one of {modes}")


def _check_known_keys(node: DictConfig, path: str) -> None:
    """Reject keys a schema does not define (Hydra's ``+key=value`` can add them)."""
    schema = OmegaConf.get_type(node)
    if dataclasses.is_dataclass(schema):
        known = [f.name for f in dataclasses.fields(schema)]
        unknown = [str(k) for k in node if k not in known]
        if unknown:
            key = f"{path}{unknown[0]}"
            raise ConfigError(f"unknown config key {key}; valid keys here: {', '.join(known)}")
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            _check_known_keys(child, f"{path}{key}.")


def _check_optimized_metric(metric: str, dataset: DictConfig | None) -> None:
    """A final score a run returns: ``val|test/<score>`` or ``val|test/<dice|iou>/<class>``."""
    split, score, class_name = parse_metric(metric)
    names = class_names(dataset) if dataset is not None and "num_classes" in dataset else []
    if split in ("val", "test") and (
        (not class_name and score in EPOCH_SCORES)
        or (score in CLASS_SCORES and class_name in names)
    ):
        return
    per_class = f"val/dice/{names[-1]}" if names else "val/dice/<class name>"
    raise ConfigError(
        f"optimized_metric={metric!r}: expected val/ or test/ followed by one of "
        f"{', '.join(EPOCH_SCORES)}, or a class's score such as {per_class}"
    )
