"""Improved UNet against a classic UNet of the same size on the ISIC sample, 3 seeds each, with
paired intervals: trains, evaluates and writes docs/quality_comparison.md.

Runs what a user would run, with the budget of docs/quality.md's single-seed rows (40 epochs):

    python -m segkit.train -m experiment=isic_improved_unet dataset.root=... trainer.epochs=40 \
        seed=0,1,2
    python -m segkit.train -m experiment=isic_improved_unet model=unet model.base_filters=20 \
        dataset.root=... trainer.epochs=40 seed=0,1,2
    python -m segkit.evaluate run_id=<each run> split=val|test
    python -m segkit.compare experiment=quality-compare group_by=model.name
    python -m segkit.compare baseline=<unet seed i> candidate=<improved seed i> split=test|val

Runs log to one SQLite store under ``--work``; what is there already (a trained sweep, an
evaluation) is not run again, so the script can be rerun after an interruption.

    python scripts/quality_compare.py                 # ~2 h on 2 CPU cores
    python scripts/quality_compare.py --report-only   # rebuild the report from the store
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from quality_report import REPO, git, machine, segkit

from segkit.app.compare import compare
from segkit.app.compare_groups import summarise_groups
from segkit.app.compare_paired import compare_pair

EXPERIMENT = "quality-compare"
SEEDS = (0, 1, 2)
SPLITS = ("val", "test")
# (label, model.name, overrides): the candidate first, the baseline second.
VARIANTS = (
    ("improved_unet", "improved_unet", ("experiment=isic_improved_unet",)),
    (
        "unet_same_budget",
        "unet",
        ("experiment=isic_improved_unet", "model=unet", "model.base_filters=20"),
    ),
)
BUDGET = ("trainer.epochs=40",)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "quality_compare")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "quality_comparison.md")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    store = f"sqlite:///{args.work / 'mlflow.db'}"
    common = [f"tracking.uri={store}", f"cache_dir={args.work / 'cache'}"]
    if not args.report_only:
        if not (args.data / "isic2018_256").is_dir():
            sys.exit(f"--data {args.data}: no isic2018_256 folder (the real ISIC sample)")
        for label, model, overrides in VARIANTS:
            if len(training_runs(store, model)) < len(SEEDS):
                train(label, overrides, args.data, args.work, common)
        for model in dict.fromkeys(v[1] for v in VARIANTS):
            for run in training_runs(store, model).values():
                for split in SPLITS:
                    evaluate(run.info.run_id, split, args.work, common, store)
    result = results(store)
    (args.work / "comparison.json").write_text(json.dumps(result, indent=2))
    args.out.write_text(markdown(result))
    print(f"wrote {args.out}")
    return 0


def train(label: str, overrides, data: Path, work: Path, common: list[str]) -> None:
    """One -m sweep over the seeds."""
    seeds = ",".join(map(str, SEEDS))
    args = [
        "-m",
        *overrides,
        f"dataset.root={data / 'isic2018_256'}",
        *BUDGET,
        "trainer.verbose=2",
        f"tracking.experiment={EXPERIMENT}",
        *common,
        f"seed={seeds}",
        f"hydra.sweep.dir={work / 'sweeps' / label}",
    ]
    print(f"== {label}: segkit.train {' '.join(args)}", flush=True)
    segkit("train", args, work / f"{label}.log")


def training_runs(store: str, model: str) -> dict[int, object]:
    """The finished training runs of ``model`` by seed (a sweep's children)."""
    from mlflow import MlflowClient

    client = MlflowClient(store)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return {}
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"params.`model.name` = '{model}' and attributes.status = 'FINISHED'",
    )
    found = {}
    for run in runs:
        # A sweep's jobs: not its parent run (whose seed param is "0,1,2"), not evaluations.
        tags = run.data.tags
        if "mlflow.parentRunId" in tags and tags.get("segkit.kind") != "evaluation":
            found.setdefault(int(run.data.params["seed"]), run)
    return {seed: found[seed] for seed in sorted(found) if seed in SEEDS}


def evaluate(run_id: str, split: str, work: Path, common: list[str], store: str) -> None:
    """``segkit.evaluate`` of one run on one split, unless a finished one exists."""
    from mlflow import MlflowClient

    client = MlflowClient(store)
    run = client.get_run(run_id)
    done = client.search_runs(
        [run.info.experiment_id],
        filter_string=(
            f"tags.`mlflow.parentRunId` = '{run_id}' and params.split = '{split}' "
            "and attributes.status = 'FINISHED'"
        ),
    )
    if done:
        return
    out = work / "evaluations" / f"{run_id}-{split}"
    segkit(
        "evaluate",
        [f"run_id={run_id}", f"split={split}", f"output_dir={out}", *common],
        out.with_suffix(".log"),
    )


def results(store: str) -> dict:
    """Groups over seeds, paired comparisons per seed, times and settings, as plain data."""
    table = compare(
        experiment=EXPERIMENT,
        uri=store,
        params="model.name,model.base_filters,seed,trainer.epochs",
        sweep_parents=False,
    )
    notes: list[str] = []
    wide, _ = summarise_groups(table, ["model.name"], "best/val/dice", notes)
    candidate, baseline = (training_runs(store, v[1]) for v in VARIANTS)
    paired = []
    for seed in SEEDS:
        for split in SPLITS:
            c = compare_pair(baseline[seed].info.run_id, candidate[seed].info.run_id, split, store)
            # The record's own "seed" is the bootstrap's: the run seed is kept apart.
            paired.append({**c.record(), "run_seed": seed})
    runs = [*candidate.values(), *baseline.values()]
    minutes = {run.info.run_name: (run.info.end_time - run.info.start_time) / 60000 for run in runs}
    return {
        "groups": wide.to_dict(orient="records"),
        "notes": notes,
        "paired": paired,
        "train_minutes": minutes,
        "parameters": {r.data.params["model.name"]: r.data.tags["model.parameters"] for r in runs},
        "commit": git("rev-parse", "--short", "HEAD"),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
    }


def markdown(result: dict) -> str:
    """docs/quality_comparison.md."""
    from quality_compare_markdown import comparison_markdown

    return comparison_markdown(result, VARIANTS, BUDGET)


if __name__ == "__main__":
    sys.exit(main())
