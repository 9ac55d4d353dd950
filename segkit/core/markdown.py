"""Markdown tables, as the sweep summaries and the quality reports write them."""

from __future__ import annotations

from collections.abc import Sequence


def table_row(cells: Sequence[str]) -> str:
    """One row of a Markdown table; a ``|`` inside a cell is escaped so it stays one cell."""
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
