"""Every model: shapes, dtypes, parameter counts against the references, .keras round trips."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers import REPO, compose_config
from segkit.core.errors import ConfigError
from segkit.models import MODELS, build_model
from segkit.models.encoders import FROM_SCRATCH_BN_MOMENTUM
from segkit.models.improved_unet import build_improved_unet
from segkit.models.mobilenet_unet import SKIP_LAYERS, build_mobilenet_unet
from segkit.models.unet import build_unet
from segkit.training.fit import compile_model
from segkit.training.precision import precision_policy

# Tiny settings per model, for 32 px inputs (MobileNetV2 needs a multiple of 32).
TINY = {
    "unet": {"base_filters": 4, "depth": 2},
    "improved_unet": {"base_filters": 4, "depth": 2},
    "encoder_unet": {
        "encoder": {"name": "mobilenetv3small", "weights": None, "trainable": True, "alpha": 0.75},
        "decoder_filters": (16, 8, 8, 4, 4),
    },
    "mobilenet_unet": {
        "encoder": {"weights": None, "trainable": True, "alpha": 0.35},
        "decoder_filters": (16, 8, 8, 4),
    },
}


def tiny(name: str, num_classes: int, channels: int = 3, **overrides) -> keras.Model:
    return MODELS[name]((32, 32, channels), num_classes, **{**TINY[name], **overrides})


def images(n: int = 2, size: int = 32, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, size, size, channels), np.float32)


def test_registry_has_every_model():
    assert set(MODELS) == {"unet", "improved_unet", "encoder_unet", "mobilenet_unet"} == set(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize(("num_classes", "channels"), [(2, 1), (21, 21)])
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_output_shape_and_float32_dtype_under_mixed_precision(name, num_classes, channels, policy):
    with precision_policy(policy):
        model = tiny(name, num_classes)
    assert keras.config.dtype_policy().name == "float32"  # restored
    hidden = [layer for layer in model.layers if layer.name not in ("image", "probabilities")]
    assert any(layer.compute_dtype != "float32" for layer in hidden)  # really mixed
    out = model(images(), training=False)
    assert tuple(out.shape) == (2, 32, 32, channels)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    out = keras.ops.convert_to_numpy(out)
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
    if channels > 1:
        np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    ("num_classes", "channels", "activation"), [(2, 1, "sigmoid"), (21, 21, "softmax")]
)
@pytest.mark.parametrize("upsampling", ["transpose", "bilinear"])
def test_unet_output_shape_for_binary_and_multiclass(num_classes, channels, activation, upsampling):
    model = build_unet((64, 64, 3), num_classes, base_filters=4, depth=3, upsampling=upsampling)
    out = model.predict(images(size=64), verbose=0)
    assert out.shape == (2, 64, 64, channels)
    assert model.get_layer("probabilities").get_config()["activation"] == activation


def test_paper_unet_has_31m_parameters_and_small_settings_scale():
    paper = build_unet((64, 64, 3), 2, base_filters=64, depth=4, batch_norm=False)
    # Ronneberger et al.: 23 conv layers, ~31.0 M parameters with 'same' padding and 1 output.
    assert paper.count_params() == pytest.approx(31.03e6, rel=0.005)
    small = build_unet((64, 64, 3), 2, base_filters=16, depth=4, batch_norm=False)
    # Parameters scale with the square of the width: 4x narrower, about 16x fewer.
    assert paper.count_params() / small.count_params() == pytest.approx(16, rel=0.02)


def test_improved_unet_matches_the_patternflow_reference_size():
    model = build_improved_unet((128, 128, 3), 2)
    # PatternFlow's improved UNet (base 16, 3 channels in, 1 out) has 3,186,035 parameters; the
    # paper's instance norms after the decoder convolutions add 2 * 944 scale/offset parameters.
    assert model.count_params() == 3_186_035 + 1_888
    assert model.count_params() == pytest.approx(3.19e6, rel=0.001)
    filters = [model.get_layer(f"enc{i}_context_conv2").filters for i in range(5)]
    assert filters == [16, 32, 64, 128, 256]
    norm = model.get_layer("enc2_context_norm1")
    assert isinstance(norm, keras.layers.GroupNormalization) and norm.groups == 64  # instance


def test_improved_unet_deep_supervision_sums_three_levels():
    model = build_improved_unet((64, 64, 3), 3, base_filters=4, depth=4)
    assert [layer.name for layer in model.layers if layer.name.endswith("_seg")] == [
        "dec2_seg",
        "dec1_seg",
        "dec0_seg",
    ]
    plain = build_improved_unet((64, 64, 3), 3, base_filters=4, depth=4, deep_supervision=False)
    assert [layer.name for layer in plain.layers if layer.name.endswith("_seg")] == ["dec0_seg"]
    sum_layer = model.get_layer("dec0_seg_sum")
    assert sum_layer.dtype_policy.compute_dtype == "float32"


def test_mobilenet_unet_matches_the_tensorflow_tutorial():
    # The tutorial's model summary at 128x128x3 with 3 output channels and a frozen encoder.
    model = build_mobilenet_unet((128, 128, 3), 3, encoder={"trainable": False})
    assert model.count_params() == 6_504_227
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 4_660_323
    encoder = model.get_layer("encoder")
    assert [out.shape[1] for out in encoder.outputs] == [64, 32, 16, 8, 4]
    assert [model.get_layer(f"dec{i}_up").filters for i in range(4)] == [512, 256, 128, 64]
    binary = build_mobilenet_unet((128, 128, 3), 2)
    assert binary.output_shape == (None, 128, 128, 1)
    assert binary.count_params() == 6_504_227 - 2 * (3 * 3 * 160 + 1)


def test_mobilenet_unet_scales_input_to_minus_one_one_and_takes_grayscale():
    model = tiny("mobilenet_unet", 2, channels=1)
    rescale = model.get_layer("to_mobilenet_range")
    out = keras.ops.convert_to_numpy(rescale(np.array([[0.0, 0.5, 1.0]], np.float32)))
    np.testing.assert_allclose(out, [[-1.0, 0.0, 1.0]])
    assert model.get_layer("encoder").inputs[0].shape[-1] == 3
    assert model.predict(images(channels=1), verbose=0).shape == (2, 32, 32, 1)


def test_mobilenet_encoder_loads_a_local_weights_file_and_can_be_frozen(tmp_path):
    # A weights file of MobileNetV2 without its top, like Keras' ImageNet "no_top" files.
    source = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), include_top=False, weights=None, alpha=0.35
    )
    path = tmp_path / "mobilenet_v2_no_top.weights.h5"
    source.save_weights(path)
    encoder_cfg = {"weights": str(path), "trainable": False, "alpha": 0.35}
    frozen = tiny("mobilenet_unet", 2, encoder=encoder_cfg)
    encoder = frozen.get_layer("encoder")
    for layer in encoder.layers[1:]:  # after the input
        for a, b in zip(source.get_layer(layer.name).weights, layer.weights, strict=True):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
            )
    assert not encoder.trainable
    # Pretrained statistics keep MobileNetV2's slow averaging; random ones get Keras' default.
    assert bn_momenta(frozen) == {0.999}
    assert bn_momenta(tiny("mobilenet_unet", 2)) == {FROM_SCRATCH_BN_MOMENTUM}
    trainable = {id(w) for w in frozen.trainable_weights}
    assert trainable and not trainable & {id(w) for w in encoder.weights}
    with pytest.raises(ConfigError, match=r"model\.encoder\.weights=.*missing\.h5: no such file"):
        tiny("mobilenet_unet", 2, encoder={"weights": str(tmp_path / "missing.h5")})


def bn_momenta(model) -> set[float]:
    """The momenta of the batch norms in a model's encoder."""
    encoder = model.get_layer("encoder")
    norms = [x for x in encoder.layers if isinstance(x, keras.layers.BatchNormalization)]
    return {norm.momentum for norm in norms}


