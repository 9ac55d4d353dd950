"""The root schemas of the commands: train, inspect, evaluate, predict, export."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from omegaconf import MISSING

from segkit.config.augment import AugmentConfig
from segkit.config.dataset import DatasetConfig, ResizePolicy
from segkit.config.inference import InferenceConfig, PostprocessConfig
from segkit.config.model import ModelConfig
from segkit.config.ranges import ranged
from segkit.config.tracking import TrackingConfig
from segkit.config.trainer import TrainerConfig
from segkit.core.progress import ProgressMode


@dataclass
class TrainConfig:
    """The composed run: one option of each group plus run-wide settings."""

    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    trainer: TrainerConfig = MISSING
    augment: AugmentConfig = MISSING
    tracking: TrackingConfig = MISSING
    seed: int = ranged(0, ge=0, le=2**32 - 1)
    run_name: str | None = None
    output_dir: str | None = None
    # Rerunning into an output_dir that holds an unfinished run continues it (same MLflow run);
    # false starts afresh there, moving the unfinished run's files under superseded/.
    resume: bool = True
    cache_dir: str = MISSING
    # The value `python -m segkit.train` returns to a Hydra sweeper.
    optimized_metric: str = "val/dice"
    # Long steps: a bar on a terminal, log lines otherwise (auto); log lines (log); nothing (off).
    progress: ProgressMode = ProgressMode.auto


@dataclass
class InspectConfig:
    """``python -m segkit.inspect``: statistics and figures of a dataset, nothing trained."""

    dataset: DatasetConfig = MISSING
    tracking: TrackingConfig = MISSING
    output_dir: str | None = None
    cache_dir: str = MISSING
    run_name: str | None = None
    # Samples drawn (with `seed`) for the overlay grid.
    overlays: int = ranged(16, ge=0)
    seed: int = ranged(0, ge=0, le=2**32 - 1)
    # Decode at most this many samples per split for pixel statistics; null = all of them.
    max_samples: int | None = ranged(None, ge=1)
    # Long steps: a bar on a terminal, log lines otherwise (auto); log lines (log); nothing (off).
    progress: ProgressMode = ProgressMode.auto


@dataclass
class EvaluateConfig:
    """``python -m segkit.evaluate``: scores of a trained model at the original resolution."""

    run_id: str | None = None
    # A .keras file or models:/<name>/<version> (``model=`` on the command line).
    model_path: str | None = None
    # The training run's dataset unless a dataset option is chosen (dataset=isic ...).
    dataset: Any = None
    # Where the dataset is on this machine, when not where the run found it.
    dataset_root: str | None = None
    split: str = "test"
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    # Best and worst images shown in the gallery figure.
    gallery: int = ranged(4, ge=0)
    max_samples: int | None = ranged(None, ge=1)
    tracking: TrackingConfig = MISSING
    run_name: str | None = None
    output_dir: str | None = None
    cache_dir: str = MISSING
    # Long steps: a bar on a terminal, log lines otherwise (auto); log lines (log); nothing (off).
    progress: ProgressMode = ProgressMode.auto


@dataclass
class PredictConfig:
    """``python -m segkit.predict``: masks and overlays for a folder of images."""

    run_id: str | None = None
    model_path: str | None = None
    input: str = MISSING
    output: str = MISSING
    # Also write <name>_overlay.jpg next to each mask.
    overlays: bool = True
    # Replace files of the output folder that have the names predict writes (never an input).
    overwrite: bool = False
    # When the model comes without a run's config: the input channels are read from the model,
    # this resize policy is assumed.
    resize: ResizePolicy = ResizePolicy.resize
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    tracking: TrackingConfig = MISSING
    cache_dir: str = MISSING
    # Long steps: a bar on a terminal, log lines otherwise (auto); log lines (log); nothing (off).
    progress: ProgressMode = ProgressMode.auto


class ExportFormat(StrEnum):
    """What ``python -m segkit.export`` writes (``segkit.app.export_formats``)."""

    saved_model = "saved_model"
    tflite = "tflite"
    onnx = "onnx"


@dataclass
class ParityConfig:
    """The check of an export against the Keras model it came from, on real images."""

    # Largest allowed |p_keras - p_export| over every probability of every image.
    max_abs_diff: float = ranged(1e-4, ge=0)
    # Smallest allowed fraction of pixels with the same label (threshold or argmax).
    min_agreement: float = ranged(0.999, ge=0, le=1)
    # Images compared (the first ones of the split or folder).
    max_images: int = ranged(16, ge=1)
    batch_size: int = ranged(8, ge=1)


@dataclass
class ExportConfig:
    """``python -m segkit.export``: a trained model as a SavedModel, TFLite or ONNX file."""

    run_id: str | None = None
    model_path: str | None = None
    format: ExportFormat = ExportFormat.saved_model
    output: str = MISSING
    # Replace a previous export in ``output`` (a folder without segkit_export.json is never
    # replaced).
    overwrite: bool = False
    # Real images for the parity check (a folder or one file); the run's split when null.
    images: str | None = None
    split: str = "val"
    # Where the run's dataset is on this machine, when not where the run found it.
    dataset_root: str | None = None
    # Without a run's config: the resize policy that fits an image to the model's input.
    resize: ResizePolicy = ResizePolicy.resize
    # The binary foreground threshold recorded for consumers (softmax models use argmax).
    threshold: float = ranged(0.5, gt=0, lt=1)
    parity: ParityConfig = field(default_factory=ParityConfig)
    # Also log the export to the training run (artifacts exports/<format>/) when there is one.
    log_to_run: bool = True
    tracking: TrackingConfig = MISSING
    cache_dir: str = MISSING
