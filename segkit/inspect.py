"""``python -m segkit.inspect``: counts, sizes, mask values, class frequencies and overlays of a
dataset, written to files and logged to MLflow when tracking is on. Nothing is trained.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from segkit.app.cli import CONF_DIR, run_cli, user_errors_exit
from segkit.config.store import register_configs

register_configs()

PROG = "segkit.inspect"


@hydra.main(config_path=CONF_DIR, config_name="inspect", version_base="1.3")
@user_errors_exit(PROG)
def _main(cfg: DictConfig) -> None:
    from segkit.app.inspect import inspect  # lazy: `--help` loads no dataset code

    inspect(cfg)


def main() -> None:
    """Console entry point (``segkit-inspect``)."""
    run_cli(PROG, _main)


if __name__ == "__main__":
    main()