@pytest.mark.parametrize("name", sorted(TINY))
def test_layer_names_are_deterministic(name):
    first, second = tiny(name, 3), tiny(name, 3)
    assert [layer.name for layer in first.layers] == [layer.name for layer in second.layers]
    if name == "mobilenet_unet":
        encoder = first.get_layer("encoder")
        assert encoder.layers[0].name == "encoder_image"
        assert {layer.name for layer in encoder.layers} >= set(SKIP_LAYERS)


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_keras_round_trip_gives_identical_predictions(tmp_path, name, policy):
    with precision_policy(policy):
        model = tiny(name, 3)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    x = images(seed=1)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


@pytest.mark.parametrize("name", sorted(TINY))
def test_build_model_from_each_config_file(name):
    cfg = compose_config([f"model={name}", "dataset.image_size=64"])
    model = build_model(cfg.model, cfg.dataset)
    assert model.name == name
    assert model.input_shape == (None, 64, 64, 3) and model.output_shape == (None, 64, 64, 1)


def test_unknown_model_lists_the_valid_names():
    cfg = compose_config(["dataset.image_size=32", "model.base_filters=4", "model.depth=2"])
    cfg.model.name = "vnet"
    with pytest.raises(ConfigError, match="model.name='vnet'.*improved_unet, mobilenet_unet, unet"):
        build_model(cfg.model, cfg.dataset)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_every_model_takes_a_finite_training_step(name, policy):
    # The fast suite trains every model under mirrored + mixed_float16 (test_train.py).
    cfg = compose_config(["trainer=smoke"])
    x = images(n=4)
    y = (x[..., :1] > 0.5).astype(np.uint8)
    with precision_policy(policy):
        model = tiny(name, 2)
        compile_model(model, cfg.trainer, cfg.dataset, steps_per_epoch=2)
        logs = model.fit(x, y, batch_size=2, epochs=1, verbose=0).history
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.isfinite(logs["loss"]).all() and 0.0 <= logs["dice"][0] <= 1.0


def test_a_model_saved_before_the_package_layout_moved_still_loads():
    """``tests/data/pre_layout_unet.keras`` was saved by segkit before its modules moved into
    stage packages (commit ffa89e5): a tiny UNet compiled with segkit's loss, metrics and a
    fine-tuning phase's scaled cosine schedule. It loads as evaluate and predict load models
    (safe mode, not compiled) and predicts exactly what it predicted then."""
    from segkit.evaluation.model_source import load_keras

    data = REPO / "tests" / "data"
    model = load_keras(data / "pre_layout_unet.keras")
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    expected = np.load(data / "pre_layout_unet_predictions.npy")
    np.testing.assert_allclose(model.predict_on_batch(x), expected, rtol=0, atol=1e-6)
