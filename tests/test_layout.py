"""The layout checker (``tests/layering.py``) on tiny fake packages: it finds what it must."""

from __future__ import annotations

from pathlib import Path

import layering


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
