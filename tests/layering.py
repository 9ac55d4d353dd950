"""Static checks of the package layout, read from the source with ``ast`` (nothing is imported).

``segkit``'s packages form layers: each may import only from itself and the layers before it.
``check_layers`` finds upward imports and import cycles; ``module_sizes`` and ``long_functions``
measure what ``scripts/layout_report.py`` prints and ``tests/test_layout.py`` bounds.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# segkit's packages in the order they may import each other (each from those before it).
LAYERS = ("core", "config", "tracking", "data", "models", "training", "evaluation", "app")


@dataclass(frozen=True)
class Import:
    """One ``import`` statement of a module: the segkit module it loads and where it stands."""

    source: str  # importing module, e.g. "segkit.data.loader"
    target: str  # imported module, e.g. "segkit.core.errors"
    line: int
    in_function: bool
    commented: bool  # a comment on the line or the line above says why


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package at ``root`` (a folder with ``__init__.py``) by dotted name."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(root: Path) -> list[Import]:
    """The imports of one package's modules of each other (third-party imports left out)."""
    known = modules(root)
    package = root.name
    found = []
    for name, path in known.items():
        text = path.read_text()
        lines = text.splitlines()
        for node, in_function in _import_nodes(ast.parse(text)):
            for target in dict.fromkeys(_targets(node, name, path, known, package)):
                above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                commented = "#" in lines[node.lineno - 1] or above.startswith("#")
                found.append(Import(name, target, node.lineno, in_function, commented))
    return found


def layer(module: str) -> int:
    """A module's place in ``LAYERS``: -1 for the package root, len(LAYERS) for entry points."""
    parts = module.split(".")
    if len(parts) == 1:
        return -1
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else len(LAYERS)


def upward_imports(found: Sequence[Import], files: dict[str, Path]) -> list[str]:
    """``a.py imports b.py, which is in a later layer`` for each import against the order."""
    return [
        f"{files[i.source]}:{i.line} imports {files[i.target]}, a later layer "
        f"({_layer_name(i.target)} after {_layer_name(i.source)})"
        for i in found
        if layer(i.target) > layer(i.source)
    ]


def cycles(found: Sequence[Import], files: dict[str, Path]) -> list[str]:
    """One message per import cycle, naming the two files of the edge that closes it."""
    graph: dict[str, set[str]] = {}
    for i in found:
        if i.source != i.target:
            graph.setdefault(i.source, set()).add(i.target)
    messages, state = [], {}  # state: 1 = on the current path, 2 = done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                loop = path[path.index(target) :] + [target]
                messages.append(
                    f"import cycle: {files[module]} imports {files[target]} ({' -> '.join(loop)})"
                )
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return messages


def check_layers(root: Path) -> list[str]:
    """Every upward import and every import cycle of the package at ``root``."""
    files = modules(root)
    found = imports(root)
    return upward_imports(found, files) + cycles(found, files)


def function_imports(root: Path) -> list[tuple[Path, int, str, bool]]:
    """(file, line, statement, says why) of every import inside a function, of any module.

    An import says why when a comment stands on its line, on one of the import lines just above
    it (a block of lazy imports shares one comment), or on the line above that block.
    """
    found = []
    for path in sorted(root.rglob("*.py")):
        lines = path.read_text().splitlines()
        for node, in_function in _import_nodes(ast.parse("\n".join(lines))):
            if in_function:
                found.append(
                    (path, node.lineno, lines[node.lineno - 1].strip(), _says_why(lines, node))
                )
    return found


def module_sizes(root: Path) -> dict[Path, int]:
    """Lines of every module under ``root``."""
    return {path: len(path.read_text().splitlines()) for path in sorted(root.rglob("*.py"))}


def long_functions(root: Path, limit: int) -> list[tuple[Path, str, int]]:
    """(file, function, lines) of every function or method longer than ``limit`` lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    found.append((path, node.name, length))
    return found


def _says_why(lines: list[str], node: ast.stmt) -> bool:
    """A comment on the import, on the imports just above it, or on the line above them."""
    row = node.lineno - 1
    while True:
        text = lines[row].strip()
        if "#" in text:
            return True
        above = lines[row - 1].strip() if row > 0 else ""
        if not above.startswith(("import ", "from ", "#")):
            return False
        if above.startswith("#"):
            return True
        row -= 1


def _layer_name(module: str) -> str:
    index = layer(module)
    return "the package root" if index < 0 else LAYERS[index] if index < len(LAYERS) else module


def _import_nodes(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement, and whether it sits inside a function."""

    def walk(node: ast.AST, in_function: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, in_function
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            yield from walk(child, inner)

    yield from walk(tree, False)


def _targets(node, name: str, path: Path, known: dict[str, Path], package: str) -> list[str]:
    """The package's modules an import statement loads (a name imported from a package that
    is one of its submodules counts as that submodule)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
        return [_nearest(n, known) for n in names if n.split(".")[0] == package]
    base = node.module or ""
    if node.level:  # relative: from the importing module's package
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
    if base.split(".")[0] != package:
        return []
    targets = []
    for alias in node.names:
        child = f"{base}.{alias.name}"
        targets.append(child if child in known else _nearest(base, known))
    return targets


def _nearest(module: str, known: dict[str, Path]) -> str:
    """The module itself, or its nearest enclosing package that exists as a file."""
    parts = module.split(".")
    while parts and ".".join(parts) not in known:
        parts.pop()
    return ".".join(parts)
