"""UNet shapes, dtypes, parameter counts and the .keras round trip."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers import compose_config
from segkit.errors import ConfigError
from segkit.models import MODELS, build_model
from segkit.models.unet import build_unet
from segkit.trainer import precision_policy


@pytest.mark.parametrize(
    ("num_classes", "channels", "activation"), [(2, 1, "sigmoid"), (21, 21, "softmax")]
)
@pytest.mark.parametrize("upsampling", ["transpose", "bilinear"])
def test_unet_output_shape_for_binary_and_multiclass(num_classes, channels, activation, upsampling):
    model = build_unet((64, 64, 3), num_classes, base_filters=4, depth=3, upsampling=upsampling)
    out = model.predict(np.random.default_rng(0).random((2, 64, 64, 3), np.float32), verbose=0)
    assert out.shape == (2, 64, 64, channels)
    assert model.get_layer("probabilities").get_config()["activation"] == activation
    if channels > 1:
        np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)
    else:
        assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_output_is_float32_under_mixed_precision(policy):
    with precision_policy(policy):
        model = build_unet((32, 32, 3), 2, base_filters=4, depth=2)
        assert model.get_layer("enc0_conv1").compute_dtype != "float32"
    assert keras.config.dtype_policy().name == "float32"  # restored
    out = model(np.zeros((1, 32, 32, 3), np.float32))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


def test_paper_unet_has_31m_parameters_and_small_settings_scale():
    paper = build_unet((64, 64, 3), 2, base_filters=64, depth=4, batch_norm=False)
    # Ronneberger et al.: 23 conv layers, ~31.0 M parameters with 'same' padding and 1 output.
    assert paper.count_params() == pytest.approx(31.03e6, rel=0.005)
    small = build_unet((64, 64, 3), 2, base_filters=16, depth=4, batch_norm=False)
    # Parameters scale with the square of the width: 4x narrower, about 16x fewer.
    assert paper.count_params() / small.count_params() == pytest.approx(16, rel=0.02)


def test_keras_round_trip_gives_identical_predictions(tmp_path):
    model = build_unet((32, 32, 3), 3, base_filters=4, depth=2, dropout=0.2)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    x = np.random.default_rng(1).random((2, 32, 32, 3), np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_build_model_from_config_and_registry():
    cfg = compose_config(["dataset.image_size=32", "model.base_filters=4", "model.depth=2"])
    model = build_model(cfg.model, cfg.dataset)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 32, 32, 1)
    assert "unet" in MODELS
    cfg.model.name = "vnet"
    with pytest.raises(ConfigError, match="model.name='vnet'.*unet"):
        build_model(cfg.model, cfg.dataset)
