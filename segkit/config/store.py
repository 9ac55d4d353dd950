"""The schemas in Hydra's ConfigStore, where every YAML file under ``conf/`` starts from one.

Each option file names its schema in its defaults list (``/schema/<group>@_here_: <name>``), so an
unknown key or a value of the wrong type is an error at composition time, naming the key.
"""

from __future__ import annotations

from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from segkit.config.augment import AUGMENT_SCHEMAS
from segkit.config.commands import (
    EvaluateConfig,
    ExportConfig,
    InspectConfig,
    PredictConfig,
    TrainConfig,
)
from segkit.config.dataset import DATASET_SCHEMAS
from segkit.config.model import MODEL_SCHEMAS
from segkit.config.tracking import TrackingConfig
from segkit.config.trainer import TrainerConfig
from segkit.core.naming import metric_direction

# Config group -> option name -> schema.
SCHEMAS: dict[str, dict[str, Any]] = {
    "dataset": DATASET_SCHEMAS,
    "model": MODEL_SCHEMAS,
    "trainer": {"trainer": TrainerConfig},
    "augment": AUGMENT_SCHEMAS,
    "tracking": {"tracking": TrackingConfig},
}
# Command config name -> root schema (conf/<command>.yaml starts from <command>_schema).
COMMANDS = {
    "train": TrainConfig,
    "inspect": InspectConfig,
    "evaluate": EvaluateConfig,
    "predict": PredictConfig,
    "export": ExportConfig,
}


def register_configs() -> None:
    """Register the schemas in Hydra's ConfigStore and segkit's resolvers (idempotent).

    ``${metric_direction:val/loss}`` gives ``minimize`` (``maximize`` for scores), for sweepers.
    """
    OmegaConf.register_new_resolver("metric_direction", metric_direction, replace=True)
    cs = ConfigStore.instance()
    for command, node in COMMANDS.items():
        cs.store(name=f"{command}_schema", node=node)
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            cs.store(group=f"schema/{group}", name=name, node=node)
