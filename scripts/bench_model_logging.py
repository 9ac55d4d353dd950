"""Seconds to log a trained model to MLflow: requirements inferred by MLflow vs given by segkit.

A training run's last step logs its best checkpoint with MLflow's keras flavour. Without
``pip_requirements`` MLflow infers them: it loads the saved model again in a subprocess that
imports TensorFlow and records every module it touches. segkit gives them from the installed
versions (``segkit.tracking.keras_model.keras_requirements``). Both variants log the same model
(the default UNet at the default 128 px) to the same fresh SQLite store, alternating, ``--repeat``
times each, so the machine's load affects both alike.

    python scripts/bench_model_logging.py
    python scripts/bench_model_logging.py --repeat 3 --size 64
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import mlflow  # noqa: E402
import mlflow.keras  # noqa: E402
import numpy as np  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402

from segkit.app.cli import CONF_DIR  # noqa: E402
from segkit.config.store import register_configs  # noqa: E402
from segkit.models import build_model  # noqa: E402
from segkit.tracking.keras_model import keras_requirements  # noqa: E402

VARIANTS = {"inferred by MLflow": None, "explicit (segkit)": keras_requirements}


def log_once(model, signature, requirements) -> float:
    """Seconds for one ``mlflow.keras.log_model`` into a new run of the active store."""
    with mlflow.start_run():
        start = time.perf_counter()
        mlflow.keras.log_model(
            model, name="keras_model", signature=signature, pip_requirements=requirements
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="loggings per variant")
    parser.add_argument("--size", type=int, default=128, help="input side in pixels")
    args = parser.parse_args()
    register_configs()
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"dataset.image_size={args.size}"])
    model = build_model(cfg.model, cfg.dataset)
    example = np.zeros((1, args.size, args.size, 3), np.float32)
    signature = infer_signature(example, np.asarray(model.predict_on_batch(example)))
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as folder:
        mlflow.set_tracking_uri(f"sqlite:///{Path(folder) / 'mlflow.db'}")
        for _ in range(args.repeat):
            for name, requirements in VARIANTS.items():
                times[name].append(log_once(model, signature, requirements and requirements()))
    base = statistics.median(times["inferred by MLflow"])
    print(f"model: {model.name}, {model.count_params()} parameters, {args.size} px")
    print("| requirements | median s | runs (s) | time vs inferred |")
    print("| --- | --- | --- | --- |")
    for name, values in times.items():
        runs = ", ".join(f"{v:.1f}" for v in values)
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {runs} | {median / base:.3f} |")


if __name__ == "__main__":
    main()
