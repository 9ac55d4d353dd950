"""Recipes (conf/experiment/): each composes to the published setup it names, and its smoke
counterpart keeps the recipe's choices and trains one step on data in the dataset's own format."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from omegaconf import OmegaConf

import tiny_datasets
from helpers import compose_config, run_module
from segkit.app.cli import CONF_DIR
from segkit.app.run import train
from segkit.config.validate import validate

RECIPES = sorted(
    p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml") if not p.stem.endswith("_smoke")
)
# Settings a smoke counterpart may change: sizes, length and the learning-rate schedule.
SIZE_KEYS = (
    "dataset.image_size",
    "model.base_filters",
    "model.depth",
    "model.decoder_filters",
    "model.encoder.alpha",
    "trainer.epochs",
    "trainer.batch_size",
    "trainer.limit_train_batches",
    "trainer.limit_val_batches",
    "trainer.schedule.",
    "trainer.verbose",
    "tracking.tags.recipe",
)
# A tiny dataset in each recipe's on-disk format, and the dataset.root to give.
WRITERS = {
    "isic": lambda root: tiny_datasets.write_isic(root, n=8),
    "dsb2018": lambda root: tiny_datasets.write_dsb(root, n=6),
    "voc": lambda root: tiny_datasets.write_voc(root),
    "isbi": lambda root: tiny_datasets.write_isbi_stacks(root),
}


def recipe_config(name: str, *overrides: str):
    return compose_config([f"experiment={name}", "dataset.root=/data/x", *overrides])


def leaves(cfg) -> dict[str, object]:
    """Every leaf value of a config as ``dotted.key -> value``."""
    flat: dict[str, object] = {}

    def walk(node, prefix):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


def test_the_four_published_recipes_are_there():
    assert RECIPES == ["dsb2018_mobilenet_unet", "isbi_unet", "isic_improved_unet", "voc_unet"]


@pytest.mark.parametrize(
    ("recipe", "expected"),
    [
        (
            "isic_improved_unet",
            {
                "dataset.name": "isic",
                "model.name": "improved_unet",
                "trainer.loss": "dice",
                "trainer.optimizer.name": "adam",
            },
        ),
        (
            "dsb2018_mobilenet_unet",
            {"dataset.name": "dsb2018", "model.name": "mobilenet_unet", "dataset.image_size": 128},
        ),
        (
            "voc_unet",
            {
                "dataset.name": "voc",
                "model.name": "unet",
                "dataset.image_size": 320,
                "dataset.resize": "letterbox",
                "dataset.num_classes": 21,
                "dataset.ignore_index": 255,
                "trainer.loss": "ce",
                "trainer.optimizer.name": "adam",
                "trainer.schedule.name": "cosine",
                "trainer.monitor": "val/miou",
            },
        ),
        (
            "isbi_unet",
            {
                "dataset.name": "isbi",
                "model.name": "unet",
                "augment.name": "elastic",
                "dataset.resize": "random_crop",
                "dataset.foreground": "membrane",
            },
        ),
    ],
)
def test_recipe_composes_to_its_published_setup(recipe, expected):
    cfg = recipe_config(recipe, "output_dir=/tmp/x")
    validate(cfg)
    values = leaves(cfg)
    assert {key: values[key] for key in expected} == expected
    assert values["tracking.tags.recipe"] == recipe
    if recipe == "isic_improved_unet":
        assert values["dataset.image_size"] in (128, 256)
    if recipe == "voc_unet":
        assert values["trainer.schedule.warmup_epochs"] > 0


def test_recipe_needs_the_dataset_root():
    cfg = compose_config(["experiment=isic_improved_unet", "output_dir=/tmp/x"])
    assert OmegaConf.is_missing(cfg.dataset, "root")


def test_command_line_overrides_a_recipe_group_and_value():
    """The report's comparison run: the ISIC recipe with the classic UNet swapped in."""
    cfg = recipe_config("isic_improved_unet", "model=unet", "model.base_filters=20")
    assert (cfg.model.name, cfg.model.base_filters, cfg.trainer.loss) == ("unet", 20, "dice")


@pytest.mark.parametrize("recipe", RECIPES)
def test_smoke_counterpart_differs_from_its_recipe_in_size_only(recipe):
    full, smoke = leaves(recipe_config(recipe)), leaves(recipe_config(f"{recipe}_smoke"))
    differing = {
        key
        for key in full.keys() | smoke.keys()
        if full.get(key) != smoke.get(key) and not key.startswith(SIZE_KEYS)
    }
    assert not differing, f"{recipe}_smoke changes more than sizes: {sorted(differing)}"
    assert smoke["trainer.limit_train_batches"] == 1 and smoke["trainer.epochs"] == 1
    assert smoke["dataset.image_size"] <= 64


@pytest.mark.parametrize("recipe", RECIPES)
def test_smoke_counterpart_trains_one_step(recipe, tmp_path, cache_dir):
    dataset = leaves(recipe_config(recipe))["dataset.name"]
    root = WRITERS[dataset](tmp_path / "data")
    db = tmp_path / "mlflow.db"
    cfg = recipe_config(
        f"{recipe}_smoke",
        f"dataset.root={root}",
        f"cache_dir={cache_dir}",
        f"output_dir={tmp_path / 'run'}",
        f"tracking.uri=sqlite:///{db}",
        f"tracking.artifact_location={tmp_path / 'artifacts'}",
        "tracking.log_model=false",
        "tracking.sample_predictions=0",
    )
    scores = train(cfg)
    assert 0.0 <= scores[cfg.optimized_metric] <= 1.0
    client = mlflow.MlflowClient(f"sqlite:///{db}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED"
    assert run.data.tags["recipe"] == f"{recipe}_smoke"
    assert run.data.params["model.name"] == leaves(recipe_config(recipe))["model.name"]
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 1


def test_recipe_without_its_data_is_one_line_naming_dataset_root(tmp_path):
    result = run_module("segkit.train", "experiment=isic_improved_unet", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "dataset.root" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "mlflow.db").exists()
