"""Models in and out of MLflow: log with the keras flavour, load from a path, a run or the registry.

Loading always goes through ``keras.saving.load_model(..., safe_mode=True)``: a ``.keras`` file
cannot run arbitrary code (no lambda layers deserialised); segkit's own layers and metrics are
registered with ``keras.saving.register_keras_serializable`` and load in safe mode.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from segkit.errors import ConfigError
from segkit.tracking import check_existing_store

log = logging.getLogger(__name__)
# Where segkit.run logs the best checkpoint and the resolved config of a training run.
MODEL_ARTIFACT = "model/best.keras"
CONFIG_ARTIFACT = "config.yaml"
SPLITS_ARTIFACT = "splits"
# The keras-flavour MLflow model of a training run.
LOGGED_MODEL_NAME = "keras_model"


@dataclass
class ModelSource:
    """A loaded model and what is known of the run that trained it.

    Attributes:
        model: the Keras model (not compiled).
        description: how it was named (a path, ``run <id>``, ``models:/name/version``).
        run_id: the training run, or None for a bare ``.keras`` file.
        config: the training run's resolved config (``config.yaml``), or None.
        splits: a folder of the run's ``splits/*.txt``, or None.
    """

    model: object
    description: str
    run_id: str | None = None
    config: DictConfig | None = None
    splits: Path | None = None


def load_keras(path: str | Path):
    """A ``.keras`` file, in safe mode, not compiled.

    Raises:
        ConfigError: the file is missing or not a Keras model, naming it.
    """
    import keras

    path = Path(path).expanduser()
    if not path.is_file() or path.suffix != ".keras":
        raise ConfigError(f"model={path}: expected an existing .keras file")
    # Make sure segkit's registered layers are known before deserialising.
    import segkit.models  # noqa: F401

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (ValueError, OSError) as error:
        raise ConfigError(f"model={path}: cannot be loaded in safe mode ({error})") from None


def resolve(model: str | None, run_id: str | None, tracking_uri: str, workdir: Path) -> ModelSource:
    """Load the model named by ``model`` (a ``.keras`` path or ``models:/name/version``) or
    by ``run_id`` (its ``model/best.keras``), with the training config where one is known.

    Raises:
        ConfigError: none or both given, an unknown run or model version, a missing artifact.
    """
    if bool(model) == bool(run_id):
        raise ConfigError("give exactly one of run_id=<mlflow run id> or model=<path|models:/..>")
    if run_id:
        return _from_run(str(run_id), tracking_uri, workdir)
    model = str(model)
    if model.startswith("models:/"):
        return _from_registry(model, tracking_uri, workdir)
    path = Path(model).expanduser().resolve()
    source = ModelSource(load_keras(path), str(path))
    # A run's own output folder: <output_dir>/checkpoints/best.keras next to config.yaml.
    config_file = path.parent.parent / CONFIG_ARTIFACT
    if config_file.is_file():
        source.config = OmegaConf.load(config_file)
        if (path.parent.parent / SPLITS_ARTIFACT).is_dir():
            source.splits = path.parent.parent / SPLITS_ARTIFACT
    return source


def _client(tracking_uri: str):
    from mlflow import MlflowClient

    check_existing_store(tracking_uri, "tracking.uri")
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _from_run(run_id: str, tracking_uri: str, workdir: Path) -> ModelSource:
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"run_id={run_id}: no such run in {tracking_uri}") from None
    folder = Path(tempfile.mkdtemp(prefix=f"run-{run_id[:8]}-", dir=workdir))
    try:
        model_file = client.download_artifacts(run_id, MODEL_ARTIFACT, str(folder))
    except (MlflowException, OSError):
        raise ConfigError(
            f"run_id={run_id}: the run has no {MODEL_ARTIFACT} artifact (was it trained with "
            "tracking.log_model=false, or did it fail before the end?)"
        ) from None
    source = ModelSource(load_keras(model_file), f"run {run_id}", run_id=run_id)
    _attach_run_files(client, source, run_id, folder)
    return source


def _from_registry(uri: str, tracking_uri: str, workdir: Path) -> ModelSource:
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    parts = uri[len("models:/") :].split("/")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"model={uri}: expected models:/<name>/<version>")
    client = _client(tracking_uri)
    try:
        version = client.get_model_version(parts[0], parts[1])
        folder = Path(tempfile.mkdtemp(prefix="registered-", dir=workdir))
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=uri,
            dst_path=str(folder),
            tracking_uri=tracking_uri,
            registry_uri=tracking_uri,
        )
    except MlflowException as error:
        reason = str(error).splitlines()[0]
        raise ConfigError(f"model={uri}: not found in {tracking_uri} ({reason})") from None
    files = sorted(Path(local).rglob("*.keras"))
    if not files:
        raise ConfigError(f"model={uri}: the registered model holds no .keras file")
    source = ModelSource(load_keras(files[0]), uri, run_id=version.run_id)
    if version.run_id:
        _attach_run_files(client, source, version.run_id, folder)
    return source


def _attach_run_files(client, source: ModelSource, run_id: str, folder: Path) -> None:
    """The run's config and split files, where it logged them."""
    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException, OSError):
        source.config = OmegaConf.load(
            client.download_artifacts(run_id, CONFIG_ARTIFACT, str(folder))
        )
    with contextlib.suppress(MlflowException, OSError):
        splits = Path(client.download_artifacts(run_id, SPLITS_ARTIFACT, str(folder)))
        if splits.is_dir() and any(splits.glob("*.txt")):
            source.splits = splits


def log_keras_model(tracker, model_file: Path, cfg: DictConfig) -> None:
    """Log the best checkpoint with MLflow's keras flavour (input example and signature from
    the dataset's image size and channels) and register it under ``tracking.register_model``
    when that is set. Does nothing without an MLflow run (``tracking=none``)."""
    run_id = getattr(tracker, "run_id", None)
    if run_id is None or not model_file.is_file():
        return
    import mlflow
    import mlflow.keras
    import numpy as np
    from mlflow.models import infer_signature
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    ds = cfg.dataset
    example = np.zeros((1, int(ds.image_size), int(ds.image_size), int(ds.channels)), np.float32)
    model = load_keras(model_file)
    # A signature, not an input_example: MLflow 3.17's keras flavour writes the example before
    # it creates the model folder (FileNotFoundError).
    signature = infer_signature(example, np.asarray(model.predict_on_batch(example)))
    name = cfg.tracking.get("register_model") or None
    uri = str(cfg.tracking.uri)
    # mlflow.keras.log_model logs to the fluent API's active run in the global tracking URI;
    # segkit's tracker uses an explicit client, so the run is made active only for this call.
    with _use_tracking_uri(uri):
        mlflow.set_registry_uri(uri)
        with mlflow.start_run(run_id=run_id):
            mlflow.keras.log_model(
                model,
                name=LOGGED_MODEL_NAME,
                signature=signature,
                registered_model_name=name,
            )
    log.info("logged the keras model%s", f" and registered it as {name!r}" if name else "")
