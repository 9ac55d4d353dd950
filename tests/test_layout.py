"""The layout checker (``tests/layering.py``) on tiny fake packages: it finds what it must."""

from __future__ import annotations

from pathlib import Path

import layering
from helpers import REPO


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """A fake ``segkit`` package under ``root`` with the given module sources."""
    package = root / "segkit"
    for name, source in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return package


def test_an_upward_import_is_reported_naming_both_files(tmp_path):
    package = write_tree(
        tmp_path,
        {
            "core/__init__.py": "",
            "core/errors.py": "from segkit.app.cli import run_cli\n",
            "app/__init__.py": "",
            "app/cli.py": "from segkit.core import errors\n",
        },
    )
    problems = layering.check_layers(package)
    upward = [p for p in problems if "a later layer" in p]
    assert len(upward) == 1
    assert f"{package / 'core' / 'errors.py'}:1 imports {package / 'app' / 'cli.py'}" in upward[0]
    # The same two modules import each other: a cycle, named by the edge that closes it.
    assert any(p.startswith("import cycle:") and "errors.py" in p for p in problems)


def test_a_cycle_inside_one_layer_and_imports_inside_functions_are_found(tmp_path):
    package = write_tree(
        tmp_path,
        {
            "training/__init__.py": "",
            "training/a.py": "from segkit.training import b\n",
            "training/b.py": "def f():\n    from segkit.training.a import g\n",
        },
    )
    problems = layering.check_layers(package)
    assert problems == [
        f"import cycle: {package / 'training' / 'b.py'} imports {package / 'training' / 'a.py'} "
        "(segkit.training.a -> segkit.training.b -> segkit.training.a)"
    ]
    found = {(i.source, i.target): i for i in layering.imports(package)}
    assert found["segkit.training.b", "segkit.training.a"].in_function
    assert not found["segkit.training.a", "segkit.training.b"].in_function


def test_a_clean_layered_tree_passes(tmp_path):
    package = write_tree(
        tmp_path,
        {
            "core/__init__.py": "",
            "core/errors.py": "import os\n",
            "data/__init__.py": "from segkit.core.errors import X\n",
            "app/__init__.py": "",
            "app/run.py": "from segkit.data import X\nfrom segkit.core import errors\n",
            "train.py": "from segkit.app.run import train\n",
        },
    )
    assert layering.check_layers(package) == []


SEGKIT = REPO / "segkit"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def test_segkit_imports_only_from_earlier_layers_and_has_no_cycle():
    assert layering.check_layers(SEGKIT) == []


def test_modules_and_functions_stay_small():
    sizes = layering.module_sizes(SEGKIT)
    assert {p: n for p, n in sizes.items() if n > MAX_MODULE_LINES} == {}
    assert layering.long_functions(SEGKIT, MAX_FUNCTION_LINES) == []


def test_every_import_inside_a_function_says_why():
    """Imports inside functions are there to keep TensorFlow (or a command's heavy part) out of
    start-up; each says so in a comment."""
    found = layering.function_imports(SEGKIT)
    assert [(str(path), line, text) for path, line, text, why in found if not why] == []


def option_names(group: str) -> set[str]:
    """The options of a config group: ``conf/<group>/*.yaml``."""
    return {path.stem for path in (REPO / "conf" / group).glob("*.yaml")}


def test_each_registry_matches_its_schemas_enum_and_options():
    """A part is registered once: the names its schema, enum and YAML options use are the
    registry's, so adding one to a registry without the rest (or the reverse) fails here."""
    from segkit.config.augment import AUGMENT_SCHEMAS, AugmentName
    from segkit.config.dataset import DATASET_SCHEMAS
    from segkit.config.loss import LossName
    from segkit.config.model import MODEL_SCHEMAS
    from segkit.config.trainer import OptimizerName, ScheduleName, Strategy
    from segkit.data.augment import AUGMENTS
    from segkit.data.formats import FORMATS
    from segkit.models import MODELS
    from segkit.training.losses import LOSSES
    from segkit.training.optim import OPTIMIZERS, SCHEDULES
    from segkit.training.strategy import STRATEGIES

    assert set(FORMATS) == set(DATASET_SCHEMAS) == option_names("dataset")
    assert set(MODELS) == set(MODEL_SCHEMAS) == option_names("model")
    assert set(AUGMENTS) == set(AUGMENT_SCHEMAS) == set(AugmentName) == option_names("augment")
    assert set(LOSSES) | {"bce_dice"} == set(LossName)  # bce_dice: shorthand for bce + dice
    assert set(OPTIMIZERS) == set(OptimizerName)
    assert set(SCHEDULES) == set(ScheduleName)
    assert set(STRATEGIES) == set(Strategy)


def test_each_option_names_itself_and_its_schema():
    """``conf/<group>/<name>.yaml`` starts from schema ``<name>`` and sets ``name: <name>``."""
    for group in ("dataset", "model", "augment"):
        for name in option_names(group):
            text = (REPO / "conf" / group / f"{name}.yaml").read_text()
            assert f"/schema/{group}@_here_: {name}\n" in text, (group, name)
            assert f"\nname: {name}\n" in text, (group, name)
