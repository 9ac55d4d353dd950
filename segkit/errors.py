"""Errors caused by the user's input, reported as one line without a traceback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


class SegkitError(Exception):
    """A mistake in the user's configuration or data; the message names what is at fault."""


class ConfigError(SegkitError):
    """A configuration value, or a combination of values, that cannot work."""


class DataError(SegkitError):
    """A dataset that is missing, incomplete, or holds files segkit cannot use."""


class TrainingDiverged(SegkitError):
    """The loss became NaN or infinite; usually a learning rate that is too high."""


def lookup(registry: Mapping[str, T], name: str, key: str) -> T:
    """``registry[name]``, or a ``ConfigError`` naming ``key`` and listing the valid names."""
    try:
        return registry[name]
    except KeyError:
        raise ConfigError(
            f"{key}={name!r} is not known; expected one of: {', '.join(sorted(registry))}"
        ) from None
