"""Session set-up and fixtures.

The test process splits its CPU into two logical devices before TensorFlow starts, so strategy
tests run real MirroredStrategy replicas in-process. Tests of parallel sweeps log to a real
`mlflow server` that the session starts on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402  (after the log level)

from helpers import TINY, copy_store, free_port  # noqa: E402
from segkit.config.store import register_configs  # noqa: E402
from segkit.core.errors import ConfigError  # noqa: E402
from segkit.data.formats.synthetic import ensure_synthetic  # noqa: E402
from segkit.tracking.local_store import ensure_local_store  # noqa: E402
from segkit.tracking.store import check_server  # noqa: E402

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


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[str]:
    """The URI of a real `mlflow server` on 127.0.0.1 over a SQLite file, as `make server` runs.

    Started once per session (in its own process group, so that its workers stop with it).
    """
    folder = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    log = (folder / "server.log").open("w")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            f"--backend-store-uri=sqlite:///{folder / 'server.db'}",
            f"--artifacts-destination={folder / 'artifacts'}",
            "--host=127.0.0.1",
            f"--port={port}",
            "--workers=1",
        ],
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                check_server(uri, timeout=1.0)
                break
            except ConfigError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"mlflow server did not start: {(folder / 'server.log').read_text()}"
                    )
                time.sleep(0.5)
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def store_template(tmp_path_factory) -> Path:
    """An empty MLflow SQLite store, made once per session by segkit's own creation path.

    Creating a store runs MLflow's schema migrations, about 3 s of CPU each time; tests that
    only need an empty store copy this one (``fresh_store``). Creating stores is tested in
    test_local_store.py.
    """
    path = tmp_path_factory.mktemp("store_template") / "mlflow.db"
    ensure_local_store(f"sqlite:///{path}")
    return path


@pytest.fixture
def fresh_store(tmp_path, store_template) -> str:
    """The URI of an empty MLflow store at ``tmp_path/mlflow.db`` (a copy of the template)."""
    return copy_store(store_template, tmp_path)


@pytest.fixture
def smoke_overrides(tmp_path, cache_dir, fresh_store) -> list[str]:
    """Overrides for a seconds-long run, logging to a fresh SQLite store in ``tmp_path``."""
    return [
        "trainer=smoke",
        *TINY,
        f"cache_dir={cache_dir}",
        f"output_dir={tmp_path / 'run'}",
        f"tracking.uri={fresh_store}",
        f"tracking.artifact_location={tmp_path / 'artifacts'}",
    ]
