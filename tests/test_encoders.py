"""Pretrained encoders (model=encoder_unet): every registered encoder's maps, parameters,
preprocessing and round trip; ImageNet weights from Keras' cache; weight files; freezing.

Nothing is downloaded: the ImageNet weights are stand-ins saved from random models under
Keras' cache file names, and subprocesses that would download get a proxy that refuses.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from helpers import REPO, compose_config, run_module, user_env
from segkit.config.encoders import ENCODERS
from segkit.config.validate import validate
from segkit.core.errors import ConfigError
from segkit.models import build_model
from segkit.models.encoder_unet import build_encoder_unet
from segkit.models.encoders import FROM_SCRATCH_BN_MOMENTUM
from segkit.training.fit import compile_model, unfreeze_encoder
from segkit.training.strategy import weights_digest

# One small encoder per family runs in the fast suite; the rest are `slow`.
FAST = {
    "mobilenetv2",
    "mobilenetv3small",
    "resnet50",
    "resnet50v2",
    "efficientnetb0",
    "efficientnetv2s",
    "convnext_tiny",
    "densenet121",
    "vgg16",
}
SLOW = pytest.mark.slow
SMALLEST = {"mobilenetv2", "mobilenetv3small"}
EVERY_ENCODER = [pytest.param(n, marks=() if n in FAST else SLOW) for n in sorted(ENCODERS)]
# Round trips in the fast suite: the unnamed-layer taps (ConvNeXt), the caffe channel flip (VGG)
# and an application with its own normalisation (EfficientNet); test_models.py round-trips
# mobilenet_unet and encoder_unet on MobileNetV3.
ROUND_TRIPS = [
    pytest.param(n, marks=() if n in {"convnext_tiny", "vgg16", "efficientnetb0"} else SLOW)
    for n in sorted(ENCODERS)
]
# The application layers that MobileNetV2's maps leave out: the tutorial taps block 16's
# projection before its batch norm, not the 1280-channel head above it.
HEAD_LAYERS = {"mobilenetv2": ("block_16_project_BN", "Conv_1", "Conv_1_bn")}
# keras.applications' own preprocessing of 0..255 RGB, per family.
PREPROCESS_INPUT = {
    "mobilenet": keras.applications.mobilenet_v2.preprocess_input,
    "mobilenet_v3": keras.applications.mobilenet_v3.preprocess_input,
    "resnet": keras.applications.resnet.preprocess_input,
    "resnet_v2": keras.applications.resnet_v2.preprocess_input,
    "efficientnet": keras.applications.efficientnet.preprocess_input,
    "efficientnet_v2": keras.applications.efficientnet_v2.preprocess_input,
    "convnext": keras.applications.convnext.preprocess_input,
    "densenet": keras.applications.densenet.preprocess_input,
    "vgg": keras.applications.vgg16.preprocess_input,
}
# A proxy nobody listens on: a subprocess that tries to download fails at once, online or not.
NO_DOWNLOADS = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}


def bare(name: str, size: int = 64) -> keras.Model:
    """The registered encoder's application, no top, random weights."""
    spec = ENCODERS[name]
    options = {"alpha": 1.0} if spec.alphas else {}
    constructor = getattr(keras.applications, spec.application)
    return constructor(input_shape=(size, size, 3), include_top=False, weights=None, **options)


def decoder_parameters(decoder: str, bottom: int, skips: list[int], filters, outputs: int) -> int:
    """Parameters of the decoder on maps of these channels (0 = no skip), counted by hand."""
    total, channels = 0, bottom
    for i, f in enumerate(filters):
        skip = skips[i] if i < len(skips) else 0
        if decoder == "unet":  # two bias-free 3x3 convs, each with a batch norm (4 per channel)
            total += 9 * (channels + skip) * f + 4 * f + 9 * f * f + 4 * f
            channels = f
        else:  # a bias-free 3x3 transposed conv and a batch norm, then the skip
            total += 9 * channels * f + 4 * f
            channels = f + skip
    return total + 9 * channels * outputs + outputs  # the 3x3 head, with bias


