"""The encoder registry of ``model=encoder_unet``: which ``keras.applications`` backbone each
``model.encoder.name`` builds, where its five feature maps are, what input it expects.

Plain data (no Keras import), so that a config naming an unknown encoder or an input size it
cannot take fails before TensorFlow loads. The feature maps ("taps") are at 1/2, 1/4, 1/8, 1/16
and 1/32 of the input; the decoder concatenates the first four as skips and starts from the
last. Each was checked against the built application (tests/test_encoders.py asserts the scale
of every tap of every encoder).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Preprocessing(StrEnum):
    """The input an encoder's ImageNet weights expect (``keras.applications``' modes).

    segkit feeds [0, 1]; the model itself maps that to the encoder's range, so that a saved model
    always takes [0, 1] images.
    """

    # [-1, 1] (MobileNetV2, ResNet v2).
    tf = "tf"
    # 0..255 in BGR order minus the ImageNet channel means (ResNet v1, VGG).
    caffe = "caffe"
    # RGB in [0, 1] normalised by the ImageNet means and standard deviations (DenseNet).
    torch = "torch"
    # 0..255: the application rescales inside (EfficientNet, ConvNeXt, MobileNetV3).
    raw = "raw"


# ImageNet channel statistics of keras.applications.imagenet_utils (RGB order).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)


@dataclass(frozen=True)
class InputOf:
    """The tensor that enters the layer ``layer``: a block output that no named layer gives
    (ConvNeXt's stage ends and MobileNetV3's activations are unnamed operations)."""

    layer: str


# A feature map: the output of the layer of that name, or the input of a layer; None = the
# encoder has no map at that scale (ConvNeXt starts at 1/4: its 1/2 decoder level has no skip).
Tap = str | InputOf | None


@dataclass(frozen=True)
class EncoderSpec:
    """One registered encoder.

    ``skips`` are the taps at 1/2, 1/4, 1/8 and 1/16 of the input; ``bottom`` is the 1/32 map
    (None: the application's own output). Inputs must be a multiple of ``step`` of at least
    ``min_size`` (the five halvings, and Keras' own minimum of 32).
    """

    application: str
    family: str
    skips: tuple[Tap, Tap, Tap, Tap]
    preprocessing: Preprocessing
    # ImageNet top-1 accuracy (%) as keras.applications documents it (224 px, alpha 1).
    top1: float
    bottom: str | None = None
    # The width multipliers (``model.encoder.alpha``) Keras has ImageNet weights for; () = the
    # application has no width multiplier.
    alphas: tuple[float, ...] = ()
    min_size: int = 32
    step: int = 32


def _resnet(depth: int, conv3: int, conv4: int, top1: float) -> EncoderSpec:
    blocks = (
        "conv1_relu",
        "conv2_block3_out",
        f"conv3_block{conv3}_out",
        f"conv4_block{conv4}_out",
    )
    return EncoderSpec(f"ResNet{depth}", "resnet", blocks, Preprocessing.caffe, top1)


def _resnet_v2(depth: int, conv3: int, conv4: int, top1: float) -> EncoderSpec:
    # Pre-activation ResNets normalise at the start of a block: the maps are the activations
    # entering each stage's strided block (the stem conv has no activation of its own).
    skips = (
        "conv1_conv",
        "conv2_block3_preact_relu",
        f"conv3_block{conv3}_preact_relu",
        f"conv4_block{conv4}_preact_relu",
    )
    return EncoderSpec(f"ResNet{depth}V2", "resnet_v2", skips, Preprocessing.tf, top1)


def _efficientnet(variant: str, top1: float) -> EncoderSpec:
    # The expansions that enter each strided block (as segmentation_models taps them).
    skips = tuple(f"block{b}a_expand_activation" for b in (2, 3, 4, 6))
    return EncoderSpec(f"EfficientNet{variant}", "efficientnet", skips, Preprocessing.raw, top1)


def _efficientnet_v2(variant: str, top1: float) -> EncoderSpec:
    # Blocks 2 and 3 are fused (their strided convolution is the expansion): tap what enters it.
    skips = (
        InputOf("block2a_expand_conv"),
        InputOf("block3a_expand_conv"),
        "block4a_expand_activation",
        "block6a_expand_activation",
    )
    return EncoderSpec(
        f"EfficientNetV2{variant}", "efficientnet_v2", skips, Preprocessing.raw, top1
    )


def _convnext(size: str, top1: float) -> EncoderSpec:
    # The 4x4 stride-4 stem leaves no 1/2 map; each stage ends where a downsampling block begins.
    blocks = tuple(InputOf(f"convnext_{size}_downsampling_block_{i}") for i in range(3))
    return EncoderSpec(
        f"ConvNeXt{size.title()}", "convnext", (None, *blocks), Preprocessing.raw, top1
    )


def _densenet(depth: int, top1: float) -> EncoderSpec:
    skips = ("conv1_relu", "pool2_relu", "pool3_relu", "pool4_relu")
    return EncoderSpec(f"DenseNet{depth}", "densenet", skips, Preprocessing.torch, top1)


def _vgg(depth: int, last_conv: int, top1: float) -> EncoderSpec:
    skips = ("block2_conv2", *(f"block{b}_conv{last_conv}" for b in (3, 4, 5)))
    return EncoderSpec(f"VGG{depth}", "vgg", skips, Preprocessing.caffe, top1)


def _mobilenet_v3(size: str, strided: tuple[int, int, int, int], top1: float) -> EncoderSpec:
    # The activations entering each strided block's depthwise convolution (unnamed layers).
    skips = tuple(
        InputOf(f"expanded_conv{'_' + str(b) if b else ''}_depthwise_pad") for b in strided
    )
    return EncoderSpec(
        f"MobileNetV3{size}", "mobilenet_v3", skips, Preprocessing.raw, top1, alphas=(0.75, 1.0)
    )


# model.encoder.name -> spec, one family after another.
ENCODERS: dict[str, EncoderSpec] = {
    # The TensorFlow segmentation tutorial's taps (the DSB 2018 seed): expansions entering the
    # strided blocks, and block 16's projection (320 channels) rather than the 1280-channel head.
    "mobilenetv2": EncoderSpec(
        "MobileNetV2",
        "mobilenet",
        (
            "block_1_expand_relu",
            "block_3_expand_relu",
            "block_6_expand_relu",
            "block_13_expand_relu",
        ),
        Preprocessing.tf,
        71.3,
        bottom="block_16_project",
        alphas=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
    ),
    "mobilenetv3small": _mobilenet_v3("Small", (0, 1, 3, 8), 68.1),
    "mobilenetv3large": _mobilenet_v3("Large", (1, 3, 6, 12), 75.6),
    "resnet50": _resnet(50, 4, 6, 74.9),
    "resnet101": _resnet(101, 4, 23, 76.4),
    "resnet152": _resnet(152, 8, 36, 76.6),
    "resnet50v2": _resnet_v2(50, 4, 6, 76.0),
    "resnet101v2": _resnet_v2(101, 4, 23, 77.2),
    "resnet152v2": _resnet_v2(152, 8, 36, 78.0),
    **{
        f"efficientnetb{i}": _efficientnet(f"B{i}", top1)
        for i, top1 in enumerate((77.1, 79.1, 80.1, 81.6, 82.9, 83.6, 84.0, 84.3))
    },
    "efficientnetv2s": _efficientnet_v2("S", 83.9),
    "efficientnetv2m": _efficientnet_v2("M", 85.3),
    "convnext_tiny": _convnext("tiny", 81.3),
    "convnext_small": _convnext("small", 82.3),
    "convnext_base": _convnext("base", 85.3),
    "densenet121": _densenet(121, 75.0),
    "densenet169": _densenet(169, 76.2),
    "densenet201": _densenet(201, 77.3),
    "vgg16": _vgg(16, 3, 71.3),
    "vgg19": _vgg(19, 4, 71.3),
}
