"""``segkit.export``: SavedModel, TFLite and ONNX exports of one tiny run trained under
mixed_bfloat16, checked against the Keras model on the run's validation images, served as a
consumer would, and logged to the run in a real SQLite MLflow store."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from mlflow import MlflowClient
from omegaconf import OmegaConf

from helpers import TINY, compose_config, run_module
from segkit.app.export import METADATA_FILE, check_output, export
from segkit.app.export_parity import ParityError, check, compare
from segkit.app.run import train
from segkit.core.errors import DataError

FORMATS = ["saved_model", "tflite", "onnx"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, cache_dir) -> dict:
    """One smoke run under mixed_bfloat16, logged to a SQLite store; its id, store and folder."""
    folder = tmp_path_factory.mktemp("export_run")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    cfg = compose_config(
        [
            "trainer=smoke",
            "trainer.precision=mixed_bfloat16",
            *TINY,
            f"cache_dir={cache_dir}",
            f"output_dir={folder / 'run'}",
            f"tracking.uri={uri}",
            f"tracking.artifact_location={folder / 'artifacts'}",
        ]
    )
    train(cfg)
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("segkit").experiment_id])
    return {"run_id": run.info.run_id, "uri": uri, "folder": folder, "cache_dir": cache_dir}


def export_config(tiny_run: dict, *overrides: str):
    return compose_config(
        [f"tracking.uri={tiny_run['uri']}", f"cache_dir={tiny_run['cache_dir']}", *overrides],
        name="export",
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_from_a_run_matches_keras_and_is_logged_to_the_run(tiny_run, tmp_path, fmt):
    if fmt == "onnx" and importlib.util.find_spec("tf2onnx") is None:
        pytest.skip("format=onnx needs the `export` extra (tf2onnx, onnx, onnxruntime)")
    output = tmp_path / fmt
    run_id = tiny_run["run_id"]
    record = export(
        export_config(tiny_run, f"run_id={run_id}", f"format={fmt}", f"output={output}")
    )

    assert json.loads((output / METADATA_FILE).read_text()) == record
    parity = record["parity"]
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-4, parity
    assert (
        parity["mask_agreement"] >= 0.999 and parity["images"]["source"] == "split val of synthetic"
    )
    # Trained in bfloat16, exported in float32; the precision change is reported, not checked.
    assert record["source"]["trained_precision"] == "mixed_bfloat16"
    assert 0 < parity["trained_precision_vs_float32"]["max_abs_diff"] < 0.05
    assert record["input"]["shape"] == [32, 32, 3] and record["input"]["range"] == [0.0, 1.0]
    assert record["output"]["kind"] == "sigmoid" and record["output"]["threshold"] == 0.5
    assert record["source"]["run_id"] == run_id and record["versions"]["tensorflow"]
    assert (output / record["artifact"]).exists()
    logged = MlflowClient(tiny_run["uri"]).list_artifacts(run_id, f"exports/{fmt}")
    assert f"exports/{fmt}/{METADATA_FILE}" in {a.path for a in logged}


def test_an_exported_saved_model_serves_through_its_declared_signature(tiny_run, tmp_path):
    # A bare .keras file (no run folder beside it): the check images come from `images=`.
    model = tmp_path / "best.keras"
    shutil.copy(tiny_run["folder"] / "run" / "checkpoints" / "best.keras", model)
    images = sorted(tiny_run["cache_dir"].rglob("*.jpg"))[0].parent
    output = tmp_path / "served"
    record = export(
        export_config(tiny_run, f"model_path={model}", f"images={images}", f"output={output}")
    )
    assert record["source"]["run_id"] is None and record["parity"]["images"]["count"] == 16
    assert json.loads((output / "assets" / METADATA_FILE).read_text()) == record

    loaded = tf.saved_model.load(str(output))
    serve = loaded.signatures[record["signature"]]
    spec = serve.structured_input_signature[1][record["input"]["name"]]
    assert spec.shape.as_list() == [None, *record["input"]["shape"]]
    assert spec.dtype.name == record["input"]["dtype"]
    batch = np.random.default_rng(0).random((2, *record["input"]["shape"]), np.float32)
    probs = serve(**{record["input"]["name"]: tf.constant(batch)})[record["output"]["name"]]
    assert probs.dtype == tf.float32 and probs.shape == (2, *record["output"]["shape"])
    assert float(tf.reduce_min(probs)) >= 0.0 and float(tf.reduce_max(probs)) <= 1.0
    np.testing.assert_allclose(loaded.serve(tf.constant(batch)).numpy(), probs.numpy())


def test_parity_outside_the_limits_is_refused_naming_both_figures():
    images = np.random.default_rng(0).random((3, 8, 8, 1), np.float32)

    def model(batch):
        return batch

    def drifted(batch):
        return batch + 1e-3

    result = compare(model, drifted, images, threshold=0.5, batch_size=2)
    assert result["pixels"] == 3 * 64 and result["max_abs_diff"] == pytest.approx(1e-3, rel=1e-2)
    limits = OmegaConf.create({"max_abs_diff": 1e-4, "min_agreement": 0.999})
    with pytest.raises(ParityError, match=r"max abs difference 0\.001.*parity\.max_abs_diff"):
        check(result, limits, "format=tflite")
    check(compare(model, model, images, 0.5, 2), limits, "format=tflite")


def test_an_output_in_the_way_is_refused_and_only_a_previous_export_is_replaced(tmp_path):
    check_output(tmp_path / "new", overwrite=False)
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty", overwrite=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(DataError, match="not a segkit export"):
        check_output(tmp_path / "mine", overwrite=True)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / METADATA_FILE).write_text("{}")
    with pytest.raises(DataError, match="overwrite=true"):
        check_output(tmp_path / "old", overwrite=False)
    check_output(tmp_path / "old", overwrite=True)


def test_bad_export_settings_are_one_line_errors(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("keep")
    cases = [
        (["model=m.keras", "format=pb", "output=x"], "invalid value for format"),
        (["model=m.keras", f"output={tmp_path / 'out'}"], "not a segkit export"),
    ]
    for args, expected in cases:
        result = run_module("segkit.export", *args, cwd=tmp_path)
        lines = [line for line in result.stderr.splitlines() if line.startswith("segkit.export")]
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.stderr
    assert (tmp_path / "out" / "notes.txt").read_text() == "keep"
