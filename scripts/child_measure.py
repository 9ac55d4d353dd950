"""One benchmark measurement in a fresh Python process, so that its peak memory is its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def measure_in_child(script: str, child_args: list[str], label: str) -> dict:
    """Run ``python <script> --child <child_args>`` and return the JSON of its last output line.

    Exits the benchmark with the child's stderr tail when the measurement fails.
    """
    command = [sys.executable, script, "--child", *child_args]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        sys.exit(f"{Path(script).stem}: {label} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
