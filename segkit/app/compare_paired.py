"""``python -m segkit.compare baseline=A candidate=B split=test``: two models on the same images.

Each run named is an evaluation run (``segkit.evaluate``), or a training run whose latest
finished evaluation of ``split`` is taken. Their per-image results (``<split>_per_image.csv``
and the per-image confusion matrices ``<split>_confusion.npz``) are matched by image id; runs
that scored different images are refused. The differences (candidate minus baseline) of split
Dice, mean IoU and pixel accuracy get a bootstrap interval over images and a paired
permutation p-value, the mean per-image Dice a bootstrap interval and a Wilcoxon p-value
(``segkit.core.stats``); the verdict is read off split Dice. ``log=true`` records the
comparison on the candidate run (metrics ``compare/<baseline id>/<split>/<score>/...``, a tag
with the verdict, and the whole result as JSON).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from segkit.core import stats
from segkit.core.errors import ConfigError
from segkit.evaluation.evaluator import CONFUSION_SUFFIX, PER_IMAGE_SUFFIX, read_image_matrices
from segkit.tracking.store import check_existing_store

EVALUATION = "evaluation"


@dataclass
class Scored:
    """One side of the comparison: what a run's evaluation of a split found per image."""

    name: str
    run_id: str
    evaluation_id: str
    ids: list[str]
    image_dice: np.ndarray
    # [N, K, K] in the order of ``ids``; None for an evaluation made before segkit logged them.
    matrices: np.ndarray | None


@dataclass
class Comparison:
    """The paired comparison of two runs on one split."""

    split: str
    baseline: Scored
    candidate: Scored
    differences: list[stats.Difference]
    verdict: str
    seed: int
    resamples: int

    def record(self) -> dict:
        """The comparison as plain data (what ``log=true`` saves as JSON)."""
        side = ("name", "run_id", "evaluation_id")
        return {
            "split": self.split,
            "images": len(self.baseline.ids),
            "baseline": {k: getattr(self.baseline, k) for k in side},
            "candidate": {k: getattr(self.candidate, k) for k in side},
            "differences": [asdict(d) for d in self.differences],
            "verdict": self.verdict,
            "seed": self.seed,
            "resamples": self.resamples,
        }


def compare_pair(
    baseline: str,
    candidate: str,
    split: str = "test",
    uri: str = "sqlite:///mlflow.db",
    seed: int = 0,
    resamples: int = stats.RESAMPLES,
) -> Comparison:
    """Compare the candidate run with the baseline run on ``split`` (see the module doc).

    Raises:
        ConfigError: no such run, no finished evaluation of ``split``, or the two evaluations
            scored different images.
    """
    from mlflow import MlflowClient  # lazy: MLflow takes seconds to import

    check_existing_store(uri, "uri")
    # A progress bar per downloaded file would bury the report (and a one-line error).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = MlflowClient(uri)
    with tempfile.TemporaryDirectory() as workdir:
        a = _scored(client, "baseline", baseline, split, Path(workdir) / "a")
        b = _scored(client, "candidate", candidate, split, Path(workdir) / "b")
    b = _aligned(a, b, split)
    differences = []
    if a.matrices is not None and b.matrices is not None:
        if a.matrices.shape != b.matrices.shape:
            raise ConfigError(
                f"baseline={baseline} and candidate={candidate}: {a.matrices.shape[-1]} and "
                f"{b.matrices.shape[-1]} classes; only models of the same task compare"
            )
        differences += stats.split_differences(a.matrices, b.matrices, seed, resamples)
    differences.append(
        stats.mean_difference("image_dice_mean", a.image_dice, b.image_dice, seed, resamples)
    )
    label_a, label_b = f"baseline {a.name}", f"candidate {b.name}"
    verdict = stats.verdict(differences[0], label_a, label_b, len(a.ids))
    return Comparison(split, a, b, differences, verdict, seed, resamples)


def report_lines(comparison: Comparison) -> list[str]:
    """The comparison as the lines ``segkit.compare`` prints."""
    c = comparison
    lines = [
        f"split {c.split}, {len(c.baseline.ids)} images (the same in both), "
        f"{c.resamples} bootstrap resamples, seed {c.seed}",
    ]
    for role, side in (("baseline", c.baseline), ("candidate", c.candidate)):
        lines.append(f"{role}: {side.name} (run {side.run_id}, evaluation {side.evaluation_id})")
    header = f"{'score':<16} {'baseline':>9} {'candidate':>9} {'difference':>10}  95% interval"
    lines.append(header + "         p")
    for d in c.differences:
        interval = f"[{d.low:+.4f}, {d.high:+.4f}]"
        lines.append(
            f"{d.score:<16} {d.baseline:>9.4f} {d.candidate:>9.4f} {d.difference:>+10.4f}  "
            f"{interval:<20} {d.p_value:.3g} ({d.test})"
        )
    if c.baseline.matrices is None or c.candidate.matrices is None:
        lines.append(
            "note: no per-image confusion counts logged by one of the evaluations (made before "
            "segkit logged them): split scores are not compared; rerun segkit.evaluate for them"
        )
    lines.append(f"verdict: {c.verdict}")
    return lines