@pytest.mark.parametrize("name", EVERY_ENCODER)
def test_every_encoder_builds_with_maps_at_their_scales_and_known_parameters(name):
    spec = ENCODERS[name]
    model = build_encoder_unet((64, 64, 3), 3, encoder={"name": name})
    assert model.output_shape == (None, 64, 64, 3)
    encoder = model.get_layer("encoder")
    sizes = [out.shape[1] for out in encoder.outputs]
    expected = [64 // 2**k for k, tap in enumerate((*spec.skips, "bottom"), 1) if tap is not None]
    assert sizes == expected
    channels = [out.shape[-1] for out in encoder.outputs]
    skips = [0 if tap is None else channels.pop(0) for tap in spec.skips][::-1]
    reference = bare(name)
    head = sum(reference.get_layer(layer).count_params() for layer in HEAD_LAYERS.get(name, ()))
    decoder = decoder_parameters("unet", channels[-1], skips, (256, 128, 64, 32, 16), 3)
    assert model.count_params() == reference.count_params() - head + decoder


@pytest.mark.parametrize("name", ROUND_TRIPS)
def test_keras_round_trip_in_safe_mode_predicts_the_same(tmp_path, name):
    model = build_encoder_unet(
        (64, 64, 3), 2, encoder={"name": name}, decoder_filters=(16, 8, 8, 4, 4)
    )
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False, safe_mode=True)
    x = np.random.default_rng(0).random((2, 64, 64, 3), np.float32)
    np.testing.assert_array_equal(model.predict_on_batch(x), loaded.predict_on_batch(x))


@pytest.mark.parametrize("decoder", ["unet", "pix2pix"])
def test_convnext_has_no_half_resolution_skip_and_both_decoders_fit(decoder):
    filters = (16, 8, 8, 4, 4) if decoder == "unet" else (16, 8, 8, 4)
    model = build_encoder_unet(
        (64, 64, 1), 21, encoder={"name": "convnext_tiny"}, decoder=decoder, decoder_filters=filters
    )
    assert model.output_shape == (None, 64, 64, 21)
    concats = [layer.name for layer in model.layers if layer.name.endswith("_concat")]
    assert concats == ["dec0_concat", "dec1_concat", "dec2_concat"]  # 1/16, 1/8, 1/4
    expected = decoder_parameters(decoder, 768, [384, 192, 96], filters, 21)
    assert model.count_params() == bare("convnext_tiny").count_params() + expected


@pytest.mark.parametrize("family", sorted(PREPROCESS_INPUT))
def test_the_model_preprocesses_zero_one_input_as_keras_applications_does(family):
    name = next(n for n in sorted(FAST) if ENCODERS[n].family == family)
    model = build_encoder_unet((32, 32, 3), 2, encoder={"name": name})
    operations = model.operations
    fed = operations[operations.index(model.get_layer("encoder")) - 1].output
    preprocessing = keras.Model(model.input, fed)  # what the encoder receives
    x = np.random.default_rng(1).random((2, 32, 32, 3), np.float32)
    expected = PREPROCESS_INPUT[family](x * 255.0)
    np.testing.assert_allclose(preprocessing.predict_on_batch(x), expected, rtol=1e-5, atol=1e-3)


def test_grayscale_input_is_repeated_before_per_channel_preprocessing():
    model = build_encoder_unet((32, 32, 1), 2, encoder={"name": "vgg16"})
    names = [type(op).__name__ for op in model.operations][:5]
    assert names == ["InputLayer", "Concatenate", "Rescaling", "Flip", "Functional"]
    assert [layer.name for layer in model.layers][:4] == [
        "image",
        "gray_to_rgb",
        "to_vgg_range",
        "encoder",
    ]


@pytest.mark.parametrize("name", ["mobilenetv3small", "efficientnetb0", "resnet50", "densenet121"])
def test_random_batch_norms_average_fast_and_pretrained_ones_keep_their_momentum(tmp_path, name):
    model = build_encoder_unet((32, 32, 3), 2, encoder={"name": name})
    assert batch_norm_momenta(model) == {FROM_SCRATCH_BN_MOMENTUM}
    path = tmp_path / f"{name}.weights.h5"
    bare(name, 32).save_weights(path)
    pretrained = build_encoder_unet((32, 32, 3), 2, encoder={"name": name, "weights": str(path)})
    assert FROM_SCRATCH_BN_MOMENTUM not in batch_norm_momenta(pretrained)


def batch_norm_momenta(model: keras.Model) -> set[float]:
    layers = model.get_layer("encoder").layers
    return {x.momentum for x in layers if isinstance(x, keras.layers.BatchNormalization)}


