"""What produced a run: the tags MLflow's UI reads its source from (entry point, user, git
commit) and the versions of the libraries it ran with.

``MlflowClient.create_run`` (segkit's explicit client) sets none of them, unlike the fluent
``mlflow.start_run``; these are the same tags under MLflow's own names (``mlflow.source.*``,
``mlflow.user``), so the UI's Source and User columns and the commit link work.
"""

from __future__ import annotations

import getpass
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# Libraries whose versions every run records as ``<name>.version`` tags (besides Python's).
VERSIONED = ("tensorflow", "keras", "numpy", "mlflow", "hydra-core", "omegaconf", "albumentations")


def library_versions() -> dict[str, str]:
    """``{"numpy.version": "2.4.0", "hydra.version": ...}`` from the installed distributions."""
    versions = {}
    for name in VERSIONED:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "unknown"
        versions[f"{name.removesuffix('-core')}.version"] = version
    return versions


# Seconds each git query may take: a huge repository must not hold up a run's start.
GIT_TIMEOUT = 10.0


def entry_point(argv0: str | None = None) -> str:
    """The command a run was started with: ``python -m segkit.train`` for segkit's entry
    points (``sys.argv[0]`` is then the module's file), else the program's name."""
    program = Path(argv0 if argv0 is not None else (sys.argv[0] if sys.argv else ""))
    if program.parent.name == "segkit" and program.suffix == ".py":
        return f"python -m segkit.{program.stem}"
    return program.name or "<console>"


def _git(folder: Path, *args: str) -> str | None:
    """Output of ``git <args>`` in ``folder``; None when git is missing or fails there."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_tags(folder: str | Path | None = None) -> dict[str, str]:
    """Commit, branch, remote URL and dirty flag of the git repository holding ``folder``
    (default: the working directory); empty outside a repository or a commit.

    Dirty means tracked files differ from the commit: untracked files (outputs, mlflow.db)
    do not count.
    """
    folder = Path(folder or Path.cwd())
    commit = _git(folder, "rev-parse", "HEAD")
    if not commit:
        return {}
    tags = {"mlflow.source.git.commit": commit}
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    if status is not None:
        tags["mlflow.source.git.dirty"] = "true" if status else "false"
    branch = _git(folder, "rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        tags["mlflow.source.git.branch"] = branch
    remote = _git(folder, "remote", "get-url", "origin")
    if remote:
        tags["mlflow.source.git.repoURL"] = remote
    return tags


def source_tags(folder: str | Path | None = None) -> dict[str, str]:
    """MLflow's source tags of this process: entry point, type LOCAL, user, git state."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (some containers)
        user = "unknown"
    return {
        "mlflow.source.name": entry_point(),
        "mlflow.source.type": "LOCAL",
        "mlflow.user": user,
        **git_tags(folder),
    }
