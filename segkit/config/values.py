"""Reading values out of a composed config (OmegaConf returns Enum members for enum fields)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf


def option_value(option: Any) -> str:
    """The string of a config value that may be an Enum member (OmegaConf returns those)."""
    return str(getattr(option, "value", option))


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolved plain-dict copy of a config (enums as their names)."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[return-value]
