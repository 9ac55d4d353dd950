"""``python -m segkit.inspect``: counts, sizes, mask values, class frequencies and overlays of a
dataset, written to files and logged to MLflow when tracking is on. Nothing is trained.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from segkit.cli import CONF_DIR, run_cli, user_errors_exit
from segkit.config import register_configs

register_configs()

PROG = "segkit.inspect"


@hydra.main(config_path=CONF_DIR, config_name="inspect", version_base="1.3")
@user_errors_exit(PROG)
def _main(cfg: DictConfig) -> None:
    from segkit.inspection import inspect

    inspect(cfg)


def main() -> None:
    """Console entry point (``segkit-inspect``)."""
    run_cli(PROG, _main)


if __name__ == "__main__":
    main()
