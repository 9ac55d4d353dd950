"""Model schemas and their composition-time checks (imports nothing heavy).

Each schema lists the keyword arguments of its builder in ``segkit.models.MODELS`` (its ``name``
default is the option name and the builder's key there); ``check``
holds the rules a single field's type cannot express, such as the input sizes a model accepts, so
that an impossible combination fails before TensorFlow is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

from omegaconf import MISSING, DictConfig

from segkit.core.errors import ConfigError


class Upsampling(StrEnum):
    """How a UNet decoder doubles the resolution."""

    transpose = "transpose"
    bilinear = "bilinear"


@dataclass
class ModelConfig:
    """Fields every model has. ``name`` selects the builder in ``segkit.models.MODELS``.

    Every other field is passed to the builder as a keyword argument, except those listed in
    ``TRAINING_KEYS``: they configure how the model is trained (read by ``segkit.training.fit``).
    """

    name: str = MISSING
    TRAINING_KEYS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check(cls, cfg: DictConfig) -> None:
        """Model-specific checks of the composed config (input size, files); none by default.

        Raises:
            ConfigError: naming the key at fault and the values that would work.
        """


def check_input_size(size: int, step: int, minimum: int, reason: str) -> None:
    """Require ``dataset.image_size`` to be a multiple of ``step`` and at least ``minimum``."""
    if size % step or size < minimum:
        start = -(-minimum // step) * step
        ok = ", ".join(str(v) for v in range(max(start, 32), max(start, 32) + 8 * step, step))
        raise ConfigError(
            f"dataset.image_size={size} does not fit {reason}: expected a multiple of {step} "
            f"of at least {minimum}, e.g. {ok}"
        )


@dataclass
class UNetConfig(ModelConfig):
    """Classic UNet (Ronneberger et al. 2015); base_filters=64, depth=4 is the paper's."""

    name: str = "unet"
    base_filters: int = 16
    depth: int = 4
    batch_norm: bool = True
    dropout: float = 0.0
    upsampling: Upsampling = Upsampling.transpose

    @classmethod
    def check(cls, cfg: DictConfig) -> None:
        """The input must halve ``depth`` times without remainder."""
        check_depth(cfg)


@dataclass
class ImprovedUNetConfig(ModelConfig):
    """Improved UNet (Isensee et al. 2017, arXiv 1802.10508) as the ISIC seed projects use it.

    ``depth`` stride-2 steps (4: five levels of 16..256 filters at base_filters=16); context
    modules are pre-activation residual blocks with instance normalisation; deep supervision sums
    segmentation maps from the three highest-resolution decoder levels into the one output.
    """

    name: str = "improved_unet"
    base_filters: int = 16
    depth: int = 4
    # Dropout between the two convolutions of every context module.
    dropout: float = 0.3
    negative_slope: float = 0.01
    deep_supervision: bool = True

    @classmethod
    def check(cls, cfg: DictConfig) -> None:
        """The input must halve ``depth`` times without remainder."""
        check_depth(cfg)


def check_depth(cfg: DictConfig) -> None:
    """A model that halves its input ``model.depth`` times needs a multiple of 2**depth."""
    depth = int(cfg.model.depth)
    if depth < 1:
        raise ConfigError(f"model.depth={depth}: expected >= 1")
    step = 2**depth
    check_input_size(
        int(cfg.dataset.image_size), step, step, f"model.depth={depth} (2**{depth}={step})"
    )


@dataclass
class EncoderConfig:
    """A MobileNetV2 encoder: initial weights (a local file; nothing is downloaded) and freezing."""

    # null = random initialisation; else a local MobileNetV2 no-top weights file (.h5/.weights.h5),
    # e.g. Keras' mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5.
    weights: str | None = None
    trainable: bool = True
    # MobileNetV2 width multiplier; must match the weights file.
    alpha: float = 1.0


@dataclass
class MobileNetUNetConfig(ModelConfig):
    """The TensorFlow segmentation tutorial's model: MobileNetV2 encoder, pix2pix decoder."""

    name: str = "mobilenet_unet"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    # Filters of the four transposed-convolution upsampling blocks, deepest first.
    decoder_filters: list[int] = field(default_factory=lambda: [512, 256, 128, 64])
    dropout: float = 0.0
    # Train with a frozen encoder (encoder.trainable=false) up to this epoch, then unfreeze it
    # and continue with the learning rate times fine_tune_lr_factor; null = no fine-tuning phase.
    fine_tune_at: int | None = None
    fine_tune_lr_factor: float = 0.1
    TRAINING_KEYS: ClassVar[tuple[str, ...]] = ("fine_tune_at", "fine_tune_lr_factor")
    # MobileNetV2 halves the input five times (block_16_project is at 1/32 of the input).
    STRIDE: ClassVar[int] = 32

    @classmethod
    def check(cls, cfg: DictConfig) -> None:
        """Input size, weights file, and a fine-tuning epoch inside the run."""
        model = cfg.model
        check_input_size(
            int(cfg.dataset.image_size),
            cls.STRIDE,
            cls.STRIDE,
            "model=mobilenet_unet (the MobileNetV2 encoder halves the input 5 times)",
        )
        if len(model.decoder_filters) != 4:
            raise ConfigError(
                f"model.decoder_filters has {len(model.decoder_filters)} values: expected 4, "
                "one per upsampling block from 1/32 to 1/2 of the input"
            )
        weights = encoder_weights_file(model.encoder.weights)
        if not model.encoder.trainable and weights is None:
            raise ConfigError(
                "model.encoder.trainable=false with model.encoder.weights=null would freeze a "
                "randomly initialised encoder: give a weights file or set trainable=true"
            )
        at = model.fine_tune_at
        if at is None:
            return
        if model.encoder.trainable:
            raise ConfigError(
                f"model.fine_tune_at={at} needs model.encoder.trainable=false (the encoder is "
                "frozen until then)"
            )
        # Configs without a trainer (segkit.inspect) have no epochs to check against.
        epochs = int(cfg.trainer.epochs) if "trainer" in cfg else at + 1
        if not 1 <= at < epochs:
            raise ConfigError(
                f"model.fine_tune_at={at}: expected an epoch from 1 to "
                f"trainer.epochs-1={epochs - 1}"
            )
        if not model.fine_tune_lr_factor > 0:
            raise ConfigError(
                f"model.fine_tune_lr_factor={model.fine_tune_lr_factor}: expected > 0"
            )


def encoder_weights_file(weights: str | None) -> str | None:
    """The path of ``model.encoder.weights`` with ``~`` expanded, or None (random weights).

    Raises:
        ConfigError: the file does not exist (nothing is ever downloaded).
    """
    if weights is None:
        return None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"model.encoder.weights={weights}: no such file (nothing is downloaded: give a "
            "local MobileNetV2 no-top weights file, or null for random initial weights)"
        )
    return str(path)


# Option name -> schema (the ConfigStore's schema/model group).
MODEL_SCHEMAS: dict[str, type[ModelConfig]] = {
    schema.name: schema for schema in (UNetConfig, ImprovedUNetConfig, MobileNetUNetConfig)
}
