"""Classic UNet (Ronneberger et al. 2015, arXiv 1505.04597) with 'same' padding."""

from __future__ import annotations

import keras
from keras import layers

from segkit.models.blocks import conv_block, segmentation_head, upsample


def build_unet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    base_filters: int = 64,
    depth: int = 4,
    batch_norm: bool = True,
    dropout: float = 0.0,
    upsampling: str = "transpose",
) -> keras.Model:
    """Build a UNet; ``base_filters=64, depth=4`` without batch norm is the paper's network.

    Args:
        input_shape: (height, width, channels); height and width divisible by ``2**depth``.
        num_classes: classes including background (2 = binary, one sigmoid output channel).
        base_filters: filters of the first level; each level down doubles them.
        depth: number of 2x2 max-pool steps between the input and the bottleneck.
        batch_norm: batch normalisation after every convolution.
        dropout: dropout rate at the end of the contracting path (the paper's 0.5), 0 = none.
        upsampling: ``transpose`` (2x2 transposed conv) or ``bilinear`` (resize + 2x2 conv).
    """
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    skips = []
    for level in range(depth):
        x = conv_block(x, base_filters * 2**level, batch_norm=batch_norm, name=f"enc{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    x = conv_block(x, base_filters * 2**depth, batch_norm=batch_norm, name="bottleneck")
    if dropout > 0:
        x = layers.Dropout(dropout, name="bottleneck_dropout")(x)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = upsample(x, filters, mode=str(upsampling), name=f"dec{level}")
        x = layers.Concatenate(name=f"dec{level}_concat")([skips[level], x])
        x = conv_block(x, filters, batch_norm=batch_norm, name=f"dec{level}")
    outputs = segmentation_head(x, num_classes)
    return keras.Model(inputs, outputs, name="unet")
