"""Helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from segkit.cli import CONF_DIR
from segkit.config import SCHEMAS

REPO = Path(__file__).resolve().parent.parent
# A dataset small enough that a smoke run takes seconds: 24 images of 48-72 px at 32 px.
TINY = [
    "dataset.num_samples=24",
    "dataset.min_side=48",
    "dataset.max_side=72",
    "dataset.image_size=32",
    "model.base_filters=4",
    "model.depth=2",
]


def compose_config(overrides: list[str] | None = None, name: str = "train") -> DictConfig:
    """Compose ``conf/<name>.yaml`` with overrides, as ``python -m segkit.train`` would."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides or []))


def compose_dataset(name: str, *overrides: str) -> DictConfig:
    """The ``dataset`` node of option ``name`` as composed for a run (32 px unless overridden)."""
    overrides = ("output_dir=/tmp/unused", "dataset.image_size=32", *overrides)
    return compose_config([f"dataset={name}", *overrides]).dataset


def dataset_node(name: str = "isic", **values) -> DictConfig:
    """A typed ``dataset`` config node of schema ``name`` with ``values`` set, without Hydra."""
    node = OmegaConf.structured(SCHEMAS["dataset"][name])
    node.name = name
    return OmegaConf.merge(node, OmegaConf.create(values))


def run_module(
    module: str, *args: str, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``python -m <module> args`` in a subprocess, as a user would."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
