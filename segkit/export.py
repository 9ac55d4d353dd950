"""``python -m segkit.export run_id=<id> format=saved_model|tflite|onnx output=<folder>``: a trained
model in a format TF Serving, TFLite or ONNX Runtime loads, checked against the Keras model.

``model=<path.keras | models:/name/version>`` on the command line is the config key
``model_path`` (``model`` is segkit's model config group, which Hydra would try to load).
"""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig

from segkit.app.cli import CONF_DIR, model_alias, run_cli, user_errors_exit
from segkit.config.store import register_configs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
register_configs()

PROG = "segkit.export"


@hydra.main(config_path=CONF_DIR, config_name="export", version_base="1.3")
@user_errors_exit(PROG)
def _main(cfg: DictConfig) -> None:
    from segkit.app.export import export  # lazy: `--help` loads no TensorFlow

    export(cfg)


def main() -> None:
    """Console entry point (``segkit-export``)."""
    sys.argv[1:] = model_alias(sys.argv[1:])
    run_cli(PROG, _main)


if __name__ == "__main__":
    main()