@pytest.mark.parametrize("name", ["resnet50", "efficientnetb0", "convnext_tiny"])
def test_a_local_weights_file_is_loaded_and_one_that_does_not_fit_is_one_line(tmp_path, name):
    # These families' loaders check Keras' file hash, so ImageNet stand-ins go by local path.
    source = bare(name, 32)
    source.save_weights(tmp_path / "encoder.weights.h5")
    model = build_encoder_unet(
        (32, 32, 3), 2, encoder={"name": name, "weights": str(tmp_path / "encoder.weights.h5")}
    )
    loaded = [keras.ops.convert_to_numpy(w) for w in model.get_layer("encoder").weights]
    expected = [keras.ops.convert_to_numpy(w) for w in source.weights]
    assert len(loaded) == len(expected)
    for got, want in zip(loaded, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    other = tmp_path / "vgg16.weights.h5"
    bare("vgg16", 32).save_weights(other)
    with pytest.raises(ConfigError, match=rf"weights={other} does not fit encoder {name}"):
        build_encoder_unet((32, 32, 3), 2, encoder={"name": name, "weights": str(other)})


def test_frozen_encoder_stays_unchanged_then_fine_tunes_with_batch_norms_frozen(tmp_path):
    path = tmp_path / "mobilenetv3small.weights.h5"
    bare("mobilenetv3small", 32).save_weights(path)
    cfg = compose_config(
        [
            "model=encoder_unet",
            "model.encoder.name=mobilenetv3small",
            f"model.encoder.weights={path}",
            "model.encoder.trainable=false",
            "model.decoder_filters=[16,8,8,4,4]",
            "dataset.image_size=32",
            "trainer=smoke",
        ]
    )
    model = build_model(cfg.model, cfg.dataset)
    encoder = model.get_layer("encoder")
    frozen_trainable = len(model.trainable_weights)
    # The decoder's: per level two conv kernels and two batch norms' scales and offsets; the
    # head's kernel and bias.
    assert frozen_trainable == 5 * (2 + 2 * 2) + 2
    x = np.random.default_rng(0).random((4, 32, 32, 3), np.float32)
    y = (x[..., :1] > 0.5).astype(np.uint8)
    before = weights_digest(encoder)
    compile_model(model, cfg.trainer, cfg.dataset, steps_per_epoch=2)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert weights_digest(encoder) == before

    unfreeze_encoder(model)
    norms = [x for x in encoder.layers if isinstance(x, keras.layers.BatchNormalization)]
    unfrozen = {id(w) for w in encoder.trainable_weights}
    assert len(model.trainable_weights) == frozen_trainable + len(unfrozen) > frozen_trainable
    assert not unfrozen & {id(w) for norm in norms for w in norm.weights}
    statistics = [
        keras.ops.convert_to_numpy(w).copy() for n in norms for w in n.non_trainable_weights
    ]
    compile_model(model, cfg.trainer, cfg.dataset, steps_per_epoch=2, lr_scale=0.1)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert weights_digest(encoder) != before
    after = [keras.ops.convert_to_numpy(w) for n in norms for w in n.non_trainable_weights]
    for old, new in zip(statistics, after, strict=True):
        np.testing.assert_array_equal(old, new)  # frozen batch norms: inference mode


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.encoder.name=resnet5"], r"model.encoder.name='resnet5' is not known.*resnet50,"),
        (["dataset.image_size=48"], r"dataset.image_size=48 does not fit encoder resnet50"),
        # Every dataset takes 1 or 3 channels, what the encoders' RGB weights fit.
        (["dataset.channels=4", "model.encoder.weights=imagenet"], r"channels=4: expected 1 or 3"),
        (["model.encoder.alpha=0.5"], r"encoder resnet50 has no width multiplier"),
        (
            [
                "model.encoder.name=mobilenetv3small",
                "model.encoder.alpha=0.35",
                "model.encoder.weights=imagenet",
            ],
            r"alpha in 0.75, 1.0 only",
        ),
        (
            ["model.decoder=pix2pix", "model.decoder_filters=[8,8,8,8,8]"],
            r"decoder pix2pix expects 4",
        ),
        (["model.encoder.trainable=false"], r"would freeze a randomly initialised encoder"),
        (["model.encoder.weights=/no/such.h5"], r"model.encoder.weights=/no/such.h5: no such file"),
    ],
)
def test_composition_checks_are_one_line_errors(overrides, message):
    cfg = compose_config(["model=encoder_unet", "dataset.image_size=64", *overrides])
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


def test_encoder_checks_run_before_tensorflow_loads():
    code = textwrap.dedent(
        """
        import sys
        from helpers import compose_config
        from segkit.config.store import register_configs
        from segkit.config.validate import validate
        from segkit.core.errors import ConfigError
        register_configs()
        cfg = compose_config(["model=encoder_unet", "model.encoder.name=resnet5"])
        try:
            validate(cfg)
        except ConfigError as error:
            print(error)
        print("tensorflow" in sys.modules, "keras" in sys.modules)
        """
    )
    result = python(code, {})
    lines = result.stdout.splitlines()
    assert lines[-2:] == [
        "model.encoder.name='resnet5' is not known; expected one of: "
        + ", ".join(sorted(ENCODERS)),
        "False False",
    ], result.stdout + result.stderr


