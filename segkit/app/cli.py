"""Command-line wrapper shared by the ``python -m segkit.X`` entry points.

User mistakes (a typo in an override, a wrong type, a missing dataset) end with one line on stderr
and exit status 2, without a traceback; a bug in segkit still shows its full traceback.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path

from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

from segkit.app.hydra_job import sweep_job
from segkit.core.errors import CallbackAbort, SegkitError

# The repository's conf/ folder, next to the package (segkit is installed editable from a clone).
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")
USAGE_ERROR = 2
INTERRUPTED = 130
# Hydra options that come with a plugin from segkit's optional `sweep` extra.
PLUGINS = {
    "hydra/launcher/joblib": "hydra-joblib-launcher",
    "hydra/launcher/submitit_local": "hydra-submitit-launcher",
    "hydra/launcher/submitit_slurm": "hydra-submitit-launcher",
    "hydra/sweeper/optuna": "hydra-optuna-sweeper",
}


def run_cli(prog: str, hydra_main: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` function, turning user errors into one-line messages."""
    # Hydra prints composition errors over several lines plus a hint; with HYDRA_FULL_ERROR it
    # raises them instead, so they can be reported here as one line. A user who set the
    # variable gets the full traceback they asked for.
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra_main()
    except (SegkitError, HydraException, OmegaConfBaseException, CallbackAbort) as error:
        if full_error:
            raise
        cause = error.error if isinstance(error, CallbackAbort) else error
        print(f"{prog}: error: {one_line(cause)}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    except KeyboardInterrupt as interrupt:
        # A training run adds how to resume it to the interrupt's message.
        detail = f": {interrupt}" if str(interrupt) else ""
        print(f"{prog}: interrupted{detail}", file=sys.stderr)
        sys.exit(INTERRUPTED)
    finally:
        if not full_error:
            os.environ.pop("HYDRA_FULL_ERROR", None)


def user_errors_exit(prog: str) -> Callable[[Callable], Callable]:
    """Decorate a Hydra task function: a ``SegkitError`` ends the process with one line, status 2.

    Caught inside the task because Hydra reports a failing job over several lines of its own.
    In a ``-m`` sweep the error is raised on instead: Hydra records the job as failed and the
    sweeper decides whether the sweep goes on (Optuna does; the basic sweeper stops, and
    ``run_cli`` reports the error in one line).
    """

    def decorate(task: Callable) -> Callable:
        @wraps(task)
        def wrapper(*args, **kwargs):
            try:
                return task(*args, **kwargs)
            # A `???` value the user did not set (dataset.root of a recipe) is theirs to fix too.
            except (SegkitError, MissingMandatoryValue) as error:
                if sweep_job() is not None:
                    raise
                print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
                raise SystemExit(USAGE_ERROR) from None

        return wrapper

    return decorate


def one_line(error: BaseException) -> str:
    """A one-line description of a user error, naming the key or file at fault."""
    cause = error
    while not isinstance(cause, OmegaConfBaseException) and cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and cause.full_key:
        return _unknown_key(cause)
    if isinstance(cause, MissingMandatoryValue) and cause.full_key:
        return f"missing value for {cause.full_key} (set it with {cause.full_key}=...)"
    if isinstance(cause, ValidationError) and cause.full_key:
        reason = _first_line(cause.msg or str(cause))
        return f"invalid value for {cause.full_key}: {reason}"
    missing = getattr(cause, "missing_cfg_file", None) or getattr(error, "missing_cfg_file", None)
    if missing in PLUGINS:
        group, _, option = str(missing).rpartition("/")
        return (
            f"{group}={option} needs the {PLUGINS[missing]} plugin: pip install -e '.[sweep]' "
            "in a clone of segkit (pip install 'segkit[sweep]' otherwise)"
        )
    if isinstance(error, MissingConfigException) and error.options:
        return f"{_first_line(str(error))} Available: {', '.join(error.options)}"
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _unknown_key(cause) -> str:
    key = str(cause.full_key)
    leaf = key.rsplit(".", 1)[-1]
    parent = cause.parent_node
    known = [str(k) for k in parent] if isinstance(parent, DictConfig) else []
    message = f"unknown config key {key}"
    close = difflib.get_close_matches(leaf, known, n=1)
    if close:
        message += f" (did you mean {key[: len(key) - len(leaf)]}{close[0]}?)"
    if known:
        message += f"; valid keys here: {', '.join(known)}"
    return message


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def model_alias(args: list[str]) -> list[str]:
    """``model=X`` -> ``model_path=X`` for evaluate and predict: there ``model`` names a file or
    a registered model, while Hydra would read it as segkit's ``model`` config group."""
    return [f"model_path={a[len('model=') :]}" if a.startswith("model=") else a for a in args]
