"""The MLflow store a command talks to: local files or a server, and whether it is there.

Several processes must not write one local SQLite file at once (``is_local_store`` tells a sweep
when to refuse); a server that does not answer is a one-line error before anything runs, where
MLflow's own client would retry each request for minutes.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

from segkit.core.errors import ConfigError
from segkit.tracking.local_store import check_sqlite_store, sqlite_path

SERVER_HINT = "start one with `make server` (or set tracking.uri to a running server)"


def is_local_store(uri: str) -> bool:
    """Whether ``uri`` is a store in local files (SQLite or a folder) rather than a server."""
    if uri.startswith("databricks"):  # "databricks" or "databricks://profile": a service
        return False
    scheme = urllib.parse.urlparse(uri).scheme
    return scheme in ("", "file", "sqlite") or len(scheme) == 1  # "C:" is a Windows path


def check_existing_store(uri: str, key: str, timeout: float = 5.0) -> None:
    """Raise a one-line ``ConfigError`` when a store to be read from is not there: a SQLite file
    that does not exist (MLflow would create an empty one in the current folder and find nothing
    in it) or a server that does not answer (MLflow's client would retry for minutes)."""
    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        raise ConfigError(f"{key}={uri}: no such store (run from the folder holding mlflow.db)")
    if path is not None:
        check_sqlite_store(path, uri, key)
    check_server(uri, timeout)


def check_server(uri: str, timeout: float) -> None:
    """Raise a one-line ``ConfigError`` when an http(s) tracking URI has no server answering.

    Any HTTP answer counts (a proxy's 401 is a server that answers); other URIs pass unchecked.
    """
    if urllib.parse.urlparse(uri).scheme not in ("http", "https"):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ConfigError(
            f"tracking.uri={uri}: no MLflow server answers ({reason}); {SERVER_HINT}"
        ) from None


def runs_table_url(ui: str, uri: str, experiment: str) -> str:
    """The MLflow UI's runs table of ``experiment`` in store ``uri``, served at ``ui``
    (``http://127.0.0.1:5000/#/experiments/1/runs``); the UI's home page when the store or
    the experiment does not exist yet (the first run creates them)."""
    from mlflow import MlflowClient  # lazy: MLflow takes seconds to import

    path = sqlite_path(uri)
    home = ui.rstrip("/")
    if path is not None and not path.is_file():
        return home
    found = MlflowClient(tracking_uri=uri).get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage != "active":
        return home
    return f"{home}/#/experiments/{found.experiment_id}/runs"
