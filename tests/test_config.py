"""Config composition: every file under conf/ composes, typos and bad values are errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf, open_dict

from helpers import REPO, compose_config, run_module
from segkit.app.cli import CONF_DIR, one_line
from segkit.config.loss import parse_loss
from segkit.config.trainer import monitor_mode
from segkit.config.validate import validate
from segkit.config.weights import HDF5_SIGNATURE, is_hdf5
from segkit.core.errors import ConfigError
from segkit.core.naming import metric_direction

# Values an option needs before it composes to a complete config (no `???` left).
REQUIRED = {
    "dataset/isic": ["dataset.root=/data/isic2018"],
    "dataset/dsb2018": ["dataset.root=/data/dsb2018"],
    "dataset/voc": ["dataset.root=/data/VOCdevkit/VOC2012"],
    "dataset/isbi": ["dataset.root=/data/isbi2012"],
    "dataset/folder": ["dataset.images=/data/x/images", "dataset.masks=/data/x/masks"],
    "hparams_search/optuna_isic": ["dataset.root=/data/isic2018"],
}


def group_options() -> list[tuple[str, str]]:
    conf = Path(CONF_DIR)
    return sorted((p.parent.relative_to(conf).as_posix(), p.stem) for p in conf.glob("*/**/*.yaml"))


def test_conf_has_options_in_every_group():
    options = group_options()
    groups = {g for g, _ in options}
    assert len(options) > 0
    assert {"dataset", "model", "trainer", "tracking"} <= groups


@pytest.mark.parametrize(("group", "option"), group_options())
def test_every_option_composes_validates_and_resolves(group, option):
    required = REQUIRED.get(f"{group}/{option}", [])
    if group == "experiment":  # every recipe leaves the data's location to the user
        required = ["dataset.root=/data/x"]
    overrides = [f"{group}={option}", "output_dir=/tmp/x", *required]
    cfg = compose_config(overrides, hydra=True)
    # Hydra's own groups (hydra/launcher) and searches (hparams_search, a global package) set
    # values under hydra: the plugin they name is installed and their values resolve.
    if group.startswith("hydra/") or group == "hparams_search":
        node = cfg.hydra.launcher if group == "hydra/launcher" else cfg.hydra.sweeper
        assert node._target_.startswith("hydra_plugins.")
        OmegaConf.to_container(node, resolve=True)
    with open_dict(cfg):
        del cfg["hydra"]
    validate(cfg)
    # Fully resolvable, and nothing required left unset.
    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    assert container.get(group, container) is not None


def test_default_config_is_the_synthetic_unet():
    cfg = compose_config(["output_dir=/tmp/x"])
    assert (cfg.dataset.name, cfg.model.name) == ("synthetic", "unet")
    assert cfg.tracking.uri == "sqlite:///mlflow.db"
    assert cfg.optimized_metric == "val/dice"


@pytest.mark.parametrize("override", ["trainer.epoch=3", "model.filters=8", "tracking.urii=x"])
def test_unknown_key_is_rejected_at_composition(override):
    with pytest.raises(ConfigCompositionException, match=r"not in|Could not"):
        compose_config([override])


@pytest.mark.parametrize("override", ["+dataset.colour=1", "+trainer.optimizer.beta=0.9"])
def test_key_added_with_plus_is_rejected_by_validation(override):
    cfg = compose_config([override])
    with pytest.raises(ConfigError, match="unknown config key " + override[1:].split("=")[0]):
        validate(cfg)


def test_free_form_tags_can_be_added():
    validate(compose_config(["+tracking.tags.team=vision"]))


@pytest.mark.parametrize(
    "override",
    [
        "trainer.epochs=abc",
        "model.upsampling=nearest",
        "trainer.precision=fp16",
        "model.encoder.weights=x",  # a key of another model's schema
    ],
)
def test_wrong_type_or_choice_is_rejected_at_composition(override):
    with pytest.raises(ConfigCompositionException):
        compose_config([override])


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["dataset.image_size=100"], "dataset.image_size"),
        (["dataset.num_samples=0"], "dataset.num_samples"),
        (["dataset.min_side=16"], "dataset.min_side"),
        (["dataset.num_classes=1"], "dataset.num_classes"),
        (["dataset.ignore_index=1"], "dataset.ignore_index"),
        (["dataset.split.val=0.6", "dataset.split.test=0.5"], "dataset.split"),
        (["trainer.monitor=train/loss"], "trainer.monitor"),
        (["trainer.batch_size=0"], "trainer.batch_size"),
        (["trainer.backup_every_steps=0"], "trainer.backup_every_steps"),
        (["dataset.num_classes=3", "dataset.class_names=null"], "dataset.num_classes"),
        (["dataset=voc", "dataset.num_classes=5"], "dataset.num_classes"),
        (["dataset.class_names=[a,b,c]"], "dataset.class_names"),
        (["trainer.loss=hinge"], "trainer.loss"),
        (["trainer.loss=0*dice"], "trainer.loss"),
        (["trainer.loss=dice + bce_dice"], "trainer.loss"),
        (["trainer.loss_options.ce.class_weights=[1]"], "trainer.loss_options.ce.class_weights"),
        (["trainer.loss_options.focal.alpha=1.5"], "trainer.loss_options.focal.alpha"),
        (["model=improved_unet", "dataset.image_size=72"], "dataset.image_size"),
        (["model=improved_unet", "model.depth=0"], "model.depth"),
        (["model=mobilenet_unet", "dataset.image_size=48"], "dataset.image_size"),
        (["model=mobilenet_unet", "model.decoder_filters=[8,8]"], "model.decoder_filters"),
        (["model=mobilenet_unet", "model.encoder.weights=/no/such.h5"], "model.encoder.weights"),
        (["model=mobilenet_unet", "model.encoder.trainable=false"], "model.encoder.trainable"),
        (["model=mobilenet_unet", "model.fine_tune_at=2"], "model.fine_tune_at"),
    ],
)
def test_impossible_combinations_name_the_key(overrides, key):
    cfg = compose_config(overrides)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)


@pytest.mark.parametrize(
    ("model", "size", "sizes"),
    [
        ("unet", 100, "multiple of 16 of at least 16"),
        ("improved_unet", 40, "multiple of 16 of at least 16"),
        ("mobilenet_unet", 48, "multiple of 32 of at least 32"),
    ],
)
def test_input_size_error_says_which_sizes_work(model, size, sizes):
    cfg = compose_config([f"model={model}", f"dataset.image_size={size}"])
    with pytest.raises(ConfigError, match=f"image_size={size} does not fit .*{sizes}, e.g. "):
        validate(cfg)


def test_a_weights_file_of_random_bytes_is_not_a_weights_file(tmp_path):
    weights = tmp_path / "encoder.weights.h5"
    weights.write_bytes(np.random.default_rng(0).bytes(5000))
    cfg = compose_config(["model=mobilenet_unet", f"model.encoder.weights={weights}"])
    with pytest.raises(ConfigError, match=f"weights={weights}: not a weights file"):
        validate(cfg)
    late = tmp_path / "late.h5"  # a superblock after a 512-byte user block is HDF5 too
    late.write_bytes(bytes(512) + HDF5_SIGNATURE + bytes(100))
    assert is_hdf5(late) and not is_hdf5(weights)


def test_fine_tune_epoch_must_fall_inside_the_run(tmp_path):
    weights = tmp_path / "encoder.weights.h5"
    weights.write_bytes(HDF5_SIGNATURE + bytes(100))  # only its signature is read here
    base = ["model=mobilenet_unet", f"model.encoder.weights={weights}"]
    base.append("model.encoder.trainable=false")
    validate(compose_config([*base, "model.fine_tune_at=5", "trainer.epochs=6"]))
    for at, message in ((0, "fine_tune_at=0: expected >= 1"), (6, "trainer.epochs-1=5")):
        cfg = compose_config([*base, f"model.fine_tune_at={at}", "trainer.epochs=6"])
        with pytest.raises(ConfigError, match=message):
            validate(cfg)


@pytest.mark.parametrize(
    ("expression", "terms"),
    [
        ("bce + dice", {"bce": 1.0, "dice": 1.0}),
        ("bce_dice", {"bce": 1.0, "dice": 1.0}),
        ("0.5*focal+tversky", {"focal": 0.5, "tversky": 1.0}),
        (" 2 * ce ", {"ce": 2.0}),
        ("1e-1*dice", {"dice": 0.1}),
    ],
)
def test_loss_expression_parses_to_weighted_terms(expression, terms):
    assert parse_loss(expression) == terms


def test_loss_override_on_the_command_line_replaces_the_default():
    cfg = compose_config(["trainer.loss=dice"])
    assert parse_loss(cfg.trainer.loss) == {"dice": 1.0}
    cfg = compose_config(["trainer.loss=0.3*focal + 0.7*tversky"])
    assert parse_loss(cfg.trainer.loss) == {"focal": 0.3, "tversky": 0.7}


def test_typo_override_exits_nonzero_with_one_line_naming_the_key(tmp_path):
    result = run_module("segkit.train", "trainer.epoch=3", cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "trainer.epoch" in lines[0] and "trainer.epochs" in lines[0]  # did-you-mean
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_bad_value_caught_by_validation_is_one_line_and_starts_no_run(tmp_path):
    result = run_module("segkit.train", "dataset.image_size=100", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "dataset.image_size=100" in result.stderr and "multiple of" in result.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_an_empty_synthetic_dataset_is_one_line_at_composition(tmp_path):
    """``dataset.num_samples=0`` used to reach the generator and end in a traceback."""
    result = run_module(
        "segkit.train", "dataset.num_samples=0", f"cache_dir={tmp_path}", cwd=tmp_path
    )
    assert result.returncode == 2
    expected = "segkit.train: error: dataset.num_samples=0: expected >= 1"
    assert result.stderr.strip() == expected, result.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "synthetic").exists()


def test_help_lists_groups_and_cfg_prints_resolved_config(tmp_path):
    help_text = run_module("segkit.train", "--help", cwd=tmp_path)
    assert help_text.returncode == 0
    for line in (
        "dataset: dsb2018, folder, isbi, isic, synthetic, voc",
        "augment: elastic, flip, none, standard",
        "model: encoder_unet, improved_unet, mobilenet_unet, unet",
        "trainer: default, mirrored, multi_worker, smoke",
        "tracking: local, none, server",
        "hparams_search: optuna, optuna_isic",
    ):
        assert line in help_text.stdout
    job = run_module("segkit.train", "--cfg", "job", "--resolve", "trainer.epochs=2", cwd=tmp_path)
    assert job.returncode == 0, job.stderr
    cfg = OmegaConf.create(job.stdout)
    assert cfg.trainer.epochs == 2 and cfg.dataset.root.endswith("/.cache/segkit/synthetic")


def test_console_script_is_installed():
    assert (Path(REPO) / ".venv" / "bin" / "segkit-train").exists() or pytest.skip(
        "not running from the project's .venv"
    )


def test_search_direction_follows_the_metric():
    assert compose_config(["hparams_search=optuna"], hydra=True).hydra.sweeper.direction == (
        "maximize"
    )
    cfg = compose_config(["hparams_search=optuna", "optimized_metric=val/loss"], hydra=True)
    assert cfg.hydra.sweeper.direction == "minimize"
    assert metric_direction("test/dice/lesion") == "maximize"


def test_optimized_metric_must_be_a_final_score():
    with pytest.raises(ConfigError, match="optimized_metric='train/loss'"):
        validate(compose_config(["optimized_metric=train/loss"]))


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optimized_metric=val/dcie", "optimized_metric='val/dcie'"),
        ("optimized_metric=test/dice/tumour", "val/dice/blob"),
        ("trainer.monitor=val/dcie", "trainer.monitor='val/dcie'"),
        ("trainer.monitor=val/dice/blob", "val/pixel_accuracy"),
    ],
)
def test_misspelt_metric_is_refused_before_training(override, key):
    """A score no run logs would fail only after training: it is refused at composition."""
    with pytest.raises(ConfigError, match=re.escape(key)):
        validate(compose_config([override]))


def test_a_class_score_can_be_optimised():
    names = compose_config([]).dataset.class_names
    validate(compose_config([f"optimized_metric=test/iou/{names[-1]}"]))
    # Without class names the scores are logged under the class indices.
    unnamed = ["dataset.class_names=null"]
    validate(compose_config([*unnamed, "optimized_metric=val/dice/1"]))
    with pytest.raises(ConfigError, match="val/dice/1"):
        validate(compose_config([*unnamed, f"optimized_metric=val/dice/{names[-1]}"]))


@pytest.mark.parametrize(
    ("overrides", "mode"),
    [
        ([], "max"),
        (["trainer.monitor=val/loss"], "min"),
        (["trainer.monitor=val/loss", "trainer.monitor_mode=max"], "max"),
    ],
)
def test_monitor_mode_follows_the_metric_unless_set(overrides, mode):
    assert monitor_mode(compose_config(overrides).trainer) == mode


def test_missing_plugin_is_named_with_the_install_command():
    error = MissingConfigException(
        "Could not find 'hydra/launcher/joblib'", missing_cfg_file="hydra/launcher/joblib"
    )
    message = one_line(error)
    assert message.startswith("hydra/launcher=joblib needs the hydra-joblib-launcher plugin")
    assert "pip install -e '.[sweep]'" in message and "\n" not in message
