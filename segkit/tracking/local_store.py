"""A local SQLite MLflow store: checked before MLflow opens it, created whole or not at all.

MLflow creates a missing SQLite store on first use by running its migrations in the file
itself. Two commands starting at once in a fresh folder race there (one dies, or both, and the
file can be left unreadable), and an interrupt in the middle leaves a half-migrated file every
later command trips over. So segkit creates the store itself: under an exclusive lock on
``<store>.lock``, in a temporary file beside it, which is renamed into place only once MLflow's
tables are all there; Ctrl-C meanwhile is held back until the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import signal
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from segkit.core.errors import ConfigError

SQLITE_PREFIX = "sqlite:///"
# The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` tracking URI (None for other stores)."""
    return Path(uri[len(SQLITE_PREFIX) :]) if uri.startswith(SQLITE_PREFIX) else None


def check_sqlite_store(path: Path, uri: str, key: str = "tracking.uri") -> None:
    """Raise a one-line ``ConfigError`` when an existing, non-empty ``path`` is not an MLflow
    SQLite store: not SQLite at all, or one whose creation never finished."""
    if not _holds_data(path):
        return
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise ConfigError(
            f"{key}={uri}: {path} is not an SQLite database; move it aside (segkit then "
            "creates a fresh store) or point tracking.uri at another store"
        )
    revision, head = schema_revision(path), latest_revision()
    if revision is None:
        raise ConfigError(
            f"{key}={uri}: {path} is a half-made MLflow store (no schema revision: its creation "
            "was interrupted) or not an MLflow store; move it aside and rerun, segkit then "
            "creates a fresh one"
        )
    if revision != head:
        raise ConfigError(
            f"{key}={uri}: {path} is at MLflow schema revision {revision}, not {head} of the "
            "installed MLflow (a half-made store, or an older MLflow's): back it up and run "
            f"`mlflow db upgrade {SQLITE_PREFIX}{path}`, or move it aside"
        )


def ensure_local_store(uri: str) -> None:
    """Create the SQLite store of ``uri`` if it is missing (or an empty file), whole or not at
    all, and check the one that is there. Other URIs pass unchanged.

    Raises:
        ConfigError: the file is not an MLflow SQLite store.
        KeyboardInterrupt: Ctrl-C during the creation, after the temporary file is gone.
    """
    path = sqlite_path(uri)
    if path is None:
        return
    if _holds_data(path):
        check_sqlite_store(path, uri)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_name(f"{path.name}.lock")):
        if _holds_data(path):  # another command made it meanwhile
            check_sqlite_store(path, uri)
            return
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
        try:
            with _interrupts_held() as interrupted:
                _create(tmp)
                if not interrupted:
                    tmp.replace(path)
            if interrupted:
                raise KeyboardInterrupt
        finally:
            tmp.unlink(missing_ok=True)


def _holds_data(path: Path) -> bool:
    """A file with content (MLflow, like SQLite, treats an empty file as a new store)."""
    return path.is_file() and path.stat().st_size > 0


def _create(path: Path) -> None:
    """MLflow's tables in a new SQLite file ``path``, by MLflow's own migrations."""
    # lazy: MLflow takes seconds to import; only a command that creates a store needs this
    from mlflow.store.db.utils import _initialize_tables, create_sqlalchemy_engine

    engine = create_sqlalchemy_engine(f"{SQLITE_PREFIX}{path}")
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()
    if schema_revision(path) != latest_revision():
        raise RuntimeError(f"MLflow's migrations left {path} short of the latest revision")


def latest_revision() -> str:
    """The schema revision of the installed MLflow's stores."""
    # lazy: see _create
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def schema_revision(path: Path) -> str | None:
    """The MLflow schema revision an SQLite file is at (None without one)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.DatabaseError:  # no such table, or not a database
        return None
    return rows[0][0] if len(rows) == 1 else None


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock_file`` (kept afterwards: removing it would race)."""
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[list[int]]:
    """SIGINT recorded rather than raised while the block runs (in the main thread only):
    the list it yields is non-empty once one came."""
    came: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield came
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: came.append(signum))
    try:
        yield came
    finally:
        signal.signal(signal.SIGINT, previous)
