"""MobileNetV2-UNet: the TensorFlow segmentation tutorial's model, as the DSB 2018 seed uses it.

``encoder_unet`` with the MobileNetV2 encoder and the pix2pix decoder: five MobileNetV2 maps at
1/2 to 1/32 of the input; pix2pix upsampling blocks (3x3 transposed convolution with stride 2,
batch norm, ReLU) of 512, 256, 128 and 64 filters climb back to 1/2, each followed by
concatenation with the skip of that resolution; a last 3x3 transposed convolution gives the
class scores at full resolution.

Differences from the tutorial, all without parameters: the input, in [0, 1] from segkit's
pipeline, is scaled to MobileNetV2's [-1, 1] inside the model; a grayscale input is repeated to
three channels so that RGB weights fit; the output gets an activation (sigmoid or softmax) in
float32. At 128x128x3 with three output channels the model has the tutorial's 6,504,227
parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras

from segkit.config.encoders import ENCODERS
from segkit.models.encoder_unet import build_encoder_unet

ENCODER_NAME = "mobilenetv2"
# MobileNetV2 layers whose outputs are the skips and the bottom, at 1/2 to 1/32 of the input.
SKIP_LAYERS = (*ENCODERS[ENCODER_NAME].skips, ENCODERS[ENCODER_NAME].bottom)


def build_mobilenet_unet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    encoder: Mapping[str, Any] | None = None,
    decoder_filters: Sequence[int] = (512, 256, 128, 64),
    dropout: float = 0.0,
) -> keras.Model:
    """Build the MobileNetV2-UNet.

    Args:
        input_shape: (height, width, channels); height and width divisible by 32.
        num_classes: classes including background (2 = binary, one sigmoid output channel).
        encoder: ``weights`` (null, ``imagenet`` or a local MobileNetV2 no-top weights file),
            ``trainable`` (false freezes the encoder, batch norm statistics included) and
            ``alpha`` (MobileNetV2's width multiplier).
        decoder_filters: filters of the four upsampling blocks, deepest first.
        dropout: dropout rate after each upsampling block's batch norm (pix2pix uses 0.5).

    Raises:
        ConfigError: missing or unfitting weights.
    """
    return build_encoder_unet(
        input_shape,
        num_classes,
        encoder={**(encoder or {}), "name": ENCODER_NAME},
        decoder="pix2pix",
        decoder_filters=decoder_filters,
        dropout=dropout,
        name="mobilenet_unet",
    )
