"""Model families: ``MODELS`` maps a ``model.name`` to its builder function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from omegaconf import DictConfig

from segkit.config import to_container
from segkit.errors import lookup
from segkit.models.unet import build_unet

MODELS: dict[str, Callable[..., keras.Model]] = {
    "unet": build_unet,
}


def build_model(model: DictConfig, dataset: DictConfig) -> keras.Model:
    """Build the model that the ``model`` config node names, for the ``dataset`` node's data.

    The YAML keys (all but ``name``) are passed as keyword arguments to the builder.
    """
    builder = lookup(MODELS, model.name, "model.name")
    kwargs: dict[str, Any] = {k: v for k, v in to_container(model).items() if k != "name"}
    shape = (int(dataset.image_size), int(dataset.image_size), int(dataset.channels))
    return builder(input_shape=shape, num_classes=int(dataset.num_classes), **kwargs)


__all__ = ["MODELS", "build_model"]
