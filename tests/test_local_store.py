"""A local SQLite store is created whole or not at all, by one process at a time, and a file that
is not an MLflow store is one line (real processes, real signals, real SQLite files)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from helpers import user_env
from segkit.core.errors import ConfigError
from segkit.tracking.local_store import ensure_local_store, latest_revision, schema_revision
from segkit.tracking.store import check_existing_store

# A process that creates the store of the current folder, then logs one run in it.
CREATE_AND_LOG = """
import sys
from segkit.tracking.local_store import ensure_local_store
print("ready", flush=True)
try:
    ensure_local_store("sqlite:///mlflow.db")
except KeyboardInterrupt:
    sys.exit(130)
if sys.argv[1] == "log":
    from mlflow import MlflowClient
    client = MlflowClient("sqlite:///mlflow.db")
    run = client.create_run("0")  # the Default experiment, made with the store
    client.set_terminated(run.info.run_id)
"""


def start(folder, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CREATE_AND_LOG, mode],
        cwd=folder,
        env=user_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_commands_starting_at_once_in_a_fresh_folder_share_one_store(tmp_path):
    procs = [start(tmp_path, "log") for _ in range(3)]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outputs]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs(["0"])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.8])
def test_ctrl_c_while_the_store_is_created_leaves_it_whole_or_absent(tmp_path, delay):
    proc = start(tmp_path, "create")
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    db = tmp_path / "mlflow.db"
    assert proc.returncode in (0, 130), stderr[-2000:]
    if proc.returncode == 130:  # interrupted: nothing half-made is left
        assert not db.exists() or db.stat().st_size == 0
    else:
        assert schema_revision(db) == latest_revision()
    assert not list(tmp_path.glob(".tmp-*"))
    ensure_local_store(f"sqlite:///{db}")  # the next command creates or uses it
    assert schema_revision(db) == latest_revision()


def test_a_file_that_is_not_a_store_is_one_line_for_writers_and_readers(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_text("my notes, not a database")
    uri = f"sqlite:///{db}"
    for check in (ensure_local_store, lambda u: check_existing_store(u, "uri")):
        with pytest.raises(ConfigError, match=r"is not an SQLite database; move it aside"):
            check(uri)
    assert db.read_text() == "my notes, not a database"


def test_a_half_made_or_older_store_says_what_to_do(tmp_path):
    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE experiments (experiment_id INTEGER)")
    with pytest.raises(ConfigError, match=r"half-made MLflow store .* move it aside and rerun"):
        ensure_local_store(f"sqlite:///{db}")
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        conn.execute("INSERT INTO alembic_version VALUES ('451aebb31d03')")
    with pytest.raises(ConfigError, match=r"revision 451aebb31d03, not .*mlflow db upgrade"):
        ensure_local_store(f"sqlite:///{db}")
