"""Session set-up and fixtures.

The test process splits its CPU into two logical devices before TensorFlow starts, so strategy
tests run real MirroredStrategy replicas in-process.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402  (after the log level)

from helpers import TINY  # noqa: E402
from segkit.config import register_configs  # noqa: E402
from segkit.data.synthetic import ensure_synthetic  # noqa: E402

LOGICAL_CPUS = 2
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration() for _ in range(LOGICAL_CPUS)],
)
register_configs()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """A cache folder holding the tiny synthetic dataset, generated once per session."""
    folder = tmp_path_factory.mktemp("cache")
    ensure_synthetic(folder / "synthetic", 24, 0, 48, 72)
    return folder


@pytest.fixture
def smoke_overrides(tmp_path, cache_dir) -> list[str]:
    """Overrides for a seconds-long run, logging to a fresh SQLite store in ``tmp_path``."""
    return [
        "trainer=smoke",
        *TINY,
        f"cache_dir={cache_dir}",
        f"output_dir={tmp_path / 'run'}",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"tracking.artifact_location={tmp_path / 'artifacts'}",
    ]
