"""``python -m segkit.compare experiment=isic``: the runs of an experiment (or of one sweep) as a
table of key params and final metrics, best first, through ``mlflow.search_runs``.

    python -m segkit.compare experiment=isic metric=test/dice
    python -m segkit.compare sweep=<parent run id> --csv runs.csv
    python -m segkit.compare experiment=segkit uri=http://127.0.0.1:5000 top=10
    python -m segkit.compare experiment=isic group_by=model.name      # mean ± sd over seeds/folds
    python -m segkit.compare baseline=<run id> candidate=<run id> split=test   # paired, per image

Evaluation runs (``segkit.evaluate``, tagged ``segkit.kind=evaluation``) are left out; a training
run's latest evaluation scores are added as ``eval:<split>/<score>`` columns. ``group_by``
summarises the runs per group (``segkit.app.compare_groups``); ``baseline``/``candidate``
compares two runs image by image (``segkit.app.compare_paired``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from segkit.app.compare_groups import TEST_IDS, group_columns, summarise_groups
from segkit.app.compare_paired import compare_pair, log_comparison, report_lines
from segkit.core.errors import ConfigError, SegkitError
from segkit.core.naming import EPOCH_SCORES, is_final_score, is_split_score, metric_direction
from segkit.evaluation.challenge import HEADLINE_SCORES
from segkit.tracking.store import check_existing_store

PROG = "segkit.compare"
KEYS = {
    "experiment": "segkit",
    "sweep": None,
    "metric": "best/val/dice",
    "uri": "sqlite:///mlflow.db",
    "top": None,
    "params": "model.name,dataset.name,trainer.epochs,trainer.optimizer.lr,trainer.loss",
    "group_by": None,
    "baseline": None,
    "candidate": None,
    "split": "test",
    "seed": "0",
    "log": "false",
}
# The keys of each mode besides uri: a table (or groups) of runs, or a paired comparison.
TABLE_KEYS = ("experiment", "sweep", "metric", "top", "params", "group_by")
PAIRED_KEYS = ("baseline", "candidate", "split", "seed", "log")
# The final scores shown as columns: the epoch scores and the challenges' headline scores.
COMPARED_SCORES = (*EPOCH_SCORES, *HEADLINE_SCORES)


def compare(
    experiment: str = "segkit",
    sweep: str | None = None,
    metric: str = "best/val/dice",
    uri: str = "sqlite:///mlflow.db",
    top: int | None = None,
    params: str = KEYS["params"],
    sweep_parents: bool = True,
):
    """The runs as a pandas DataFrame, best first by ``metric`` (lowest first for a loss);
    ``sweep_parents=False`` leaves out the parent runs of sweeps (which repeat their best job).

    Raises:
        ConfigError: no such experiment or sweep run, or ``metric`` logged by none of the runs.
    """
    check_existing_store(uri, "uri")
    found = _experiment(uri, experiment, sweep)
    filters = f"tags.`mlflow.parentRunId` = '{sweep}'" if sweep else ""
    runs = _search(uri, found.experiment_id, filters)
    if runs.empty:
        return runs
    kind = runs.get("tags.segkit.kind")
    evaluations = runs[kind == "evaluation"] if kind is not None else runs.iloc[0:0]
    runs = runs[kind != "evaluation"] if kind is not None else runs
    if not sweep_parents and "tags.sweep.launcher" in runs:  # a tag only parents have
        runs = runs[runs["tags.sweep.launcher"].isna()]
    column = f"metrics.{metric}"
    if column not in runs:
        logged = sorted(c[len("metrics.") :] for c in runs if c.startswith("metrics."))
        raise ConfigError(
            f"metric={metric}: logged by none of the runs; metrics: {', '.join(logged)}"
        )
    ascending = metric_direction(metric) == "minimize"
    runs = runs.sort_values(column, ascending=ascending, na_position="last")
    wanted = [p.strip() for p in params.split(",") if p.strip()]
    table = runs[["run_id", "tags.mlflow.runName", "status"]].rename(
        columns={"tags.mlflow.runName": "run_name"}
    )
    for name in wanted:
        table[name] = runs.get(f"params.{name}")
    table[TEST_IDS] = runs.get("tags.split.test.ids")
    metrics = [column] + [c for c in runs.columns if c != column and _final_score(c)]
    for c in metrics:
        table[c[len("metrics.") :]] = runs[c]
    _add_evaluations(table, evaluations)
    table = table.reset_index(drop=True)
    return table.head(top) if top else table


def _experiment(uri: str, experiment: str, sweep: str | None):
    """The experiment named, or the one of the sweep run ``sweep``."""
    # lazy: MLflow takes seconds to import; `--help` and a mistyped argument need none of it
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if sweep:
        try:
            found = client.get_experiment(client.get_run(sweep).info.experiment_id)
        except mlflow.exceptions.MlflowException:
            raise ConfigError(f"sweep={sweep}: no such run in {uri}") from None
    if found is None:
        names = [e.name for e in client.search_experiments()]
        raise ConfigError(
            f"experiment={experiment!r} not found in {uri}; experiments: {', '.join(names)}"
        )
    return found


def _final_score(column: str) -> bool:
    """A final mean score of a training run: ``metrics.best/val/dice``, ``metrics.test/miou``."""
    if not column.startswith("metrics."):
        return False
    name = column[len("metrics.") :]
    return is_final_score(name) and name.rsplit("/", 1)[-1] in COMPARED_SCORES


def _search(uri: str, experiment_id: str, filters: str):
    import mlflow  # lazy: see compare
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(uri):
        return mlflow.search_runs(
            experiment_ids=[experiment_id], filter_string=filters, output_format="pandas"
        )


def _add_evaluations(table, evaluations) -> None:
    """The latest evaluation of each run and split, as ``eval:<metric>`` columns (a run
    evaluated on val and then on test has both)."""
    if evaluations.empty or "tags.mlflow.parentRunId" not in evaluations:
        return
    by_parent = evaluations.sort_values("start_time").groupby("tags.mlflow.parentRunId")
    for c in evaluations.columns:
        if c.startswith("metrics.") and is_split_score(c):
            # last() skips missing values: the latest evaluation that has this split's score.
            table[f"eval:{c[len('metrics.') :]}"] = table["run_id"].map(by_parent[c].last())


def main(argv: list[str] | None = None) -> None:
    """Console entry point (``segkit-compare``): ``key=value`` arguments and ``--csv PATH``."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("settings", nargs="*", help=f"key=value; keys: {', '.join(KEYS)}")
    parser.add_argument("--csv", type=Path, help="also save the table as CSV")
    args = parser.parse_args(argv)
    try:
        options = _options(args.settings)
        if options["baseline"] or options["candidate"]:
            _paired(options)
        else:
            _table(options, args.csv)
    except SegkitError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        sys.exit(2)


