"""Declared ranges of the schemas' numeric fields, checked on every composed config.

Every ``int``/``float`` field of a schema (optional or not, and the numbers of a list field) is
declared with ``ranged``: ``lr: float = ranged(1e-3, gt=0)``. ``check_ranges`` then refuses a
value outside its range with one line naming the key, before TensorFlow loads and before any
MLflow run exists; a test walks every schema and fails on a numeric field without a range.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from segkit.core.errors import ConfigError

# Key of a field's range in its dataclass metadata.
RANGE = "segkit.range"


@dataclass(frozen=True)
class Range:
    """An interval of allowed values; open or closed at each end, unbounded where None."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    # Why, for the error message ("classes including background").
    note: str = ""
    # The whole description instead of the interval's ("1 or 3").
    expected: str = ""

    def contains(self, value: float) -> bool:
        """Whether ``value`` is a finite number in the interval (NaN and infinities are not)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        """``> 0``, ``>= 1``, ``in [0, 1)``; with the note in parentheses."""
        if self.expected:
            return self.expected
        if self.low is not None and self.high is not None:
            text = (
                f"a value in {'(' if self.low_open else '['}{_number(self.low)}, "
                f"{_number(self.high)}{')' if self.high_open else ']'}"
            )
        elif self.low is not None:
            text = f"{'>' if self.low_open else '>='} {_number(self.low)}"
        elif self.high is not None:
            text = f"{'<' if self.high_open else '<='} {_number(self.high)}"
        else:
            text = "a finite number"
        return f"{text} ({self.note})" if self.note else text


def ranged(
    default: Any = dataclasses.MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    note: str = "",
    expected: str = "",
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field whose value (each number, for a list) must lie in the given range.

    Args:
        default: the field's default (or ``factory`` for a list default).
        ge, gt: lower bound, inclusive or exclusive; le, lt: upper bound.
        note: why, shown in the error; expected: the error's whole description instead.
    """
    if ge is not None and gt is not None or le is not None and lt is not None:
        raise ValueError("give one lower and one upper bound at most")
    bounds = Range(
        low=gt if gt is not None else ge,
        high=lt if lt is not None else le,
        low_open=gt is not None,
        high_open=lt is not None,
        note=note,
        expected=expected,
    )
    metadata = {RANGE: bounds}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def field_range(field: dataclasses.Field) -> Range | None:
    """The range declared for a dataclass field, if any."""
    return field.metadata.get(RANGE)


def check_ranges(node: DictConfig, path: str = "") -> None:
    """Every ranged field of ``node`` and of the schema nodes under it (missing and null values
    are left to the checks that know whether they are allowed).

    Raises:
        ConfigError: ``trainer.optimizer.lr=-0.001: expected > 0``.
    """
    schema = OmegaConf.get_type(node)
    if dataclasses.is_dataclass(schema):
        for field in dataclasses.fields(schema):
            bounds = field_range(field)
            if bounds is None or field.name not in node or OmegaConf.is_missing(node, field.name):
                continue
            value = node[field.name]
            numbers = _numbers(value)
            if any(not bounds.contains(n) for n in numbers):
                shown = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
                raise ConfigError(f"{path}{field.name}={shown}: expected {bounds.describe()}")
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            check_ranges(child, f"{path}{key}.")


def _numbers(value: Any) -> list:
    """The numbers of a value: itself, or every number of a (nested) list; none for null."""
    if value is None:
        return []
    if isinstance(value, ListConfig | list | tuple):
        return [n for item in value for n in _numbers(item)]
    return [value]


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
