"""Writing a Keras model in each export format, and running what was written.

Every format is written by TensorFlow's or Keras' own exporter: ``model.export`` for a SavedModel
and for ONNX (Keras drives tf2onnx), ``tf.lite.TFLiteConverter`` for TFLite, from the SavedModel.
The runners load the written file the way a consumer would (``tf.saved_model.load`` and its
``serving_default`` signature, the TFLite interpreter, ONNX Runtime), so the parity check tests the
artifact, not the Keras model again.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from segkit.core.errors import ConfigError

# The file each format writes inside the export folder ("." = the folder is the SavedModel).
ARTIFACT = {"saved_model": ".", "tflite": "model.tflite", "onnx": "model.onnx"}
# The distributions format=onnx needs: Keras' exporter (tf2onnx, onnx) and the parity check's
# runtime (onnxruntime); the `export` extra of pyproject.toml.
ONNX_PACKAGES = {"tf2onnx": "tf2onnx", "onnx": "onnx", "onnxruntime": "onnxruntime"}
SIGNATURE = "serving_default"
METADATA_KEY = "segkit_export"


@dataclass
class Runner:
    """An exported model loaded as its consumer loads it.

    Attributes:
        predict: images float32 [B, H, W, C] in [0, 1] -> probabilities float32 [B, H, W, K].
        input_name: the input's name in the artifact (signature key, tensor or graph input).
        output_name: the output's name there.
    """

    predict: Callable[[np.ndarray], np.ndarray]
    input_name: str
    output_name: str


def check_available(fmt: str) -> None:
    """Refuse a format whose converter is not installed, before any model loads.

    Raises:
        ConfigError: naming the format, the missing packages and how to install them.
    """
    if fmt != "onnx":
        return
    missing = [
        dist for module, dist in ONNX_PACKAGES.items() if not importlib.util.find_spec(module)
    ]
    if missing:
        raise ConfigError(
            f"format=onnx needs {', '.join(ONNX_PACKAGES.values())} (not installed: "
            f"{', '.join(missing)}): pip install -e '.[export]' in a clone of segkit"
        )


def float32_copy(model: keras.Model) -> tuple[keras.Model, str]:
    """The same network and weights with every layer computing in float32, and the policy the
    model was trained under (``mixed_bfloat16``, ``float32``...).

    A model trained under a mixed policy keeps it in its saved config: its layers compute in
    bfloat16 or float16, which TFLite and ONNX Runtime run poorly or not at all on CPU, and its
    probabilities differ from float32 ones by ~1e-3. Its variables are float32 already, so
    rebuilding the config with float32 policies and copying the weights loses nothing.
    """
    found: set[str] = set()
    config = _float32_policies(keras.saving.serialize_keras_object(model), found)
    copy = keras.saving.deserialize_keras_object(config, safe_mode=True)
    copy.set_weights(model.get_weights())
    # Keras' ONNX exporter refuses a model that was never called (a freshly built one).
    copy(np.zeros((1, *model.input_shape[1:]), np.float32), training=False)
    # The output layer is float32 under a mixed policy too: the mixed name is the training one.
    mixed = sorted(name for name in found if name.startswith("mixed_"))
    return copy, mixed[0] if mixed else "float32"


def _float32_policies(node: Any, found: set[str]) -> Any:
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy":
            found.add(str(node["config"]["name"]))
            return {**node, "config": {**node["config"], "name": "float32"}}
        return {key: _float32_policies(value, found) for key, value in node.items()}
    if isinstance(node, list):
        return [_float32_policies(value, found) for value in node]
    return node


def write(model: keras.Model, fmt: str, folder: Path) -> Path:
    """Write ``model`` (float32) in ``fmt`` into the empty ``folder``; returns the artifact."""
    artifact = folder / ARTIFACT[fmt]
    if fmt == "saved_model":
        model.export(str(folder), format="tf_saved_model", verbose=False)
    elif fmt == "onnx":
        model.export(str(artifact), format="onnx", verbose=False)
    else:
        # The converter reads the SavedModel Keras writes (its serving_default signature).
        staging = folder / ".saved_model"
        model.export(str(staging), format="tf_saved_model", verbose=False)
        try:
            converter = tf.lite.TFLiteConverter.from_saved_model(str(staging))
            artifact.write_bytes(converter.convert())
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return artifact


def embed(fmt: str, folder: Path, metadata: dict) -> None:
    """Put the metadata inside the artifact where the format has a place for it: the
    SavedModel's ``assets/`` folder, the ONNX model's ``metadata_props``. (TFLite metadata
    needs the tflite-support writer, which is not installed: the JSON beside it is the record.)
    """
    text = json.dumps(metadata, indent=1, sort_keys=True)
    if fmt == "saved_model":
        (folder / "assets").mkdir(exist_ok=True)
        (folder / "assets" / f"{METADATA_KEY}.json").write_text(text)
    elif fmt == "onnx":
        import onnx  # lazy: an optional dependency (the `export` extra)

        path = folder / ARTIFACT[fmt]
        proto = onnx.load(str(path))
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, text
        onnx.save(proto, str(path))


def load(fmt: str, artifact: Path) -> Runner:
    """The artifact loaded by its own runtime."""
    return {"saved_model": _saved_model, "tflite": _tflite, "onnx": _onnx}[fmt](artifact)


def _saved_model(path: Path) -> Runner:
    loaded = tf.saved_model.load(str(path))
    serve = loaded.signatures[SIGNATURE]
    (input_name,) = serve.structured_input_signature[1]
    (output_name,) = serve.structured_outputs

    def predict(images: np.ndarray) -> np.ndarray:
        return serve(**{input_name: tf.constant(images)})[output_name].numpy()

    return Runner(predict, input_name, output_name)


def _tflite(path: Path) -> Runner:
    with warnings.catch_warnings():
        # tf.lite.Interpreter warns that it moves to the ai-edge-litert package; it still
        # ships with TensorFlow 2.21 and is the runtime segkit can check against here.
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_path=str(path))
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]

    def predict(images: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(source["index"], list(images.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], images)
        interpreter.invoke()
        return np.array(interpreter.get_tensor(target["index"]))

    return Runner(predict, source["name"], target["name"])


def _onnx(path: Path) -> Runner:
    import onnxruntime  # lazy: an optional dependency (the `export` extra)

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    source, target = session.get_inputs()[0], session.get_outputs()[0]

    def predict(images: np.ndarray) -> np.ndarray:
        return session.run([target.name], {source.name: images})[0]

    return Runner(predict, source.name, target.name)
