"""Helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from segkit.app.cli import CONF_DIR
from segkit.config.store import SCHEMAS

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
# The smallest sensible settings of each model for TINY's 32 px images.
TINY_MODELS = {
    "unet": ["model=unet", "model.base_filters=4", "model.depth=2"],
    "improved_unet": ["model=improved_unet", "model.base_filters=4", "model.depth=2"],
    "encoder_unet": [
        "model=encoder_unet",
        "model.encoder.name=mobilenetv3small",
        "model.encoder.alpha=0.75",
        "model.decoder_filters=[16,8,8,4,4]",
    ],
    "mobilenet_unet": [
        "model=mobilenet_unet",
        "model.encoder.alpha=0.35",
        "model.decoder_filters=[16,8,8,4]",
    ],
}


def with_model(overrides: list[str], model: str) -> list[str]:
    """``overrides`` with their model settings replaced by ``TINY_MODELS[model]``."""
    return [o for o in overrides if not o.startswith("model")] + TINY_MODELS[model]


def compose_config(
    overrides: list[str] | None = None, name: str = "train", hydra: bool = False
) -> DictConfig:
    """Compose ``conf/<name>.yaml`` with overrides, as ``python -m segkit.train`` would.

    ``hydra=True`` keeps Hydra's own node (launcher, sweeper) in the result.
    """
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides or []), return_hydra_config=hydra)


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
    module: str,
    *args: str,
    cwd: Path,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python -m <module> args`` in a subprocess, as a user would (``env`` added)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=user_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_module(
    module: str, *args: str, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen:
    """Start ``python -m <module> args`` in the background; output goes to pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=user_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def user_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment as a user's shell would have it, plus ``extra``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra or {})}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def wait_for_metrics(db: Path, timeout: float = 120) -> bool:
    """Wait until the SQLite MLflow store ``db`` holds a metric (a run finished an epoch)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    if conn.execute("select count(*) from metrics").fetchone()[0] > 0:
                        return True
            except sqlite3.Error:
                pass  # the tables are being created
        time.sleep(0.5)
    return False


def copy_store(template: Path, folder: Path) -> str:
    """Copy the session's empty MLflow store (conftest ``store_template``) to
    ``folder/mlflow.db``; returns its URI."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "mlflow.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
