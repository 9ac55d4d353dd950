"""``segkit.inspect``: statistics, figures and the MLflow run of a dataset inspection."""

from __future__ import annotations

import json

import cv2
from mlflow import MlflowClient

from helpers import compose_config, run_module
from segkit.app.inspect import inspect
from tiny_datasets import square_mask, write_isic, write_voc


def test_inspect_writes_statistics_and_figures_and_logs_a_run(tmp_path):
    voc = write_voc(tmp_path / "data", train=6, val=3)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose_config(
        [
            "dataset=voc",
            f"dataset.root={voc}",
            f"output_dir={tmp_path / 'out'}",
            f"tracking.uri={uri}",
            f"tracking.artifact_location={tmp_path / 'artifacts'}",
            "overlays=4",
        ],
        name="inspect",
    )
    summary = inspect(cfg)
    train = summary["splits"]["train"]
    assert train["samples"] == 6 and train["decoded"] == 6
    values = {int(v) for v in train["mask_values"]}
    assert values <= {0, 1, 2, 3, 4, 255} and 255 in values
    assert train["height"] == {"min": 24, "max": 24} and train["width"] == {"min": 32, "max": 32}
    assert 0 < train["ignore_fraction"] < 1
    assert abs(sum(train["class_fractions"].values()) - 1) < 1e-6
    assert summary["problems"] == 0
    out = tmp_path / "out"
    assert json.loads((out / "summary.json").read_text()) == summary
    for figure in ("image_sizes", "class_frequencies", "overlays"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 1000
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("segkit").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "inspect-voc"
    assert run.data.metrics["data/train/samples"] == 6
    assert run.data.params["dataset.name"] == "voc"
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert "figures/overlays.png" in figures


def test_inspect_command_lists_problems_instead_of_failing(tmp_path):
    root = write_isic(tmp_path / "isic", n=6)
    bad = root / "ISIC2018_Task1_Training_GroundTruth" / "ISIC_0000002_segmentation.png"
    cv2.imwrite(str(bad), square_mask(24, 32, value=128))
    result = run_module(
        "segkit.inspect",
        "dataset=isic",
        f"dataset.root={root}",
        "tracking=none",
        f"output_dir={tmp_path / 'out'}",
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 problem(s)" in result.stdout + result.stderr
    problems = (tmp_path / "out" / "problems.txt").read_text()
    assert "ISIC_0000002_segmentation.png: invalid mask values 128" in problems
    assert not (tmp_path / "mlflow.db").exists()


def test_inspect_of_a_missing_root_exits_2(tmp_path):
    result = run_module(
        "segkit.inspect", "dataset=isic", f"dataset.root={tmp_path / 'nope'}", cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"segkit.inspect: error: dataset.root={tmp_path / 'nope'}: folder not found"
    )
