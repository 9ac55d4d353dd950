"""Model schemas and their composition-time checks (imports nothing heavy).

Each schema lists the keyword arguments of its builder in ``segkit.models.MODELS`` (its ``name``
default is the option name and the builder's key there); ``check``
holds the rules a single field's type cannot express, such as the input sizes a model accepts, so
that an impossible combination fails before TensorFlow is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from omegaconf import MISSING, DictConfig

from segkit.config.encoders import ENCODERS
from segkit.config.ranges import ranged
from segkit.config.weights import IMAGENET, encoder_weights
from segkit.core.errors import ConfigError, lookup


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
    base_filters: int = ranged(16, ge=1)
    depth: int = ranged(4, ge=1, le=10)
    batch_norm: bool = True
    dropout: float = ranged(0.0, ge=0, lt=1, note="a rate")
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
    base_filters: int = ranged(16, ge=1)
    depth: int = ranged(4, ge=1, le=10)
    # Dropout between the two convolutions of every context module.
    dropout: float = ranged(0.3, ge=0, lt=1, note="a rate")
    negative_slope: float = ranged(0.01, ge=0, lt=1)
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


class Decoder(StrEnum):
    """The decoder of ``model=encoder_unet``."""

    # Per level: 2x upsampling, concatenation with the skip, two 3x3 conv-BN-ReLU (as
    # segmentation_models' Unet); five levels, from 1/32 up to the full resolution.
    unet = "unet"
    # The TensorFlow tutorial's pix2pix blocks: 3x3 stride-2 transposed conv-BN-ReLU, then the
    # skip; four levels up to 1/2, and a last transposed convolution to the class scores.
    pix2pix = "pix2pix"


# Filters of each decoder's levels, deepest first, when model.decoder_filters is null.
DECODER_FILTERS: dict[Decoder, tuple[int, ...]] = {
    Decoder.unet: (256, 128, 64, 32, 16),
    Decoder.pix2pix: (512, 256, 128, 64),
}


@dataclass
class EncoderConfig:
    """A pretrained encoder's initial weights and freezing (MobileNetV2 in mobilenet_unet)."""

    # null = random initialisation; imagenet = Keras' ImageNet weights (downloaded once into
    # Keras' cache, $KERAS_HOME/models or ~/.keras/models); or a local no-top weights file.
    weights: str | None = None
    trainable: bool = True
    # Width multiplier of MobileNet encoders; must match the weights.
    alpha: float = ranged(1.0, gt=0)


@dataclass
class NamedEncoderConfig(EncoderConfig):
    """Any registered encoder (``segkit.config.encoders.ENCODERS``)."""

    name: str = "resnet50"


@dataclass
class EncoderModelConfig(ModelConfig):
    """Fields of the models with a pretrained encoder: decoder dropout and fine-tuning."""

    # Dropout after each decoder level's batch norm (pix2pix used 0.5).
    dropout: float = ranged(0.0, ge=0, lt=1, note="a rate")
    # Train with a frozen encoder (encoder.trainable=false) up to this epoch, then unfreeze it
    # and continue with the learning rate times fine_tune_lr_factor; null = no fine-tuning phase.
    fine_tune_at: int | None = ranged(None, ge=1)
    fine_tune_lr_factor: float = ranged(0.1, gt=0)
    TRAINING_KEYS: ClassVar[tuple[str, ...]] = ("fine_tune_at", "fine_tune_lr_factor")


@dataclass
class EncoderUNetConfig(EncoderModelConfig):
    """A ``keras.applications`` encoder under a UNet (or pix2pix) decoder."""

    name: str = "encoder_unet"
    encoder: NamedEncoderConfig = field(default_factory=NamedEncoderConfig)
    decoder: Decoder = Decoder.unet
    # Filters per decoder level, deepest first; null = DECODER_FILTERS[decoder].
    decoder_filters: list[int] | None = ranged(None, ge=1)

    @classmethod
    def check(cls, cfg: DictConfig) -> None:
        """Encoder name, input size, weights, decoder filters, fine-tuning epoch."""
        check_encoder(cfg, cfg.model.encoder.name, Decoder(cfg.model.decoder))


@dataclass
class MobileNetUNetConfig(EncoderModelConfig):
    """The TensorFlow segmentation tutorial's model: MobileNetV2 encoder, pix2pix decoder
    (``encoder_unet`` with ``encoder.name=mobilenetv2`` and ``decoder=pix2pix``)."""

    name: str = "mobilenet_unet"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    # Filters of the four transposed-convolution upsampling blocks, deepest first.
    decoder_filters: list[int] = ranged(factory=lambda: [512, 256, 128, 64], ge=1)

    @classmethod
    def check(cls, cfg: DictConfig) -> None:
        """As encoder_unet's, for MobileNetV2 and the pix2pix decoder."""
        check_encoder(cfg, "mobilenetv2", Decoder.pix2pix)


def check_encoder(cfg: DictConfig, name: str, decoder: Decoder) -> None:
    """The checks of a model with a registered encoder, before TensorFlow loads.

    Raises:
        ConfigError: naming the key at fault and what would work.
    """
    model = cfg.model
    spec = lookup(ENCODERS, name, "model.encoder.name")
    check_input_size(
        int(cfg.dataset.image_size),
        spec.step,
        spec.min_size,
        f"encoder {name} (it halves the input 5 times)",
    )
    # dataset.channels is 1 (repeated to RGB) or 3 for every dataset (config.validate).
    weights = encoder_weights(model.encoder.weights)
    check_alpha(name, spec.alphas, float(model.encoder.alpha), weights)
    filters = model.decoder_filters
    expected = len(DECODER_FILTERS[decoder])
    if filters is not None and len(filters) != expected:
        raise ConfigError(
            f"model.decoder_filters has {len(filters)} values: decoder {decoder} expects "
            f"{expected}, one per level from the 1/32 map up (or null for "
            f"{list(DECODER_FILTERS[decoder])})"
        )
    if not model.encoder.trainable and weights is None:
        raise ConfigError(
            "model.encoder.trainable=false with model.encoder.weights=null would freeze a "
            "randomly initialised encoder: give imagenet or a weights file, or set trainable=true"
        )
    check_fine_tuning(cfg)


def check_alpha(name: str, alphas: tuple[float, ...], alpha: float, weights: str | None) -> None:
    """``model.encoder.alpha`` is a MobileNet width multiplier with ImageNet weights for it."""
    if not alphas:
        if alpha != 1.0:
            raise ConfigError(
                f"model.encoder.alpha={alpha}: encoder {name} has no width multiplier "
                "(only the MobileNet encoders do); expected 1.0"
            )
    elif weights == IMAGENET and alpha not in alphas:
        raise ConfigError(
            f"model.encoder.alpha={alpha}: Keras has ImageNet weights of {name} for alpha in "
            f"{', '.join(str(a) for a in alphas)} only"
        )


def check_fine_tuning(cfg: DictConfig) -> None:
    """``model.fine_tune_at`` needs a frozen encoder and an epoch inside the run."""
    model = cfg.model
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
            f"model.fine_tune_at={at}: expected an epoch from 1 to trainer.epochs-1={epochs - 1}"
        )


# Option name -> schema (the ConfigStore's schema/model group).
MODEL_SCHEMAS: dict[str, type[ModelConfig]] = {
    schema.name: schema
    for schema in (UNetConfig, ImprovedUNetConfig, EncoderUNetConfig, MobileNetUNetConfig)
}
