"""Errors caused by the user's input, reported as one line without a traceback."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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

    def __init__(self, message: str, epoch: int | None = None):
        super().__init__(message)
        self.epoch = epoch  # 1-based, as the log shows epochs


class OutOfMemory(SegkitError):
    """The accelerator or the host ran out of memory; the message suggests smaller settings."""


class DiskFull(SegkitError):
    """A folder the run writes to filled up (or became read-only) while it ran."""


class CallbackAbort(BaseException):  # noqa: N818 (not an Exception on purpose)
    """Carries a user error out of a Hydra callback.

    Hydra turns an ``Exception`` raised in a callback into a warning and carries on; a sweep that
    cannot work (parallel jobs on one SQLite file, a tracking server that does not answer) must
    stop instead. ``segkit.app.cli.run_cli`` reports ``error`` in one line.
    """

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


def lookup(registry: Mapping[str, T], name: str, key: str) -> T:
    """``registry[name]``, or a ``ConfigError`` naming ``key`` and listing the valid names."""
    try:
        return registry[name]
    except KeyError:
        raise ConfigError(
            f"{key}={name!r} is not known; expected one of: {', '.join(sorted(registry))}"
        ) from None


def first_few(items: Sequence[str], shown: int, separator: str = ", ") -> str:
    """The first ``shown`` items joined by ``separator``, then `` and N more`` for the rest
    (for messages that must stay one line however many files are at fault)."""
    more = len(items) - shown
    tail = f"{separator.rstrip(', ')} and {more} more" if more > 0 else ""
    return separator.join(items[:shown]) + tail


def short_reason(error: BaseException) -> str:
    """An error's message on one line of at most 500 characters (for an MLflow tag or a table)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:500]
