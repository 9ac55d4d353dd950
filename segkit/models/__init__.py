"""Model families: ``MODELS`` maps a ``model.name`` to its builder function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from omegaconf import DictConfig, OmegaConf

from segkit.config.values import to_container
from segkit.core.errors import lookup
from segkit.models.encoder_unet import build_encoder_unet
from segkit.models.improved_unet import build_improved_unet
from segkit.models.mobilenet_unet import build_mobilenet_unet
from segkit.models.unet import build_unet

MODELS: dict[str, Callable[..., keras.Model]] = {
    "unet": build_unet,
    "improved_unet": build_improved_unet,
    "encoder_unet": build_encoder_unet,
    "mobilenet_unet": build_mobilenet_unet,
}


def build_model(model: DictConfig, dataset: DictConfig) -> keras.Model:
    """Build the model that the ``model`` config node names, for the ``dataset`` node's data.

    The YAML keys are passed as keyword arguments to the builder, except ``name`` and the keys
    its schema lists in ``TRAINING_KEYS`` (they configure training, not the network).
    """
    builder = lookup(MODELS, model.name, "model.name")
    skip = {"name", *getattr(OmegaConf.get_type(model), "TRAINING_KEYS", ())}
    kwargs: dict[str, Any] = {k: v for k, v in to_container(model).items() if k not in skip}
    shape = (int(dataset.image_size), int(dataset.image_size), int(dataset.channels))
    return builder(input_shape=shape, num_classes=int(dataset.num_classes), **kwargs)


__all__ = ["MODELS", "build_model"]
