"""The model to evaluate or predict with: a ``.keras`` path, a training run or a registered model,
with the training run's config and splits where they are known.

Loading always goes through ``keras.saving.load_model(..., safe_mode=True)``: a ``.keras`` file
cannot run arbitrary code (no lambda layers deserialised). Models are loaded without their
compile settings, so the loss, metrics and optimizer a checkpoint was trained with need not load.
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from segkit.config.store import SCHEMAS
from segkit.core.errors import ConfigError
from segkit.core.paths import CONFIG_FILE, MODEL_ARTIFACT_DIR, SPLITS_DIR, run_folder_of
from segkit.tracking.store import check_existing_store

log = logging.getLogger(__name__)
# The best checkpoint of a training run, as it logs it.
MODEL_ARTIFACT = f"{MODEL_ARTIFACT_DIR}/best.keras"


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
    import keras  # lazy: keeps TensorFlow out of the start of evaluate and predict

    path = Path(path).expanduser()
    if not path.is_file() or path.suffix != ".keras":
        raise ConfigError(f"model={path}: expected an existing .keras file")
    if not zipfile.is_zipfile(path):
        raise ConfigError(
            f"model={path}: not a Keras model file (a .keras file is a zip archive; this one "
            "is cut short or something else)"
        )
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (ValueError, OSError, TypeError, KeyError, zipfile.BadZipFile) as error:
        # TypeError: a config naming what Keras will not deserialize (a Lambda, os.system as
        # an activation); KeyError, BadZipFile: a cut or foreign archive.
        raise ConfigError(
            f"model={path}: cannot be loaded in safe mode ({keras_reason(error)})"
        ) from None


def keras_reason(error: BaseException) -> str:
    """Keras' innermost reason for a failed load, on one line: a deserialisation error nests
    each layer's message in its parent's and ends with ``Exception encountered: <reason>``."""
    inner = " ".join(str(error).rsplit("Exception encountered: ", 1)[-1].split())
    return re.split(r"(?<=\.) ", inner, maxsplit=1)[0][:200] or type(error).__name__


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
    folder = run_folder_of(path)
    if (folder / CONFIG_FILE).is_file():
        source.config = OmegaConf.load(folder / CONFIG_FILE)
        if (folder / SPLITS_DIR).is_dir():
            source.splits = folder / SPLITS_DIR
    return source


def _client(tracking_uri: str):
    # lazy: MLflow takes seconds to import; a model given as a file needs none of it
    from mlflow import MlflowClient

    check_existing_store(tracking_uri, "tracking.uri")
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _from_run(run_id: str, tracking_uri: str, workdir: Path) -> ModelSource:
    from mlflow.exceptions import MlflowException  # lazy: see _client

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
    import mlflow.artifacts  # lazy: see _client
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
    from mlflow.exceptions import MlflowException  # lazy: see _client

    with contextlib.suppress(MlflowException, OSError):
        source.config = OmegaConf.load(client.download_artifacts(run_id, CONFIG_FILE, str(folder)))
    with contextlib.suppress(MlflowException, OSError):
        splits = Path(client.download_artifacts(run_id, SPLITS_DIR, str(folder)))
        if splits.is_dir() and any(splits.glob("*.txt")):
            source.splits = splits


def run_dataset(source: ModelSource) -> DictConfig | None:
    """The training run's dataset node merged into today's schema (a run logged by an older
    segkit lacks the keys added since), or None without a training config."""
    if source.config is None or "dataset" not in source.config:
        return None
    schema = OmegaConf.structured(SCHEMAS["dataset"][str(source.config.dataset.name)])
    return OmegaConf.merge(schema, source.config.dataset)
