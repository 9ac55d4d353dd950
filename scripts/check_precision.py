"""Validation Dice under mixed precision against float32, on the same run (default: `make train`).

Trains the composed config (by default the embedded one that `make train` runs: a UNet on the
synthetic dataset, 20 epochs) once per policy with the same seed, prints the final validation and
test Dice of each and the difference to float32, and exits with status 1 when a policy's
validation Dice is further than ``--tolerance`` from float32's.

    python scripts/check_precision.py
    python scripts/check_precision.py --policies float32,mixed_bfloat16 model=improved_unet
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hydra import compose, initialize_config_dir  # noqa: E402

from segkit.app.cli import CONF_DIR  # noqa: E402
from segkit.app.run import Run  # noqa: E402
from segkit.config.store import register_configs  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", default="float32,mixed_bfloat16")
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    register_configs()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for policy in args.policies.split(","):
            overrides = [
                "tracking=none",
                "trainer.verbose=0",
                *args.overrides,
                f"trainer.precision={policy}",
                f"output_dir={Path(tmp) / policy}",
            ]
            with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
                cfg = compose(config_name="train", overrides=overrides)
            start = time.perf_counter()
            run = Run(cfg)
            scores = run.execute()
            speed = statistics.median(run.history["train/images_per_second"][1:])
            results[policy] = (scores, time.perf_counter() - start, speed)
            print(f"  {policy}: val/dice {scores['val/dice']:.4f}", flush=True)

    reference = results.get("float32", next(iter(results.values())))[0]["val/dice"]
    print(f"\n{'precision':<16}{'val/dice':>10}{'test/dice':>11}{'diff':>9}{'img/s':>8}{'min':>7}")
    failed = False
    for policy, (scores, seconds, speed) in results.items():
        diff = scores["val/dice"] - reference
        failed |= abs(diff) > args.tolerance
        print(
            f"{policy:<16}{scores['val/dice']:>10.4f}{scores.get('test/dice', float('nan')):>11.4f}"
            f"{diff:>+9.4f}{speed:>8.1f}{seconds / 60:>7.1f}"
        )
    verdict = "FAILED" if failed else "ok"
    print(f"\nvalidation Dice within {args.tolerance} of float32: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
