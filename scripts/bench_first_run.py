"""The embedded default run (``make train``) against the one it replaced, side by side.

Each variant is ``python -m segkit.train`` with its overrides, in its own process, one after the
other, logging to its own fresh SQLite store; both read the same generated synthetic dataset
(generated first, outside the timings). The table gives the compute (epochs x training images x
pixels per image), wall and CPU seconds (user + sys of the process) and the validation Dice of
the restored best checkpoint, each with its ratio to the old default.

    python scripts/bench_first_run.py
    python scripts/bench_first_run.py --cache-dir /tmp/segkit-cache
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The default before issue 17 (128 px, 20 epochs, batch 8), in today's config terms.
VARIANTS = {
    "before (128 px, 20 epochs, batch 8)": [
        "dataset.image_size=128",
        "trainer.epochs=20",
        "trainer.batch_size=8",
    ],
    "now (the embedded default)": [],
}
TRAIN_IMAGES = 210  # 300 synthetic samples minus 15% val and 15% test


def run_variant(overrides: list[str], cache_dir: Path, folder: Path) -> dict[str, float]:
    """Train one variant; returns its wall and CPU seconds and the logged best/val/dice."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    command = [
        sys.executable, "-m", "segkit.train", *overrides, f"cache_dir={cache_dir}",
        f"output_dir={folder / 'run'}", f"tracking.uri={uri}",
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(
            f"bench_first_run: {' '.join(overrides) or 'default'} failed:\n{done.stderr[-2000:]}"
        )
    from mlflow import MlflowClient  # lazy: only the parent reads the stores

    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("segkit").experiment_id])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    params = run.data.params
    size, epochs = int(params["dataset.image_size"]), int(params["trainer.epochs"])
    return {
        "compute": epochs * int(params["data.train_samples"]) * size * size,
        "wall": wall,
        "cpu": cpu,
        "dice": run.data.metrics["best/val/dice"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: a temporary one")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory() as scratch:
        cache_dir = args.cache_dir or Path(scratch) / "cache"
        from segkit.data.formats.synthetic import ensure_synthetic  # lazy: after the env

        ensure_synthetic(cache_dir / "synthetic", 300, 0, 160, 224)
        results = {}
        for name, overrides in VARIANTS.items():
            folder = Path(scratch) / str(len(results))
            folder.mkdir()
            results[name] = run_variant(overrides, cache_dir, folder)
    base = next(iter(results.values()))
    print(f"machine: {os.cpu_count()} CPUs; {TRAIN_IMAGES} training images")
    print("| run | compute (Mpx) | ratio | wall s | ratio | CPU s | ratio | best val/dice |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(
            f"| {name} | {r['compute'] / 1e6:.0f} | {r['compute'] / base['compute']:.3f} "
            f"| {r['wall']:.0f} | {r['wall'] / base['wall']:.2f} | {r['cpu']:.0f} "
            f"| {r['cpu'] / base['cpu']:.2f} | {r['dice']:.4f} |"
        )


if __name__ == "__main__":
    main()