def log_comparison(comparison: Comparison, uri: str, workdir: Path) -> None:
    """Record the comparison on the candidate run the user named (metrics, tag, JSON)."""
    from mlflow import MlflowClient  # lazy: see compare_pair
    from mlflow.entities import Metric, RunTag

    c = comparison
    client = MlflowClient(uri)
    prefix = f"compare/{c.baseline.run_id}/{c.split}"
    values = {}
    for d in c.differences:
        for stat in ("difference", "low", "high", "p_value"):
            values[f"{prefix}/{d.score}/{stat}"] = getattr(d, stat)
    metrics = [Metric(k, float(v), 0, 0) for k, v in values.items()]
    tags = [RunTag(f"compare.{c.baseline.run_id}.{c.split}.verdict", c.verdict[:5000])]
    client.log_batch(c.candidate.run_id, metrics=metrics, tags=tags)
    path = workdir / f"{c.split}_vs_{c.baseline.run_id}.json"
    path.write_text(json.dumps(c.record(), indent=2))
    client.log_artifact(c.candidate.run_id, str(path), "comparisons")


def _scored(client, role: str, run_id: str, split: str, folder: Path) -> Scored:
    """The per-image results of ``run_id`` (an evaluation run, or a training run's latest
    evaluation) on ``split``."""
    import mlflow  # lazy: see compare_pair

    try:
        run = client.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise ConfigError(f"{role}={run_id}: no such run in {client.tracking_uri}") from None
    evaluation = run if run.data.tags.get("segkit.kind") == EVALUATION else None
    if evaluation is not None and evaluation.data.params.get("split") != split:
        raise ConfigError(
            f"{role}={run_id}: an evaluation of split {evaluation.data.params.get('split')}, "
            f"not {split}; pass split={evaluation.data.params.get('split')} or another run"
        )
    if evaluation is None:
        evaluation = _latest_evaluation(client, run, split)
    if evaluation is None:
        raise ConfigError(
            f"{role}={run_id}: no finished evaluation of split {split}; run "
            f"python -m segkit.evaluate run_id={run_id} split={split}"
        )
    folder.mkdir(parents=True)
    eval_id = evaluation.info.run_id
    per_image = Path(client.download_artifacts(eval_id, f"{split}{PER_IMAGE_SUFFIX}", str(folder)))
    with per_image.open() as handle:
        rows = list(csv.DictReader(handle))
    ids = [r["id"] for r in rows]
    dice = np.array([float(r["dice"]) for r in rows])
    matrices = None
    names = {a.path for a in client.list_artifacts(eval_id)}
    if f"{split}{CONFUSION_SUFFIX}" in names:
        npz = client.download_artifacts(eval_id, f"{split}{CONFUSION_SUFFIX}", str(folder))
        matrix_ids, matrices = read_image_matrices(Path(npz))
        if matrix_ids != ids:
            raise ConfigError(f"{role}={run_id}: evaluation {eval_id}'s files disagree on ids")
    return Scored(run.info.run_name, run_id, eval_id, ids, dice, matrices)


def _latest_evaluation(client, run, split: str):
    """The training run's latest FINISHED evaluation of ``split``, or None."""
    found = client.search_runs(
        [run.info.experiment_id],
        filter_string=(
            f"tags.`mlflow.parentRunId` = '{run.info.run_id}' and tags.`segkit.kind` = "
            f"'{EVALUATION}' and params.split = '{split}' and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return found[0] if found else None


def _aligned(a: Scored, b: Scored, split: str) -> Scored:
    """``b`` in the image order of ``a``; refuses evaluations of different images."""
    if len(set(a.ids)) != len(a.ids) or len(set(b.ids)) != len(b.ids):
        raise ConfigError(f"split {split}: an image id occurs twice in one evaluation")
    only_a, only_b = sorted(set(a.ids) - set(b.ids)), sorted(set(b.ids) - set(a.ids))
    if only_a or only_b:
        example = (only_a or only_b)[0]
        raise ConfigError(
            f"split {split}: the runs scored different images ({len(only_a)} of the baseline's "
            f"{len(a.ids)} and {len(only_b)} of the candidate's {len(b.ids)} are not in the "
            f"other, e.g. {example}); a paired comparison needs the same images"
        )
    position = {image: k for k, image in enumerate(b.ids)}
    order = [position[i] for i in a.ids]
    matrices = b.matrices[order] if b.matrices is not None else None
    return Scored(b.name, b.run_id, b.evaluation_id, list(a.ids), b.image_dice[order], matrices)