def python(code: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (Keras reads KERAS_HOME when it is imported)."""
    path = os.pathsep.join([str(REPO / "tests"), str(REPO)])
    return subprocess.run(
        [sys.executable, "-c", code],
        env=user_env({"PYTHONPATH": path, **NO_DOWNLOADS, **env}),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_imagenet_weights_come_from_keras_cache(tmp_path):
    # MobileNetV2's loader checks no file hash: a stand-in under Keras' cache name is loaded.
    models = tmp_path / "keras_home" / "models"
    models.mkdir(parents=True)
    source = keras.applications.MobileNetV2(
        input_shape=(64, 64, 3), include_top=False, weights=None, alpha=0.35
    )
    source.save(models / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5")
    source.save_weights(tmp_path / "expected.weights.h5")
    code = textwrap.dedent(
        f"""
        import keras, numpy as np
        from segkit.models.mobilenet_unet import build_mobilenet_unet
        encoder = {{"weights": "imagenet", "alpha": 0.35}}
        model = build_mobilenet_unet((64, 64, 3), 2, encoder=encoder)
        encoder = model.get_layer("encoder")
        source = keras.applications.MobileNetV2(
            input_shape=(64, 64, 3), include_top=False, weights=None, alpha=0.35
        )
        source.load_weights({str(tmp_path / "expected.weights.h5")!r})
        expected = {{w.path: w.numpy() for w in source.weights}}
        same = all(np.array_equal(w.numpy(), expected[w.path]) for w in encoder.weights)
        norms = [x for x in encoder.layers if isinstance(x, keras.layers.BatchNormalization)]
        momenta = {{norm.momentum for norm in norms}}
        print(same, sorted(momenta))
        """
    )
    result = python(code, {"KERAS_HOME": str(tmp_path / "keras_home")})
    assert result.stdout.splitlines()[-1] == "True [0.999]", result.stdout + result.stderr


def test_imagenet_weights_offline_and_not_cached_is_one_line_naming_the_file(tmp_path):
    home = tmp_path / "empty_keras_home"
    result = run_module(
        "segkit.train",
        "model=encoder_unet",
        "model.encoder.name=resnet50",
        "model.encoder.weights=imagenet",
        "dataset.image_size=32",
        "tracking=none",
        f"output_dir={tmp_path / 'out'}",
        f"cache_dir={tmp_path / 'cache'}",
        cwd=tmp_path,
        env={"KERAS_HOME": str(home), **NO_DOWNLOADS},
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("segkit.train: error")]
    assert len(errors) == 1, result.stderr
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in errors[0]
    assert f"into {home / 'models'}" in errors[0]


JAX_STEP = """
import os, sys
os.environ["KERAS_BACKEND"] = "jax"
import keras, numpy as np
from segkit.models import MODELS
TINY = {
    "unet": {"base_filters": 4, "depth": 2},
    "improved_unet": {"base_filters": 4, "depth": 2},
    "mobilenet_unet": {"encoder": {"alpha": 0.35}, "decoder_filters": (16, 8, 8, 4)},
}
TINY = {name: TINY[name] for name in MODEL_NAMES}
for encoder in ENCODER_NAMES:
    TINY[encoder] = {"encoder": {"name": encoder}, "decoder_filters": (16, 8, 8, 4, 4)}
x = np.random.default_rng(0).random((2, 32, 32, 3), np.float32)
y = (x[..., :1] > 0.5).astype(np.float32)
for name, options in TINY.items():
    builder = MODELS[name] if name in MODELS else MODELS["encoder_unet"]
    model = builder((32, 32, 3), 2, **options)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    loss = float(model.train_on_batch(x, y))
    print(name, keras.backend.backend(), np.isfinite(loss))
print("tensorflow" in sys.modules)
"""


@pytest.mark.parametrize(
    ("models", "encoders"),
    [
        # Fast: the two UNets and the encoder-UNet code on the smallest encoder (JAX builds and
        # compiles each model in ~20 s here).
        pytest.param(["unet", "improved_unet"], ["mobilenetv3small"], id="fast"),
        pytest.param(
            ["mobilenet_unet"],
            sorted(FAST - {"mobilenetv2", "mobilenetv3small"}),
            id="all",
            marks=SLOW,
        ),
    ],
)
def test_every_model_family_takes_a_training_step_under_jax(models, encoders):
    pytest.importorskip("jax", reason="jax[cpu] (the dev extra) is not installed")
    code = f"MODEL_NAMES = {models!r}\nENCODER_NAMES = {encoders!r}\n" + JAX_STEP
    names = [*models, *encoders]
    # JAX builds and compiles a model in 20-60 s on 2 cores; allow a few minutes each.
    result = python(code, {}, timeout=180 * len(names))
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr[-3000:]
    assert lines[-len(names) - 1 : -1] == [f"{n} jax True" for n in names]
    assert lines[-1] == "False"  # TensorFlow was never imported
