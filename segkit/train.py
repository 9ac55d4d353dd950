"""``python -m segkit.train``: compose the config with Hydra, train, log to MLflow.

Returns the value of ``optimized_metric`` to Hydra, so sweepers can optimise it. Under ``-m`` each
job's run is nested under the sweep's parent run (``segkit.app.sweep``).
"""

from __future__ import annotations

import os

import hydra
from omegaconf import DictConfig

from segkit.app.cli import CONF_DIR, run_cli, user_errors_exit
from segkit.config.store import register_configs

# TensorFlow's C++ start-up notices (CPU features, missing CUDA) drown the run's own output;
# errors still show. Set before TensorFlow is first imported; an explicit setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
register_configs()


PROG = "segkit.train"


@hydra.main(config_path=CONF_DIR, config_name="train", version_base="1.3")
@user_errors_exit(PROG)
def _main(cfg: DictConfig) -> float | None:
    from segkit.app.run import train  # lazy: `--help` and `--cfg` load no dataset code
    from segkit.app.sweep import join_sweep

    join_sweep(cfg)
    # optimized_metric was checked at composition; None: a class absent from the split, or a
    # multi-worker run's other workers (no scores).
    return train(cfg).get(str(cfg.optimized_metric))


def main() -> None:
    """Console entry point (``segkit-train``)."""
    run_cli(PROG, _main)


if __name__ == "__main__":
    main()
