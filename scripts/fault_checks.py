"""What the fault matrix reads back after a case: a row of outcomes, the files lost, whether a
command stopped with one line."""

from __future__ import annotations

import contextlib
import hashlib
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Row:
    """One case's outcome: what should happen, what did, the MLflow status, files lost."""

    case: str
    expected: str
    observed: str
    status: str
    data_lost: str
    ok: bool


def snapshot(paths: Iterable[Path]) -> dict[Path, str]:
    """SHA-256 of every file under ``paths``."""
    digests = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            digests[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def lost(before: dict[Path, str], moved_to: Path | None = None) -> str:
    """Files of ``before`` now changed or gone ("none" when all are intact). A file moved
    under ``moved_to`` (a superseded run's folder) with its content intact is not lost."""
    missing = []
    moved = snapshot([moved_to]) if moved_to is not None and moved_to.exists() else {}
    for path, digest in before.items():
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest:
            continue
        if digest in moved.values():
            continue
        missing.append(path.name)
    return ", ".join(missing) if missing else "none"


# Other libraries' notices, not segkit's messages: TensorFlow's C++ start-up lines (absl:
# "E0000 00:00:... cuda_platform.cc ...") and MLflow's INFO lines when it creates a store.
NOTICE = re.compile(
    r"^([IWEF]\d{4} |WARNING: All log messages before absl|\d{4}/\d\d/\d\d [\d:]+ INFO )"
)
PREFIX = re.compile(r"^segkit\.\w+: error: ")


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The command's stderr lines, other libraries' notices left out."""
    return [line for line in result.stderr.splitlines() if line.strip() and not NOTICE.match(line)]


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """``exit 2: <the line>`` when the command stopped with one line and status 2, else what
    it did."""
    lines = error_lines(result)
    if result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr:
        return f"exit 2: {PREFIX.sub('', lines[0])[:90]}"
    return f"exit {result.returncode}, {len(lines)} stderr lines: {' | '.join(lines[-2:])[:160]}"


class Skipped(Exception):
    """A case that cannot run on this machine (no root to mount a file system), with why."""


@contextlib.contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A real tmpfs mounted at ``folder`` (``ro``, or ``size=2m`` for a disk that fills up),
    unmounted afterwards.

    Raises:
        Skipped: mounting is not allowed here (not root, or no mount namespace rights).
    """
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        raise Skipped(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root'})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
