"""Train every recipe on the real samples, evaluate it, and write docs/quality.md.

Each recipe of conf/experiment/ runs as a user would run it (``python -m segkit.train
experiment=<recipe> dataset.root=...``), shortened to what 2 CPU cores finish in about 20 minutes,
then ``python -m segkit.evaluate run_id=<id> split=<held-out split>`` scores its best checkpoint
at the original resolution. Runs log to one SQLite store under ``--work``; each recipe's results
(scores, curves, timings, the commit) are kept as JSON there, so recipes can be (re)run one at a
time with ``--only`` and the report rebuilt from all of them.

    python scripts/quality_report.py                       # all recipes (~1.5 h on 2 cores)
    python scripts/quality_report.py --only voc_unet       # one recipe, then rebuild the report
    python scripts/quality_report.py --report-only         # rebuild docs/quality.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from quality_recipes import ENTRIES, Entry

from segkit.evaluation.figures import plot_learning_curves

REPO = Path(__file__).resolve().parent.parent
CURVES = ("train/loss", "val/loss", "val/dice", "val/miou")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "quality")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "quality.md")
    parser.add_argument("--only", nargs="+", choices=[e.name for e in ENTRIES])
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if not args.report_only:
        if not args.data.is_dir():
            sys.exit(f"--data {args.data}: folder not found (the real dataset samples)")
        for entry in ENTRIES:
            if args.only is None or entry.name in args.only:
                result = run_entry(entry, args.data, args.work)
                path = args.work / "results" / f"{entry.name}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(result, indent=2))
    results = load_results(args.work)
    if not results:
        sys.exit(f"no results under {args.work / 'results'}: run without --report-only first")
    write_report(results, args.out)
    print(f"wrote {args.out}")
    return 0


def run_entry(entry: Entry, data: Path, work: Path) -> dict:
    """Train and evaluate one entry; returns its scores, curves, timings and settings."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = work / "runs" / f"{entry.name}-{stamp}"
    store = f"sqlite:///{work / 'mlflow.db'}"
    common = [f"tracking.uri={store}", f"cache_dir={work / 'cache'}"]
    overrides = [
        f"experiment={entry.experiment}",
        f"dataset.root={data / entry.data}",
        *entry.overrides,
    ]
    train_cmd = [
        *overrides,
        *common,
        f"output_dir={run_dir}",
        f"run_name={entry.name}",
        "tracking.experiment=quality-report",
        "trainer.verbose=2",
    ]
    print(f"== {entry.name}: segkit.train {' '.join(overrides)}", flush=True)
    start = time.perf_counter()
    segkit("train", train_cmd, run_dir / "train.log")
    train_seconds = time.perf_counter() - start
    run = json.loads((run_dir / ".segkit" / "run.json").read_text())
    run_id = run["run_id"]
    evaluations = {}
    for split in entry.splits:
        out = run_dir / f"evaluate-{split}"
        start = time.perf_counter()
        segkit(
            "evaluate",
            [f"run_id={run_id}", f"split={split}", f"output_dir={out}", *common],
            out.with_suffix(".log"),
        )
        per_image = (out / f"{split}_per_image.csv").read_text().strip().splitlines()
        evaluations[split] = {
            "seconds": time.perf_counter() - start,
            "images": len(per_image) - 1,
            "scores": json.loads((out / f"{split}_metrics.json").read_text()),
        }
    return {
        "name": entry.name,
        "overrides": overrides,
        "run_id": run_id,
        "run_dir": str(run_dir),
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "train_seconds": train_seconds,
        "params": run_params(store, run_id),
        "curves": run_curves(store, run_id),
        "evaluations": evaluations,
    }


def segkit(command: str, overrides: list[str], log: Path) -> None:
    """Run ``python -m segkit.<command> overrides``; its output goes to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as f:
        done = subprocess.run(
            [sys.executable, "-m", f"segkit.{command}", *overrides],
            cwd=REPO,
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    if done.returncode:
        tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        sys.exit(f"segkit.{command} failed (exit {done.returncode}, log {log}): {tail[0]}")


def run_params(store: str, run_id: str) -> dict[str, str]:
    """The logged parameters the report shows (model size, input size, epochs, loss...)."""
    from mlflow.tracking import MlflowClient

    run = MlflowClient(store).get_run(run_id)
    keys = (
        "model.name", "model.base_filters", "dataset.image_size", "dataset.resize",
        "trainer.epochs", "trainer.batch_size", "trainer.loss", "trainer.optimizer.lr",
        "trainer.schedule.name", "augment.name", "precision",
    )  # fmt: skip
    params = {k: run.data.params[k] for k in keys if k in run.data.params}
    params["parameters"] = run.data.tags.get("model.parameters", "")
    params["train/dataset"] = run.data.params.get("data.train_samples", "")
    return params


def run_curves(store: str, run_id: str) -> dict[str, list[float]]:
    """Per-epoch values of the learning-curve metrics, in epoch order."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    curves = {}
    for key in CURVES:
        history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
        if history:
            curves[key] = [m.value for m in history]
    return curves


def machine() -> str:
    """CPU count and model, e.g. ``2 CPU cores (AMD EPYC 9654 96-Core Processor)``."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{os.cpu_count()} CPU cores ({names[0] if names else platform.machine()})"


def git(*args: str) -> str:
    """Output of a git command in the repository."""
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def load_results(work: Path) -> dict[str, dict]:
    """Saved results by entry name, in the order of ENTRIES."""
    folder = work / "results"
    found = {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}
    return {e.name: found[e.name] for e in ENTRIES if e.name in found}


def write_report(results: dict[str, dict], out: Path) -> None:
    """docs/quality.md and one learning-curve figure per entry beside it."""
    from quality_markdown import report_markdown

    out.parent.mkdir(parents=True, exist_ok=True)
    figures = {}
    for name, result in results.items():
        figure = out.with_name(f"quality_{name}.png")
        plot_learning_curves(result["curves"], figure)
        figures[name] = figure.name
    out.write_text(report_markdown(results, figures))


if __name__ == "__main__":
    sys.exit(main())
