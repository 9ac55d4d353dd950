"""``python -m segkit.export``: a trained model as a SavedModel, a TFLite file or an ONNX model,
checked against the Keras model on real images before it is put in place.

The export is written into a temporary folder beside ``output``, loaded back by its own runtime
and compared with the Keras model (``export_parity``); only an export that passes becomes
``output``, in one rename, with ``segkit_export.json`` (what a consumer needs to feed it and read
its output, and the parity figures) beside the model. A model trained under a mixed precision
policy is exported in float32 (``export_formats.float32_copy``): its outputs are float32
probabilities, and the change from the trained precision is reported too.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from importlib import metadata as dist_metadata
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf

import segkit
from segkit.app import export_formats as formats
from segkit.app.export_parity import check, compare, fit_policy, parity_images, run_dataset, table
from segkit.config.validate import validate
from segkit.config.values import option_value
from segkit.core.atomic import write_json
from segkit.core.errors import DataError, first_few
from segkit.core.naming import class_names
from segkit.core.paths import check_writable_folder
from segkit.core.scores import classes_of_output
from segkit.evaluation import model_source

log = logging.getLogger(__name__)
METADATA_FILE = "segkit_export.json"


def export(cfg: DictConfig) -> dict:
    """Export the model of ``cfg`` (an ``export`` config) to ``cfg.output``; returns the
    metadata written to ``segkit_export.json``.

    Raises:
        ConfigError, DataError: a user mistake (no model, a format whose converter is not
            installed, an output in the way, no images to check with), before anything is written.
        ParityError: the export's outputs differ from the Keras model's; nothing is written.
    """
    validate(cfg)
    fmt = option_value(cfg.format)
    formats.check_available(fmt)
    output = Path(str(cfg.output)).expanduser().resolve()
    check_output(output, bool(cfg.overwrite))
    # The run's downloaded config and split files are read until the export is in place.
    with tempfile.TemporaryDirectory() as workdir:
        source = model_source.resolve(
            cfg.model_path, cfg.run_id, str(cfg.tracking.uri), Path(workdir)
        )
        record = _export(cfg, fmt, source, output)
    log.info("exported %s (%s) to %s", source.description, fmt, output)
    if source.run_id and cfg.log_to_run and cfg.tracking.enabled:
        _log_to_run(str(cfg.tracking.uri), source.run_id, output, fmt)
    return record


def _export(cfg: DictConfig, fmt: str, source: model_source.ModelSource, output: Path) -> dict:
    """Stage, check and describe the export, then rename it to ``output``; the metadata."""
    dataset = run_dataset(cfg, source)
    size, channels = int(source.model.input_shape[1]), int(source.model.input_shape[-1])
    policy = fit_policy(cfg, dataset, size)
    images, where = parity_images(cfg, source, dataset, policy, channels)
    stage = output.parent / f".tmp-{uuid.uuid4().hex[:8]}-{output.name}"
    stage.mkdir()
    try:
        facts = _write_and_check(cfg, fmt, source.model, images, stage)
        facts["parity"]["images"] = {"count": len(images), "source": where}
        record = _metadata(cfg, fmt, source, dataset, policy, facts)
        formats.embed(fmt, stage, record)
        write_json(stage / METADATA_FILE, record)
        _put_in_place(stage, output)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return record


def check_output(output: Path, overwrite: bool) -> None:
    """Refuse, before the model loads, an output whose files the export would replace.

    Raises:
        DataError: a file; a non-empty folder that is not a segkit export (never replaced);
            a previous export without ``overwrite``.
        ConfigError: a folder that cannot be written.
    """
    if output.is_file():
        raise DataError(f"output={output}: is a file; expected a folder for the export")
    held = sorted(p.name for p in output.iterdir()) if output.is_dir() else []
    if held and not (output / METADATA_FILE).is_file():
        raise DataError(
            f"output={output}: the folder holds files that are not a segkit export "
            f"({first_few(held, 3)}); give an empty or new folder"
        )
    if held and not overwrite:
        raise DataError(
            f"output={output}: holds an export already; give an empty or new folder, or "
            "overwrite=true to replace it"
        )
    # The export is staged beside the output and renamed into place.
    check_writable_folder(output.parent, "output")


def _write_and_check(cfg: DictConfig, fmt: str, model, images: np.ndarray, stage: Path) -> dict:
    """Write the float32 model into ``stage``, run it back and compare; the facts to record."""
    exported, trained = formats.float32_copy(model)
    started = time.perf_counter()
    artifact = formats.write(exported, fmt, stage)
    seconds = time.perf_counter() - started
    runner = formats.load(fmt, artifact)
    threshold, batch = float(cfg.threshold), int(cfg.parity.batch_size)
    rows = [
        (
            f"keras float32 vs {fmt}",
            compare(exported.predict_on_batch, runner.predict, images, threshold, batch),
        ),
    ]
    if trained != "float32":
        # Reported, not checked: 16-bit compute differs from float32 by ~1e-3 by design.
        rows.append(
            (
                f"keras {trained} vs keras float32",
                compare(
                    model.predict_on_batch, exported.predict_on_batch, images, threshold, batch
                ),
            )
        )
    print(table(rows))
    check(rows[0][1], cfg.parity, f"format={fmt}")
    parity = {
        **rows[0][1],
        "limits": OmegaConf.to_container(cfg.parity),
        "passed": True,
    }
    if len(rows) > 1:
        parity["trained_precision_vs_float32"] = rows[1][1]
    return {
        "artifact": str(artifact.relative_to(stage)),
        "runner": runner,
        "trained_precision": trained,
        "export_seconds": round(seconds, 3),
        "parity": parity,
    }


def _metadata(cfg, fmt: str, source, dataset, policy, facts: dict) -> dict:
    """What a consumer needs to feed the export and read its output, and where it came from."""
    model = source.model
    height, width, channels = (int(d) for d in model.input_shape[1:])
    outputs = int(model.output_shape[-1])
    num_classes = classes_of_output(outputs)
    names = class_names(dataset if dataset is not None else {"num_classes": num_classes})
    runner = facts["runner"]
    return {
        "format": fmt,
        "artifact": facts["artifact"],
        "input": {
            "name": runner.input_name,
            "shape": [height, width, channels],
            "batch": "any",
            "layout": "NHWC",
            "dtype": "float32",
            "range": [0.0, 1.0],
            "scaling": "pixel / 255",
            "channel_order": "RGB" if channels == 3 else "grayscale",
            "resize": policy.resize,
            "pad_value": policy.pad_value,
        },
        "output": {
            "name": runner.output_name,
            "shape": [height, width, outputs],
            "dtype": "float32",
            "kind": "sigmoid" if outputs == 1 else "softmax",
            "num_classes": num_classes,
            "class_names": names,
            "threshold": float(cfg.threshold) if outputs == 1 else None,
            "labels": "probability > threshold" if outputs == 1 else "argmax over the last axis",
        },
        "signature": formats.SIGNATURE if fmt == "saved_model" else None,
        "source": {
            "run_id": source.run_id,
            "model": source.description,
            "trained_precision": facts["trained_precision"],
            "exported_precision": "float32",
        },
        "versions": _versions(fmt),
        "export_seconds": facts["export_seconds"],
        "parity": facts["parity"],
    }


def _versions(fmt: str) -> dict[str, str]:
    versions = {"segkit": segkit.__version__, "tensorflow": tf.__version__}
    versions["keras"] = keras.version()
    if fmt == "onnx":
        for dist in formats.ONNX_PACKAGES.values():
            versions[dist] = dist_metadata.version(dist)
    return versions


def _put_in_place(stage: Path, output: Path) -> None:
    """Rename the checked export to ``output``; a previous export there (``check_output``
    allowed it) is moved aside first and deleted only once the new one is in place."""
    if output.is_dir() and not any(output.iterdir()):
        output.rmdir()
    previous = None
    if output.exists():
        previous = output.parent / f".old-{uuid.uuid4().hex[:8]}-{output.name}"
        output.rename(previous)
    stage.rename(output)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def _log_to_run(tracking_uri: str, run_id: str, output: Path, fmt: str) -> None:
    """The export as artifacts ``exports/<format>/`` of the training run."""
    from mlflow import MlflowClient  # lazy: MLflow takes seconds to import; only runs need it

    MlflowClient(tracking_uri).log_artifacts(run_id, str(output), f"exports/{fmt}")
    log.info("logged the export to run %s as exports/%s/", run_id, fmt)
