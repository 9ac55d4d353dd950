"""Pretrained encoders: a ``keras.applications`` backbone as a nested model of five feature maps,
its weights (random, Keras' ImageNet cache, or a local file) and its input preprocessing.

The registry (``segkit.config.encoders.ENCODERS``) says where each encoder's maps are and what
input it expects; this module builds them. Nothing here downloads anything itself: with
``weights="imagenet"`` Keras fetches its file once into its cache and reuses it after.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import keras
from keras import layers

from segkit.config.encoders import (
    CAFFE_MEAN_RGB,
    IMAGENET_MEAN,
    IMAGENET_STD,
    EncoderSpec,
    InputOf,
    Preprocessing,
    Tap,
)
from segkit.config.weights import IMAGENET
from segkit.core.errors import ConfigError
from segkit.models.blocks import ENCODER

# Batch-norm momentum of an encoder trained from random weights (see encoder_model).
FROM_SCRATCH_BN_MOMENTUM = 0.9
# How long Keras may wait on the network for ImageNet weights before the run fails with a
# one-line error (an offline machine whose firewall drops packets would otherwise hang).
DOWNLOAD_TIMEOUT_S = 20.0


def preprocess(x, spec: EncoderSpec):
    """Map segkit's [0, 1] RGB input to what ``spec``'s ImageNet weights expect, in the model.

    One ``Rescaling`` named ``to_<family>_range`` (per-channel where the mode needs it), and
    for caffe a channel flip after it: ``keras.ops.flip`` rather than a layer of segkit's own,
    so that plain Keras loads a saved model (safe mode included) without importing segkit.
    """
    name = f"to_{spec.family}_range"
    mode = spec.preprocessing
    if mode == Preprocessing.tf:
        return layers.Rescaling(2.0, offset=-1.0, name=name)(x)
    if mode == Preprocessing.raw:
        return layers.Rescaling(255.0, name=name)(x)
    if mode == Preprocessing.torch:
        scale = [1.0 / s for s in IMAGENET_STD]
        offset = [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)]
        return layers.Rescaling(scale, offset=offset, name=name)(x)
    # caffe: BGR = flip(RGB); subtracting the RGB means before the flip is the same map.
    x = layers.Rescaling(255.0, offset=[-m for m in CAFFE_MEAN_RGB], name=name)(x)
    return keras.ops.flip(x, axis=-1)


def encoder_model(
    name: str, spec: EncoderSpec, size: tuple[int, int], weights: str | None, alpha: float
) -> keras.Model:
    """The application without its top, as a model named ``encoder`` whose outputs are the taps.

    The 1/2 output is missing where the encoder has no map at that scale (ConvNeXt): callers
    get ``None`` in its place from ``encoder_outputs``.

    Raises:
        ConfigError: ImageNet weights neither in Keras' cache nor downloadable, or a weights
            file that does not fit this encoder.
    """
    # A named input keeps the layer names deterministic (Keras would number an unnamed one).
    image = keras.Input(shape=(*size, 3), name="encoder_image")
    options = {"alpha": alpha} if spec.alphas else {}
    constructor = getattr(keras.applications, spec.application)
    with weights_errors(name, weights):
        base = constructor(input_tensor=image, include_top=False, weights=weights, **options)
    if weights is None:
        # From random weights the batch norms must learn their statistics fast. MobileNet
        # averages them with momentum 0.999 (made for long ImageNet training or pretrained
        # statistics), Keras' default is 0.99; deep activations shrink (variance ~0.001) and the
        # moving variances, starting at 1, need ~7000 steps at 0.999 (~700 at 0.99) to get
        # there. Until then inference sees wrong statistics and predicts no foreground at all
        # (DSB sample: validation Dice 0 after 450 steps at 0.999 and 216 at 0.99); at 0.9
        # (PyTorch's default) ~70 steps suffice. Pretrained statistics keep the family's own.
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = FROM_SCRATCH_BN_MOMENTUM
    taps = [tap for tap in spec.skips if tap is not None]
    bottom = base.get_layer(spec.bottom).output if spec.bottom else base.output
    return keras.Model(image, [*(tensor(base, tap) for tap in taps), bottom], name=ENCODER)


def encoder_outputs(encoder: keras.Model, spec: EncoderSpec, x) -> tuple[list, object]:
    """Run ``encoder`` on ``x``: the four skips (None where the encoder has no map) and the
    1/32 map."""
    *found, bottom = encoder(x)
    maps = iter(found)
    return [None if tap is None else next(maps) for tap in spec.skips], bottom


def tensor(model: keras.Model, tap: Tap):
    """The symbolic tensor a tap names in ``model``."""
    if isinstance(tap, InputOf):
        return model.get_layer(tap.layer).input
    return model.get_layer(tap).output


@contextmanager
def weights_errors(name: str, weights: str | None) -> Iterator[None]:
    """Turn Keras' failures to get or fit an encoder's weights into one-line ConfigErrors."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        yield
    except Exception as error:
        if weights == IMAGENET:
            raise ConfigError(not_downloadable(name, error)) from None
        if weights is not None:
            first = " ".join(str(error).split())[:300]
            raise ConfigError(
                f"model.encoder.weights={weights} does not fit encoder {name} "
                f"(keras.applications: {first}): expected that encoder's no-top weights file"
            ) from None
        raise
    finally:
        socket.setdefaulttimeout(previous)


def not_downloadable(name: str, error: BaseException) -> str:
    """The one-line message for ImageNet weights that Keras could neither find nor fetch."""
    cache = os.path.join(keras_cache(), "models")
    found = re.search(r"URL fetch failure on (\S+): ", str(error))
    text = " ".join(str(error).split())
    if found is None:
        return (
            f"model.encoder.weights=imagenet: Keras could not get encoder {name}'s ImageNet "
            f"weights into its cache {cache} ({text[:200]})"
        )
    url = found.group(1)
    reason = text.split(" -- ")[-1][:200]
    return (
        f"model.encoder.weights=imagenet: encoder {name}'s ImageNet weights are not in Keras' "
        f"cache and could not be downloaded ({reason}); put {url.rsplit('/', 1)[-1]} (from "
        f"{url}) into {cache}, or give its path as model.encoder.weights"
    )


def keras_cache() -> str:
    """Keras' cache folder, found as Keras finds it (it has no public accessor):
    ``$KERAS_HOME``, else ``~/.keras``, or ``/tmp/.keras`` where the home folder is read-only."""
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    home = os.path.expanduser("~")
    return os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")


__all__ = [
    "FROM_SCRATCH_BN_MOMENTUM",
    "encoder_model",
    "encoder_outputs",
    "preprocess",
]
