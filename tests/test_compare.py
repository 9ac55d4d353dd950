"""Comparisons: the statistics on hand-made scores with a known answer, then `segkit.compare`
group_by and baseline/candidate on runs in a real SQLite store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from helpers import run_module
from segkit.core import stats
from segkit.core.scores import scores_numpy
from segkit.data.index import ids_digest
from segkit.evaluation.evaluator import ImageResult, write_image_matrices, write_per_image


def binary_matrices(rng, n: int) -> np.ndarray:
    """[n, 2, 2] confusion matrices of plausible lesion images."""
    tn, fp = rng.integers(5000, 20000, n), rng.integers(0, 500, n)
    fn, tp = rng.integers(0, 500, n), rng.integers(100, 5000, n)
    return np.stack([np.array([[a, b], [c, d]]) for a, b, c, d in zip(tn, fp, fn, tp, strict=True)])


def improved(matrices: np.ndarray, pixels: int) -> np.ndarray:
    """The same images with ``pixels`` more foreground pixels found in each (fewer missed)."""
    out = matrices.copy()
    moved = np.minimum(pixels, out[:, 1, 0])
    out[:, 1, 0] -= moved
    out[:, 1, 1] += moved
    return out


def test_identical_runs_give_an_interval_around_zero_and_no_detectable_difference():
    rng = np.random.default_rng(0)
    matrices = binary_matrices(rng, 60)
    dice = rng.uniform(0.4, 0.95, 60)
    split = stats.split_differences(matrices, matrices.copy())
    per_image = stats.mean_difference("image_dice_mean", dice, dice.copy())
    for d in [*split, per_image]:
        assert d.low <= 0 <= d.high and d.difference == 0 and d.p_value == 1.0, d
    line = stats.verdict(split[0], "baseline a", "candidate b", 60)
    assert line.startswith("no detectable difference at this sample size")


def test_a_constant_shift_of_005_on_200_images_is_found_around_005():
    rng = np.random.default_rng(1)
    a = rng.uniform(0.3, 0.9, 200)
    b = a + 0.05 + rng.normal(0, 0.02, 200)  # 0.05 better, with per-image noise
    d = stats.mean_difference("image_dice_mean", a, b, seed=3)
    assert d.low > 0 and d.low < 0.05 < d.high and d.high - d.low < 0.02
    assert d.difference == pytest.approx(0.05, abs=0.005) and d.p_value < 1e-6
    exact = stats.mean_difference("image_dice_mean", a, a + 0.05)
    assert exact.low == pytest.approx(0.05) and exact.high == pytest.approx(0.05)
    assert stats.verdict(d, "baseline a", "candidate b", 200).startswith("candidate b better")
    assert stats.verdict(
        stats.mean_difference("image_dice_mean", b, a), "baseline b", "candidate a", 200
    ).startswith("baseline b better")
    # The same seed gives the same interval; the interval is a percentile bootstrap over images.
    again = stats.mean_difference("image_dice_mean", a, b, seed=3)
    assert (again.low, again.high) == (d.low, d.high)


def test_split_scores_of_a_resample_are_recomputed_from_its_confusion_matrices():
    rng = np.random.default_rng(2)
    a = binary_matrices(rng, 80)
    b = improved(a, 200)
    found = {d.score: d for d in stats.split_differences(a, b, seed=5)}
    for name in stats.SPLIT_SCORES:
        expected = scores_numpy(b.sum(0))[name] - scores_numpy(a.sum(0))[name]
        assert found[name].difference == pytest.approx(expected)
        assert found[name].low > 0 and found[name].low < expected < found[name].high
        assert found[name].p_value < 0.001  # every image better: no permutation comes close
    # A stack of matrices scores each one: what the bootstrap relies on.
    stacked = scores_numpy(a[0])["dice"], float(stats.scores(a[:3].astype(float))["dice"][0])
    assert stacked[0] == pytest.approx(stacked[1])


def test_summary_of_repeated_runs_is_a_t_interval():
    s = stats.summarise([0.90, 0.91, 0.93, math.nan])
    assert (
        s.n == 3
        and s.mean == pytest.approx(0.91333333)
        and s.sd == pytest.approx(0.0152753, rel=1e-5)
    )
    half = 4.302653 * s.sd / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert (s.low, s.high) == (pytest.approx(s.mean - half), pytest.approx(s.mean + half))
    assert s.describe() == "0.9133 ± 0.0153 [0.8754, 0.9513]"
    one = stats.summarise([0.5])
    assert one.n == 1 and math.isnan(one.sd) and one.describe() == "0.5000"


# --- runs in a real store ----------------------------------------------------------------


def training_run(client, experiment_id, name, params, metrics, test_ids):
    run = client.create_run(experiment_id, run_name=name, tags={"split.test.ids": test_ids})
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def evaluation_run(client, experiment_id, parent, split, ids, matrices, folder):
    """An evaluation run as segkit.evaluate leaves it: its files written by the evaluator."""
    run = client.create_run(
        experiment_id,
        run_name=f"evaluate-{split}",
        tags={"mlflow.parentRunId": parent, "segkit.kind": "evaluation"},
    )
    client.log_param(run.info.run_id, "split", split)
    images = []
    for image, m in zip(ids, matrices, strict=True):
        tp, fp, fn = m[1, 1], m[0, 1], m[1, 0]
        images.append(ImageResult(image, 64, 64, 2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn)))
    folder.mkdir(parents=True)
    client.log_artifact(
        run.info.run_id, str(write_per_image(folder / f"{split}_per_image.csv", images))
    )
    client.log_artifact(
        run.info.run_id, str(write_image_matrices(folder / f"{split}_confusion.npz", ids, matrices))
    )
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    return uri, client, client.create_experiment("isic", artifact_location=str(tmp_path / "art"))


def test_paired_comparison_of_two_training_runs_on_the_same_test_images(tmp_path, store):
    uri, client, experiment = store
    rng = np.random.default_rng(4)
    ids = [f"ISIC_{i:04d}" for i in range(120)]
    a_matrices = binary_matrices(rng, 120)
    b_matrices = improved(a_matrices, 150)
    a = training_run(client, experiment, "unet", {}, {}, ids_digest(ids))
    b = training_run(client, experiment, "improved", {}, {}, ids_digest(ids))
    evaluation_run(client, experiment, a, "test", ids, a_matrices, tmp_path / "ea")
    # The candidate's evaluation lists the images in another order: matched by id.
    order = rng.permutation(120)
    eval_b = evaluation_run(
        client, experiment, b, "test", [ids[i] for i in order], b_matrices[order], tmp_path / "eb"
    )
    result = run_module(
        "segkit.compare", f"baseline={a}", f"candidate={b}", f"uri={uri}", "log=true", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("split test, 120 images (the same in both), 10000 bootstrap")
    expected = scores_numpy(b_matrices.sum(0))["dice"] - scores_numpy(a_matrices.sum(0))["dice"]
    dice = next(line for line in lines if line.startswith("dice "))
    assert f"{expected:+.4f}" in dice and "paired permutation" in dice
    assert any(line.startswith("image_dice_mean") and "Wilcoxon" in line for line in lines)
    assert lines[-2].startswith("verdict: candidate improved better (dice +")
    assert f"evaluation {eval_b}" in result.stdout
    # Logged on the candidate run: the differences, the verdict, the whole record.
    logged = client.get_run(b).data
    assert logged.metrics[f"compare/{a}/test/dice/difference"] == pytest.approx(expected)
    assert logged.metrics[f"compare/{a}/test/dice/low"] > 0
    assert logged.tags[f"compare.{a}.test.verdict"].startswith("candidate improved better")
    saved = client.download_artifacts(b, f"comparisons/test_vs_{a}.json", str(tmp_path))
    record = json.loads(Path(saved).read_text())
    assert record["images"] == 120 and record["resamples"] == 10000


def test_different_images_no_evaluation_or_a_wrong_split_are_one_line_errors(tmp_path, store):
    uri, client, experiment = store
    rng = np.random.default_rng(5)
    ids = [f"img{i}" for i in range(30)]
    matrices = binary_matrices(rng, 30)
    a = training_run(client, experiment, "a", {}, {}, ids_digest(ids))
    b = training_run(client, experiment, "b", {}, {}, "")
    c = training_run(client, experiment, "c", {}, {}, "")
    evaluation_run(client, experiment, a, "test", ids, matrices, tmp_path / "ea")
    other = ids[:27] + ["new1", "new2", "new3"]
    evaluation_run(client, experiment, b, "test", other, matrices, tmp_path / "eb")
    val_of_c = evaluation_run(client, experiment, c, "val", ids, matrices, tmp_path / "ec")
    cases = {
        (f"baseline={a}", f"candidate={b}"): "the runs scored different images (3 of the "
        "baseline's 30 and 3 of the candidate's 30 are not in the other, e.g. img27)",
        (f"baseline={a}", f"candidate={c}"): f"candidate={c}: no finished evaluation of split "
        f"test; run python -m segkit.evaluate run_id={c} split=test",
        (f"baseline={a}", f"candidate={val_of_c}"): "an evaluation of split val, not test",
        (f"baseline={a}", "candidate=nope"): "candidate=nope: no such run",
        (f"baseline={a}",): "candidate=<run id> missing",
        (f"baseline={a}", f"candidate={b}", "group_by=model.name"): "group_by= does not apply",
    }
    for args, message in cases.items():
        result = run_module("segkit.compare", *args, f"uri={uri}", cwd=tmp_path)
        assert result.returncode == 2, (args, result.stdout, result.stderr[-2000:])
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_group_by_summarises_seeds_per_group_and_keeps_different_test_sets_apart(tmp_path, store):
    uri, client, experiment = store
    same, other = ids_digest(["a", "b", "c"]), ids_digest(["a", "b", "d"])
    values = {"unet": [0.80, 0.82, 0.84], "improved_unet": [0.85, 0.86, 0.90]}
    for model, scores in values.items():
        for seed, score in enumerate(scores):
            metrics = {"best/val/dice": score, "test/dice": score - 0.1}
            params = {"model.name": model, "seed": str(seed)}
            training_run(client, experiment, f"{model}-{seed}", params, metrics, same)
    # A run of another test set is not pooled with the others.
    training_run(
        client, experiment, "unet-x", {"model.name": "unet", "seed": "9"}, {"test/dice": 0.5}, other
    )
    result = run_module(
        "segkit.compare",
        "experiment=isic",
        "group_by=model.name",
        f"uri={uri}",
        "--csv",
        "groups.csv",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    improved_unet = stats.summarise(values["improved_unet"]).describe()
    assert improved_unet in result.stdout
    assert stats.summarise(values["unet"]).describe() in result.stdout
    assert "note: model.name=unet: its runs were scored on 2 different test sets" in result.stdout
    table = pd.read_csv(tmp_path / "groups.csv")
    row = table[(table["model.name"] == "unet") & (table["score"] == "best/val/dice")]
    row = row[row["n"] == 3].iloc[0]
    assert row["mean"] == pytest.approx(0.82) and row["sd"] == pytest.approx(0.02)
    bad = run_module(
        "segkit.compare", "experiment=isic", "group_by=nope", f"uri={uri}", cwd=tmp_path
    )
    assert bad.returncode == 2 and "group_by=nope: no run has this param" in bad.stderr
