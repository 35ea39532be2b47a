"""Listings in aligned columns, as `dlq list` and `trace` print them."""

from __future__ import annotations

from collections.abc import Sequence


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """One line per row, each column padded to its widest cell but the last,
    which is left ragged (an error, a verdict: the longest text)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]
        )
        for row in rows
    ]
