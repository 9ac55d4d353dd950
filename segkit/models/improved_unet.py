"""Improved UNet (Isensee et al. 2017, arXiv 1802.10508), in 2-D as the ISIC seed projects use it.

Context pathway: a 3x3 convolution, then at every level a context module (a pre-activation
residual block: instance norm, leaky ReLU, 3x3 conv, dropout, instance norm, leaky ReLU, 3x3 conv,
added to its input), with stride-2 3x3 convolutions between levels. Localisation pathway: an
upsampling module (nearest-neighbour upscale, 3x3 conv halving the features), concatenation with
the skip, a localisation module (3x3 conv, 1x1 conv halving the features); at the top a 3x3
convolution instead. Deep supervision: 1x1 segmentation layers on the three highest-resolution
decoder levels are upscaled and summed, then the output activation is applied, so the model has
one output and the configured loss applies to the sum.

Instance normalisation is ``keras.layers.GroupNormalization`` with one group per channel (no
tensorflow-addons). At base_filters=16, depth=4, 3 input channels and 1 output channel the model has
3,187,923 parameters: the PatternFlow reference's 3,186,035 plus the 1,888 scale and offset
parameters of the instance norms after the decoder's convolutions, which the paper has
("instance normalization throughout") and that reference leaves out.
"""

from __future__ import annotations

import keras
from keras import layers

from segkit.core.scores import output_channels
from segkit.models.blocks import output_activation

# Decoder levels (0 = full resolution) that feed deep supervision: the paper's three.
SUPERVISED_LEVELS = 3


def build_improved_unet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    base_filters: int = 16,
    depth: int = 4,
    dropout: float = 0.3,
    negative_slope: float = 0.01,
    deep_supervision: bool = True,
) -> keras.Model:
    """Build the improved UNet; the defaults are the paper's five levels of 16 to 256 filters.

    Args:
        input_shape: (height, width, channels); height and width divisible by ``2**depth``.
        num_classes: classes including background (2 = binary, one sigmoid output channel).
        base_filters: filters of the first level; each level down doubles them.
        depth: number of stride-2 convolutions between the input and the deepest level.
        dropout: dropout rate inside every context module.
        negative_slope: slope of the leaky ReLUs.
        deep_supervision: sum segmentation maps of up to three decoder levels; else only the
            top level's.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Conv2D(base_filters, 3, padding="same", name="enc0_conv")(inputs)
    skips = []
    for level in range(depth + 1):
        filters = base_filters * 2**level
        if level:
            x = layers.Conv2D(filters, 3, strides=2, padding="same", name=f"enc{level}_down")(x)
        x = context_module(x, filters, dropout, negative_slope, name=f"enc{level}_context")
        skips.append(x)

    channels = output_channels(num_classes)
    segmentations = []  # (level, logits), deepest first
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = layers.UpSampling2D(2, name=f"dec{level}_upscale")(x)
        x = conv_norm_act(x, filters, 3, negative_slope, name=f"dec{level}_up")
        x = layers.Concatenate(name=f"dec{level}_concat")([skips[level], x])
        if level:  # localisation module
            x = conv_norm_act(x, 2 * filters, 3, negative_slope, name=f"dec{level}_local1")
            x = conv_norm_act(x, filters, 1, negative_slope, name=f"dec{level}_local2")
        else:
            x = conv_norm_act(x, 2 * filters, 3, negative_slope, name="dec0_conv")
        if level == 0 or (deep_supervision and level < SUPERVISED_LEVELS):
            # float32 from here on: the summed maps are the logits of the output activation.
            seg = layers.Conv2D(channels, 1, dtype="float32", name=f"dec{level}_seg")(x)
            segmentations.append((level, seg))

    _, logits = segmentations[0]
    for level, seg in segmentations[1:]:
        logits = layers.UpSampling2D(2, dtype="float32", name=f"dec{level}_seg_upscale")(logits)
        logits = layers.Add(dtype="float32", name=f"dec{level}_seg_sum")([logits, seg])
    outputs = output_activation(logits, num_classes)
    return keras.Model(inputs, outputs, name="improved_unet")


def context_module(x, filters: int, dropout: float, negative_slope: float, *, name: str):
    """Pre-activation residual block: (norm, leaky ReLU, 3x3 conv) twice, dropout between."""
    y = x
    for i in (1, 2):
        y = instance_norm(y, name=f"{name}_norm{i}")
        y = layers.LeakyReLU(negative_slope, name=f"{name}_act{i}")(y)
        y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv{i}")(y)
        if i == 1 and dropout > 0:
            y = layers.Dropout(dropout, name=f"{name}_dropout")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def conv_norm_act(x, filters: int, kernel: int, negative_slope: float, *, name: str):
    """Convolution, instance norm, leaky ReLU: the decoder's feature-computing unit."""
    x = layers.Conv2D(filters, kernel, padding="same", name=f"{name}_conv")(x)
    x = instance_norm(x, name=f"{name}_norm")
    return layers.LeakyReLU(negative_slope, name=f"{name}_act")(x)


def instance_norm(x, *, name: str):
    """Instance normalisation: group normalisation with one group per channel."""
    return layers.GroupNormalization(groups=x.shape[-1], name=name)(x)
