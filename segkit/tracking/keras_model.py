"""A trained model logged with MLflow's keras flavour, and registered in the model registry.

MLflow's keras flavour imports TensorFlow: only a training run's last step imports this module.
"""

from __future__ import annotations

import logging
from importlib import metadata

import mlflow
import mlflow.keras
import numpy as np
from mlflow.models import infer_signature
from mlflow.tracking._tracking_service.utils import _use_tracking_uri
from omegaconf import DictConfig

log = logging.getLogger(__name__)
# The keras-flavour MLflow model of a training run.
LOGGED_MODEL_NAME = "keras_model"
# What a consumer of the logged model installs to load it: Keras, the backend it was saved with
# and NumPy, pinned to the versions that trained it.
REQUIRED = ("keras", "tensorflow", "numpy")


def keras_requirements() -> list[str]:
    """The logged model's pip requirements from the installed versions (``keras==3.15.1``, ...).

    Given explicitly because otherwise MLflow infers them by loading the model again in a
    subprocess: 9 s against 0.13 s here, 40 s on a slower 2-core machine
    (``scripts/bench_model_logging.py``).
    """
    return [f"{name}=={metadata.version(name)}" for name in REQUIRED]


def log_keras_model(run_id: str, model, cfg: DictConfig) -> None:
    """Log ``model`` (a run's best checkpoint) in MLflow run ``run_id`` with the keras flavour
    (signature from the dataset's image size and channels) and register it under
    ``tracking.register_model`` when that is set."""
    # Imported here: MLflow's keras flavour loads TensorFlow, which a command's start skips.
    ds = cfg.dataset
    example = np.zeros((1, int(ds.image_size), int(ds.image_size), int(ds.channels)), np.float32)
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
                pip_requirements=keras_requirements(),
                registered_model_name=name,
            )
    log.info("logged the keras model%s", f" and registered it as {name!r}" if name else "")
