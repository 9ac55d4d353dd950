"""Figures of the package layout: modules, their sizes, long functions, upward imports, cycles.

    .venv/bin/python scripts/layout_report.py [--limit 60]

Read from the source with ``ast`` (``tests/layering.py``), so it runs without TensorFlow and on
any checkout: run it before and after a change of the layout to compare.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import layering  # noqa: E402  (tests/ on the path first)


def main() -> None:
    """Print the figures of ``segkit/`` as a table, then each problem found."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=60, help="function length limit (lines)")
    args = parser.parse_args()
    root = REPO / "segkit"
    sizes = layering.module_sizes(root)
    long = layering.long_functions(root, args.limit)
    files = layering.modules(root)
    found = layering.imports(root)
    upward = layering.upward_imports(found, files)
    cycles = layering.cycles(found, files)
    lazy = layering.function_imports(root)
    largest = max(sizes, key=sizes.get)
    rows = [
        ("modules", str(len(sizes))),
        ("lines in all", str(sum(sizes.values()))),
        ("median module (lines)", f"{statistics.median(sizes.values()):g}"),
        ("largest module (lines)", f"{sizes[largest]} ({largest.relative_to(REPO)})"),
        ("modules over 300 lines", str(sum(v > 300 for v in sizes.values()))),
        (f"functions over {args.limit} lines", str(len(long))),
        ("upward imports", str(len(upward))),
        ("import cycles", str(len(cycles))),
        ("imports inside functions", str(len(lazy))),
        ("... without a comment saying why", str(sum(not why for *_, why in lazy))),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"| {'figure':{width}} | value |\n| {'-' * width} | --- |")
    for key, value in rows:
        print(f"| {key:{width}} | {value} |")
    for path, name, length in long:
        print(f"long function: {path.relative_to(REPO)}:{name} ({length} lines)")
    for message in upward + cycles:
        print(message.replace(f"{REPO}/", ""))


if __name__ == "__main__":
    main()
