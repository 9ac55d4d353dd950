"""Layers shared by the model families (keras.layers only, so any Keras backend runs them)."""

from __future__ import annotations

from keras import layers

from segkit.core.scores import output_channels

# Name of the nested model that holds a network's (pretrained) encoder, if it has one: freezing
# and fine-tuning act on this layer.
ENCODER = "encoder"


def conv_block(x, filters: int, *, batch_norm: bool, name: str):
    """Two 3x3 convolutions, each followed by optional batch norm and ReLU."""
    for i in (1, 2):
        x = layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=not batch_norm,
            kernel_initializer="he_normal",
            name=f"{name}_conv{i}",
        )(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def upsample(x, filters: int, *, mode: str, name: str):
    """Double the resolution: a 2x2 transposed convolution, or bilinear resize + 2x2 convolution."""
    if mode == "transpose":
        return layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"{name}_up")(x)
    x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_resize")(x)
    return layers.Conv2D(filters, 2, padding="same", name=f"{name}_up")(x)


def segmentation_head(x, num_classes: int):
    """1x1 convolution to class scores and the output activation, both in float32.

    A binary task (``num_classes == 2``) gets one sigmoid channel, a multi-class task one softmax
    channel per class. Float32 here keeps mixed-precision logits from overflowing.
    """
    x = layers.Conv2D(output_channels(num_classes), 1, dtype="float32", name="logits")(x)
    return output_activation(x, num_classes)


def output_activation(logits, num_classes: int):
    """Sigmoid (binary) or softmax over the channels, in float32, as the layer `probabilities`."""
    activation = "sigmoid" if output_channels(num_classes) == 1 else "softmax"
    return layers.Activation(activation, dtype="float32", name="probabilities")(logits)


__all__ = [
    "ENCODER",
    "conv_block",
    "output_activation",
    "segmentation_head",
    "upsample",
]
