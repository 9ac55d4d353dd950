"""Encoder-UNet: a pretrained ``keras.applications`` encoder under a UNet or pix2pix decoder.

The encoder (``segkit.config.encoders.ENCODERS``) gives maps at 1/2 to 1/32 of the input. The
decoder climbs from the 1/32 map, doubling the resolution per level and concatenating the skip
of that resolution:

- ``unet`` (segmentation_models' Unet): nearest-neighbour 2x upsampling, the skip, then two 3x3
  conv-BN-ReLU; five levels up to the full resolution (the last without a skip), then a 3x3
  convolution to the class scores.
- ``pix2pix`` (the TensorFlow segmentation tutorial): a 3x3 stride-2 transposed conv-BN-ReLU,
  then the skip; four levels up to 1/2, then a 3x3 stride-2 transposed convolution to the class
  scores at full resolution.

The input, in [0, 1] from segkit's pipeline, is mapped to the encoder's own range inside the
model (``encoders.preprocess``), so a saved model always takes [0, 1] images; a grayscale input
is repeated to three channels so that RGB weights fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import keras
from keras import layers

from segkit.config.encoders import ENCODERS, Preprocessing
from segkit.config.model import DECODER_FILTERS, Decoder, NamedEncoderConfig
from segkit.config.weights import encoder_weights
from segkit.core.errors import lookup
from segkit.core.scores import output_channels
from segkit.models.blocks import output_activation
from segkit.models.encoders import encoder_model, encoder_outputs, preprocess


def build_encoder_unet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    encoder: Mapping[str, Any] | None = None,
    decoder: str = "unet",
    decoder_filters: Sequence[int] | None = None,
    dropout: float = 0.0,
    name: str = "encoder_unet",
) -> keras.Model:
    """Build an encoder-UNet.

    Args:
        input_shape: (height, width, channels); a multiple of 32, 1 or 3 channels.
        num_classes: classes including background (2 = binary, one sigmoid output channel).
        encoder: ``name`` (a key of ``ENCODERS``; default resnet50), ``weights`` (null,
            ``imagenet`` or a local no-top weights file), ``trainable`` (false freezes the
            encoder, batch norm statistics included) and ``alpha`` (MobileNet width multiplier).
        decoder: ``unet`` or ``pix2pix``.
        decoder_filters: filters per decoder level, deepest first (5 for unet, 4 for pix2pix);
            None = the decoder's default.
        dropout: dropout rate after each decoder level's batch norm.
        name: the model's name.

    Raises:
        ConfigError: unknown encoder, missing or unfitting weights.
    """
    options = {**asdict(NamedEncoderConfig()), **(encoder or {})}
    spec = lookup(ENCODERS, options["name"], "model.encoder.name")
    decoder = Decoder(decoder)
    filters = tuple(decoder_filters or DECODER_FILTERS[decoder])
    height, width, channels = input_shape
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    # A scalar rescaling goes first (the layer order mobilenet_unet always had); per-channel
    # preprocessing needs the three channels.
    per_channel = spec.preprocessing in (Preprocessing.caffe, Preprocessing.torch)
    x = inputs if per_channel else preprocess(inputs, spec)
    if channels == 1:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    if per_channel:
        x = preprocess(x, spec)
    weights = encoder_weights(options["weights"])
    backbone = encoder_model(
        options["name"], spec, (height, width), weights, float(options["alpha"])
    )
    backbone.trainable = bool(options["trainable"])
    skips, x = encoder_outputs(backbone, spec, x)
    climb = unet_decoder if decoder == Decoder.unet else pix2pix_decoder
    logits = climb(x, list(reversed(skips)), filters, dropout, output_channels(num_classes))
    return keras.Model(inputs, output_activation(logits, num_classes), name=name)


def unet_decoder(x, skips: list, filters: Sequence[int], dropout: float, outputs: int):
    """Five levels of upsample, skip (if any), two conv-BN-ReLU; a 3x3 convolution to scores."""
    for i, level_filters in enumerate(filters):
        x = layers.UpSampling2D(2, name=f"dec{i}_up")(x)
        if i < len(skips) and skips[i] is not None:
            x = layers.Concatenate(name=f"dec{i}_concat")([x, skips[i]])
        for j in (1, 2):
            x = layers.Conv2D(
                level_filters, 3, padding="same", use_bias=False, name=f"dec{i}_conv{j}"
            )(x)
            x = layers.BatchNormalization(name=f"dec{i}_bn{j}")(x)
            x = layers.ReLU(name=f"dec{i}_relu{j}")(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name=f"dec{i}_dropout")(x)
    return layers.Conv2D(outputs, 3, padding="same", dtype="float32", name="logits")(x)


def pix2pix_decoder(x, skips: list, filters: Sequence[int], dropout: float, outputs: int):
    """Four pix2pix upsampling blocks, each then the skip; a transposed convolution to scores."""
    for i, level_filters in enumerate(filters):
        x = layers.Conv2DTranspose(
            level_filters,
            3,
            strides=2,
            padding="same",
            use_bias=False,
            kernel_initializer=keras.initializers.RandomNormal(0.0, 0.02),
            name=f"dec{i}_up",
        )(x)
        x = layers.BatchNormalization(name=f"dec{i}_bn")(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name=f"dec{i}_dropout")(x)
        x = layers.ReLU(name=f"dec{i}_relu")(x)
        if skips[i] is not None:
            x = layers.Concatenate(name=f"dec{i}_concat")([x, skips[i]])
    return layers.Conv2DTranspose(
        outputs, 3, strides=2, padding="same", dtype="float32", name="logits"
    )(x)


__all__ = ["build_encoder_unet", "pix2pix_decoder", "unet_decoder"]