def _options(settings: list[str]) -> dict:
    """The ``key=value`` settings over the defaults, checked."""
    options, given = dict(KEYS), set()
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or key not in KEYS:
            raise ConfigError(f"{item!r}: expected key=value with key one of {', '.join(KEYS)}")
        options[key] = value
        given.add(key)
    if options["baseline"] or options["candidate"]:
        missing = [k for k in ("baseline", "candidate") if not options[k]]
        if missing:
            raise ConfigError(f"{missing[0]}=<run id> missing: a paired comparison needs both")
        extra = sorted(given & set(TABLE_KEYS))
        if extra:
            raise ConfigError(f"{extra[0]}= does not apply to a baseline/candidate comparison")
        if not options["seed"].isdigit():
            raise ConfigError(f"seed={options['seed']}: expected a non-negative integer")
        if options["log"] not in ("true", "false"):
            raise ConfigError(f"log={options['log']}: expected true or false")
    else:
        extra = sorted(given & (set(PAIRED_KEYS) - {"split"}))
        if extra:
            raise ConfigError(f"{extra[0]}= applies only with baseline=<run id> candidate=<run id>")
    if options["top"] is not None:
        if not str(options["top"]).isdigit():
            raise ConfigError(f"top={options['top']}: expected a positive integer")
        options["top"] = int(options["top"])
    return options


def _table(options: dict, csv: Path | None) -> None:
    """Print the runs, or their groups, and save them as CSV."""
    group_by = group_columns(options["group_by"]) if options["group_by"] is not None else None
    chosen = {k: options[k] for k in (*TABLE_KEYS, "uri") if k != "group_by"}
    if group_by:
        chosen["params"] = ",".join(dict.fromkeys([*group_by, *options["params"].split(",")]))
    table = compare(**chosen, sweep_parents=not group_by)
    if table.empty:
        print("no runs")
        return
    import pandas as pd  # lazy: loaded with MLflow by compare()

    notes: list[str] = []
    saved = table
    if group_by:
        table, saved = summarise_groups(table, group_by, options["metric"], notes)
    with pd.option_context("display.max_columns", None, "display.width", 200):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for note in notes:
        print(f"note: {note}")
    if csv:
        csv.parent.mkdir(parents=True, exist_ok=True)
        saved.to_csv(csv, index=False)
        print(f"saved {csv}")


def _paired(options: dict) -> None:
    """Print the paired comparison; record it on the candidate run with ``log=true``."""
    comparison = compare_pair(
        options["baseline"],
        options["candidate"],
        options["split"],
        options["uri"],
        seed=int(options["seed"]),
    )
    print("\n".join(report_lines(comparison)))
    if options["log"] == "true":
        with tempfile.TemporaryDirectory() as workdir:
            log_comparison(comparison, options["uri"], Path(workdir))
        print(f"logged on the candidate run {comparison.candidate.run_id}")


if __name__ == "__main__":
    main()
