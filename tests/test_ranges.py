"""Every numeric field of every schema declares its range, and a value outside it is refused."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from omegaconf import MISSING, OmegaConf

from helpers import compose_config
from segkit.config.ranges import Range, check_ranges, field_range
from segkit.config.store import COMMANDS, SCHEMAS
from segkit.config.validate import validate
from segkit.core.errors import ConfigError

NUMBERS = (int, float)


def _number_type(hint) -> type | None:
    """int or float for a numeric field (optional, or a list of numbers at any depth)."""
    if hint in NUMBERS:
        return hint
    for arg in typing.get_args(hint):
        found = _number_type(arg) if arg is not type(None) else None
        if found is not None:
            return found
    return None


def _nested_schema(hint) -> type | None:
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def numeric_fields(schema: type, prefix: str = "", groups: bool = True):
    """(dotted key, field, number type, whether a list) of ``schema`` and the schemas it nests
    (without ``groups``, not those of a command's groups, which have no default)."""
    hints = typing.get_type_hints(schema)
    for field in dataclasses.fields(schema):
        hint = hints[field.name]
        nested = _nested_schema(hint)
        if nested is not None:
            group = field.default is MISSING and field.default_factory is dataclasses.MISSING
            if groups or not group:
                yield from numeric_fields(nested, f"{prefix}{field.name}.", groups)
            continue
        kind = _number_type(hint)
        if kind is not None and hint is not bool:
            is_list = "list" in str(hint)
            yield f"{prefix}{field.name}", field, kind, is_list


def all_schemas() -> list[tuple[str, type]]:
    """Every registered schema with the key prefix its fields have in a composed config."""
    found = [
        (f"{group}.", schema) for group, options in SCHEMAS.items() for schema in options.values()
    ]
    return found + [("", schema) for schema in COMMANDS.values()]


def test_every_numeric_field_of_every_schema_declares_a_range():
    undeclared = sorted(
        {
            f"{schema.__name__}: {prefix}{key}"
            for prefix, schema in all_schemas()
            for key, field, _, _ in numeric_fields(schema)
            if field_range(field) is None
        }
    )
    assert not undeclared, "numeric fields without ranged(...):\n" + "\n".join(undeclared)


def _outside(bounds: Range, kind: type):
    """A value of type ``kind`` just outside ``bounds``."""
    step = 1 if kind is int else 0.5
    if bounds.low is not None:
        return kind(bounds.low) if bounds.low_open else kind(bounds.low - step)
    if bounds.high is not None:
        return kind(bounds.high) if bounds.high_open else kind(bounds.high + step)
    return None


def _cases():
    seen = set()
    for prefix, schema in all_schemas():
        # A group's fields are checked with the group's schemas, not through each command.
        for key, field, kind, is_list in numeric_fields(schema, groups=False):
            bounds = field_range(field)
            if bounds is None or (schema, key) in seen:
                continue
            seen.add((schema, key))
            yield pytest.param(schema, prefix, key, kind, is_list, id=f"{schema.__name__}.{key}")


@pytest.mark.parametrize(("schema", "prefix", "key", "kind", "is_list"), list(_cases()))
def test_a_value_outside_a_fields_range_is_refused_naming_the_key(
    schema, prefix, key, kind, is_list
):
    node = OmegaConf.structured(schema)
    check_ranges(node, prefix)  # the defaults are in range
    *parents, name = key.split(".")
    target = node
    for parent in parents:
        target = target[parent]
    field = next(f for f in dataclasses.fields(OmegaConf.get_type(target)) if f.name == name)
    bad = _outside(field_range(field), kind)
    if bad is None:
        pytest.skip(f"{key}: any finite number is allowed")
    target[name] = [[bad]] if "list[list" in str(field.type) else [bad] if is_list else bad
    with pytest.raises(ConfigError, match=rf"^{prefix}{key}=.*: expected "):
        check_ranges(node, prefix)


def test_range_descriptions_and_non_finite_values():
    assert Range(0, 1, high_open=True, note="a rate").describe() == "a value in [0, 1) (a rate)"
    assert Range(0, low_open=True).describe() == "> 0"
    assert not Range(0, low_open=True).contains(float("nan"))
    assert not Range(0).contains(float("inf"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.optimizer.lr=-0.001", "trainer.optimizer.lr=-0.001: expected > 0"),
        ("trainer.limit_train_batches=0", "trainer.limit_train_batches=0: expected >= 1"),
        ("model.base_filters=0", "model.base_filters=0: expected >= 1"),
        ("model.dropout=1.5", "model.dropout=1.5: expected a value in [0, 1) (a rate)"),
        ("trainer.optimizer.lr=nan", "trainer.optimizer.lr=nan: expected > 0"),
    ],
)
def test_the_issues_silently_wrong_values_are_refused_at_composition(override, message):
    with pytest.raises(ConfigError) as error:
        validate(compose_config([override]))
    assert str(error.value).startswith(message), error.value
