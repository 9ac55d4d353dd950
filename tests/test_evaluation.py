"""Evaluation, prediction and comparison: hand-built cases, then one end-to-end run."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf
from PIL import Image

from helpers import TINY_MODELS, compose_config, run_module
from segkit.app.compare import compare
from segkit.app.evaluate import evaluate
from segkit.app.run import train
from segkit.config.inference import InferenceConfig as InferenceSettings
from segkit.core.scores import scores_numpy
from segkit.data import geometry
from segkit.evaluation import challenge
from segkit.evaluation.evaluator import read_image_matrices
from segkit.evaluation.inference import Predictor
from segkit.evaluation.postprocess import fill_holes, keep_largest, remove_small
from segkit.models import build_model
from tiny_datasets import write_voc


def test_thresholded_jaccard_scores_images_below_065_as_zero():
    assert challenge.thresholded_jaccard([0.9, 0.64, 0.65, 0.3]) == pytest.approx(
        (0.9 + 0 + 0.65 + 0) / 4
    )
    truth = np.zeros((4, 4), np.uint8)
    truth[:2, :2] = 1  # 4 pixels
    pred = np.zeros((4, 4), np.uint8)
    pred[:2, :3] = 1  # 6 pixels, 4 shared: Jaccard 4/6, Dice 8/10
    dice, iou = challenge.image_scores(challenge.confusion(truth, pred, 2, 255))
    assert (dice, iou) == (pytest.approx(0.8), pytest.approx(4 / 6))


def test_dsb_average_precision_on_hand_built_objects():
    true = np.zeros((10, 10), np.int32)
    true[0:2, 0:2] = 1  # 4 px
    true[5:9, 5:9] = 2  # 16 px
    pred = np.zeros((10, 10), np.uint8)
    pred[0:2, 0:2] = 1  # exact: IoU 1
    pred[5:9, 5:8] = 1  # 12 of 16: IoU 0.75
    objects = challenge.instances_from_mask(pred)
    # thresholds 0.5..0.7 (5): both match, precision 1; 0.75..0.95 (5): one TP, one FP, one FN.
    assert challenge.average_precision(true, objects) == pytest.approx((5 * 1 + 5 * (1 / 3)) / 10)
    empty = np.zeros_like(true)
    assert challenge.average_precision(true, empty) == 0.0  # no predicted objects
    assert challenge.average_precision(empty, objects) == 0.0  # no true objects
    assert challenge.average_precision(empty, empty) == 1.0
    masks = [(true == 1).astype(np.uint8) * 255, (true == 2).astype(np.uint8) * 255]
    assert (challenge.instances_from_masks(masks) == true).all()


def test_voc_miou_with_and_without_background_ignores_absent_classes():
    matrix = np.zeros((21, 21), np.int64)
    matrix[0, 0], matrix[1, 1], matrix[1, 0], matrix[2, 2] = 6, 2, 2, 4
    scores = challenge.voc_miou(matrix)
    iou = [6 / 8, 2 / 4, 1.0]
    assert scores["voc_miou"] == pytest.approx(np.mean(iou))
    assert scores["voc_miou_no_bg"] == pytest.approx(np.mean(iou[1:]))
    labels = np.array([[0, 255], [1, 1]], np.uint8)
    assert challenge.confusion(labels, np.zeros_like(labels), 21, 255).sum() == 3


def test_letterbox_prediction_maps_back_to_the_original_resolution():
    policy = geometry.Policy("letterbox", 8)
    height, width = 4, 8  # scaled to 4x8, padded with 2 rows above and below
    truth = np.zeros((height, width), np.uint8)
    truth[:, 4:] = 1
    _, fitted_mask = geometry.fit(np.zeros((height, width, 3), np.uint8), truth, policy)
    assert (fitted_mask[:2] == 255).all() and (fitted_mask[6:] == 255).all()
    # A perfect prediction at training size, with garbage in the padding.
    probs = np.where(fitted_mask == 1, 1.0, 0.0).astype(np.float32)
    probs[fitted_mask == 255] = 1.0
    back = geometry.unfit(probs[..., None], policy, height, width)
    assert back.shape == (height, width, 1)
    predicted = (back[..., 0] > 0.5).astype(np.uint8)
    scores = challenge.image_scores(challenge.confusion(truth, predicted, 2, 255))
    assert scores == (1.0, 1.0)  # the padding did not leak into the original frame


def red_channel_model(size: int) -> keras.Model:
    """A real model whose output is the red channel of its input: predictions are known."""
    inputs = keras.Input((size, size, 3))
    conv = keras.layers.Conv2D(1, 1, use_bias=False)
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.array([1.0, 0.0, 0.0], np.float32).reshape(1, 1, 3, 1)])
    return model


@pytest.mark.parametrize("tta", [False, True])
def test_tiled_prediction_covers_any_size_with_blended_tiles(tta):
    model = red_channel_model(16)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    settings = InferenceSettings(mode="tiled", overlap=0.5, batch_size=3, tta=tta)
    predictor = Predictor(model, geometry.Policy("resize", 16), settings)
    probs = predictor.probabilities(image, (37, 53))
    assert probs.shape == (37, 53, 1)
    np.testing.assert_allclose(probs[..., 0], image[..., 0] / 255.0, atol=1e-5)
    small = predictor.probabilities(image[:9, :11], (9, 11))  # smaller than a tile: padded
    np.testing.assert_allclose(small[..., 0], image[:9, :11, 0] / 255.0, atol=1e-5)


def test_postprocessing_largest_object_small_objects_and_holes():
    mask = np.zeros((12, 12), np.uint8)
    mask[1:8, 1:8] = 1
    mask[3:5, 3:5] = 0  # a hole
    mask[10:12, 10:12] = 1  # a small object
    assert keep_largest(mask)[10:, 10:].sum() == 0 and keep_largest(mask)[1, 1] == 1
    assert remove_small(mask, 5)[10:, 10:].sum() == 0 and remove_small(mask, 4)[10:, 10:].all()
    filled = fill_holes(mask)
    assert filled[3:5, 3:5].all() and filled[0].sum() == 0 and filled[10:, 10:].all()


def test_evaluate_predict_and_compare_a_trained_run(smoke_overrides, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose_config(
        [*smoke_overrides, "trainer.epochs=2", "tracking.register_model=tiny-unet"]
    )
    train(cfg)
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("segkit").experiment_id])
    run_id = run.info.run_id
    # The per-epoch validation predictions and the keras-flavour model.
    images = [a.path for a in client.list_artifacts(run_id, "images")]
    assert len([p for p in images if p.endswith(".png")]) == 2, images
    assert client.get_model_version("tiny-unet", "1").run_id == run_id

    out = tmp_path / "eval"
    result = run_module(
        "segkit.evaluate",
        f"run_id={run_id}",
        "split=test",
        f"tracking.uri={uri}",
        f"output_dir={out}",
        f"cache_dir={smoke_overrides[-5].split('=', 1)[1]}",
        "gallery=2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader((out / "test_per_image.csv").open()))
    assert len(rows) == 4 and {"id", "height", "width", "dice", "iou"} <= set(rows[0])
    # Original resolution: the synthetic images are 48-72 px, the model takes 32.
    assert all(48 <= int(r["height"]) <= 72 for r in rows)
    children = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'"
    )
    (evaluation,) = children
    assert evaluation.info.status == "FINISHED"
    assert evaluation.data.tags["segkit.kind"] == "evaluation"
    for name in ("test/dice", "test/miou", "test/pixel_accuracy", "test/thresholded_jaccard"):
        assert 0.0 <= evaluation.data.metrics[name] <= 1.0, name
    # Each image's confusion counts, for paired comparisons: they add up to the split's scores.
    ids, matrices = read_image_matrices(out / "test_confusion.npz")
    assert ids == [r["id"] for r in rows] and matrices.shape == (4, 2, 2)
    assert [int(r["height"]) * int(r["width"]) for r in rows] == list(matrices.sum(axis=(1, 2)))
    split = scores_numpy(matrices.sum(axis=0))
    assert split["dice"] == pytest.approx(evaluation.data.metrics["test/dice"])
    assert "test_confusion.npz" in {a.path for a in client.list_artifacts(evaluation.info.run_id)}
    assert evaluation.data.tags["split.ids"] == run.data.tags["split.test.ids"]
    figures = {a.path for a in client.list_artifacts(evaluation.info.run_id, "figures")}
    assert {
        "figures/test_dice_histogram.png",
        "figures/test_gallery.png",
        "figures/test_precision_recall.png",
    } <= figures

    # Predict a folder of mixed sizes with the registered model.
    folder = tmp_path / "new"
    folder.mkdir()
    rng = np.random.default_rng(1)
    sizes = {"a": (40, 90), "b": (128, 64), "c": (20, 20)}
    for name, (h, w) in sizes.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            folder / f"{name}.png"
        )
    masks = tmp_path / "masks"
    result = run_module(
        "segkit.predict",
        "model=models:/tiny-unet/1",
        f"input={folder}",
        f"output={masks}",
        f"tracking.uri={uri}",
        "inference.mode=tiled",
        "postprocess.min_size=3",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name, (h, w) in sizes.items():
        mask = np.asarray(Image.open(masks / f"{name}.png"))
        assert mask.shape == (h, w) and set(np.unique(mask)) <= {0, 255}
        assert Image.open(masks / f"{name}_overlay.jpg").size == (w, h)

    table = compare(experiment="segkit", uri=uri, metric="best/val/dice")
    assert list(table["run_id"]) == [run_id]  # the evaluation run is folded into its column
    assert table.loc[0, "eval:test/dice"] == pytest.approx(evaluation.data.metrics["test/dice"])
    result = run_module(
        "segkit.compare", "experiment=segkit", f"uri={uri}", "--csv", "runs.csv", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert run_id in result.stdout and (tmp_path / "runs.csv").is_file()
    bad = run_module("segkit.evaluate", "run_id=nope", f"tracking.uri={uri}", cwd=tmp_path)
    assert bad.returncode == 2 and "run_id=nope" in bad.stderr and "Traceback" not in bad.stderr


def test_evaluate_a_keras_file_on_a_multi_class_letterboxed_dataset(tmp_path, cache_dir):
    voc = write_voc(tmp_path / "data", train=4, val=3)
    model_cfg = compose_config(
        ["dataset=voc", f"dataset.root={voc}", *TINY_MODELS["unet"], "dataset.image_size=32"]
    )
    model_file = tmp_path / "voc.keras"
    build_model(model_cfg.model, model_cfg.dataset).save(model_file)
    cfg = compose_config(
        [
            f"model_path={model_file}",
            "dataset=voc",
            f"dataset.root={voc}",
            "dataset.image_size=32",
            "split=val",
            "tracking=none",
            f"output_dir={tmp_path / 'out'}",
            f"cache_dir={cache_dir}",
            "inference.tta=true",
        ],
        name="evaluate",
    )
    assert cfg.dataset.resize == "letterbox"  # the voc default
    scores = evaluate(cfg)
    assert {"val/miou", "val/voc_miou", "val/voc_miou_no_bg", "val/pixel_accuracy"} <= set(scores)
    assert scores["val/voc_miou"] == pytest.approx(scores["val/miou"])
    rows = list(csv.DictReader((tmp_path / "out" / "val_per_image.csv").open()))
    assert [(r["height"], r["width"]) for r in rows] == [("24", "32")] * 3  # the images' own size
    assert (tmp_path / "out" / "figures" / "val_confusion_matrix.png").is_file()


def test_bad_evaluate_settings_are_one_line_errors(tmp_path):
    for args, expected in (
        (["split=train2"], "split='train2'"),
        (["inference.threshold=1.5"], "inference.threshold=1.5"),
        ([], "give exactly one of run_id"),
    ):
        result = run_module("segkit.evaluate", "tracking=none", *args, cwd=tmp_path)
        assert result.returncode == 2 and expected in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr


def test_evaluating_a_run_of_a_missing_store_creates_no_store(tmp_path):
    result = run_module("segkit.evaluate", "run_id=0123abcd", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "segkit.evaluate: error: tracking.uri=sqlite:///mlflow.db: no such store "
        "(run from the folder holding mlflow.db)"
    )
    assert not (tmp_path / "mlflow.db").exists()


def test_a_run_logged_before_newer_dataset_keys_still_evaluates_and_predicts():
    """An older run's config.yaml lacks keys added since; evaluate and predict fill the
    schema's defaults in rather than failing on the missing key."""
    from segkit.evaluation.model_source import ModelSource
    from segkit.evaluation.model_source import run_dataset as _run_dataset

    old = OmegaConf.create(
        {"dataset": {"name": "isic", "root": "/data/isic", "image_size": 64, "num_classes": 2}}
    )
    dataset = _run_dataset(ModelSource(model=None, description="run x", config=old))
    assert (dataset.root, dataset.image_size, dataset.resize.value) == ("/data/isic", 64, "resize")
    assert "rescale" in dataset and dataset.ignore_index == 255
    assert _run_dataset(ModelSource(model=None, description="a.keras")) is None
