"""MobileNetV2-UNet: the TensorFlow segmentation tutorial's model, as the DSB 2018 seed uses it.

A MobileNetV2 encoder (``keras.applications``, no top) gives five feature maps, at 1/2 to 1/32 of
the input; pix2pix upsampling blocks (3x3 transposed convolution with stride 2, batch norm, ReLU)
of 512, 256, 128 and 64 filters climb back to 1/2, each followed by concatenation with the skip of
that resolution; a last 3x3 transposed convolution gives the class scores at full resolution.

Differences from the tutorial, all without parameters: the input, in [0, 1] from segkit's pipeline,
is scaled to MobileNetV2's [-1, 1] inside the model; a grayscale input is repeated to three
channels so that RGB weights fit; the output gets an activation (sigmoid or softmax) in float32.
At 128x128x3 with three output channels the model has the tutorial's 6,504,227 parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
from keras import layers

from segkit.config.model import encoder_weights_file
from segkit.core.scores import output_channels
from segkit.models.blocks import ENCODER, output_activation

# Batch-norm momentum of an encoder trained from random weights (see mobilenet_encoder).
FROM_SCRATCH_BN_MOMENTUM = 0.9
# MobileNetV2 layers whose outputs are the skips, at 1/2, 1/4, 1/8, 1/16 and 1/32 of the input.
SKIP_LAYERS = (
    "block_1_expand_relu",
    "block_3_expand_relu",
    "block_6_expand_relu",
    "block_13_expand_relu",
    "block_16_project",
)


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
        encoder: ``weights`` (null or a local MobileNetV2 no-top weights file; nothing is
            downloaded), ``trainable`` (false freezes the encoder, batch norm statistics
            included) and ``alpha`` (MobileNetV2's width multiplier).
        decoder_filters: filters of the four upsampling blocks, deepest first.
        dropout: dropout rate after each upsampling block's batch norm (pix2pix uses 0.5).

    Raises:
        ConfigError: the weights file does not exist.
    """
    options = {"weights": None, "trainable": True, "alpha": 1.0, **(encoder or {})}
    height, width, channels = input_shape
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    # The pipeline feeds [0, 1]; MobileNetV2 (and its ImageNet weights) expects [-1, 1].
    x = layers.Rescaling(2.0, offset=-1.0, name="to_mobilenet_range")(inputs)
    if channels == 1:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    backbone = mobilenet_encoder((height, width), options["weights"], float(options["alpha"]))
    backbone.trainable = bool(options["trainable"])
    *skips, x = backbone(x)

    for i, (filters, skip) in enumerate(zip(decoder_filters, reversed(skips), strict=True)):
        x = layers.Conv2DTranspose(
            filters,
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
        x = layers.Concatenate(name=f"dec{i}_concat")([x, skip])
    logits = layers.Conv2DTranspose(
        output_channels(num_classes), 3, strides=2, padding="same", dtype="float32", name="logits"
    )(x)
    outputs = output_activation(logits, num_classes)
    return keras.Model(inputs, outputs, name="mobilenet_unet")


def mobilenet_encoder(size: tuple[int, int], weights: str | None, alpha: float) -> keras.Model:
    """MobileNetV2 without its top, as a model whose outputs are the ``SKIP_LAYERS``.

    Raises:
        ConfigError: ``weights`` names a file that does not exist.
    """
    weights = encoder_weights_file(weights)
    # A named input keeps the layer names deterministic (Keras would number an unnamed one).
    image = keras.Input(shape=(*size, 3), name="encoder_image")
    base = keras.applications.MobileNetV2(
        input_tensor=image, include_top=False, weights=weights, alpha=alpha
    )
    if weights is None:
        # MobileNetV2's batch norms average their statistics with momentum 0.999, made for long
        # ImageNet training or pretrained statistics. From random weights the deep layers'
        # activations shrink (variance ~0.001), and the moving variances, starting at 1, need
        # ~7000 steps at 0.999 (~700 at Keras' 0.99) to get there: until then inference sees
        # wrong statistics and predicts no foreground at all (DSB sample: validation Dice 0 after
        # 450 steps at 0.999 and 216 at 0.99). At 0.9 (PyTorch's default) ~70 steps suffice.
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = FROM_SCRATCH_BN_MOMENTUM
    outputs = [base.get_layer(name).output for name in SKIP_LAYERS]
    return keras.Model(image, outputs, name=ENCODER)
