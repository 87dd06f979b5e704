"""How many rows an entry of the chat pane takes: measured once it was shown, estimated before.

The pane mounts only a window of the conversation and reserves, above and below it, the rows the
rest would take, so that the scrollbar tells where the view is in the whole conversation. A row
count measured while an entry was mounted is exact (at that width); an entry never shown is
estimated from its text. No Textual here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["RowCache", "Sized", "estimate_rows", "index_at_row", "rows_of"]

# The bar, the padding and the pane's own padding take this many columns of the width.
_CHROME_COLUMNS = 5
# A label row (the user's name, "assistant  model") and the margin above each message.
_MESSAGE_EXTRA = 2


def estimate_rows(kind: str, text: str, width: int) -> int:
    """Rows a message of ``kind`` with ``text`` would take at ``width`` columns (never under 1)."""
    columns = max(10, width - _CHROME_COLUMNS)
    lines = 0
    for line in text.split("\n"):
        lines += max(1, -(-len(line) // columns))
    if kind in ("user", "assistant"):
        return lines + _MESSAGE_EXTRA
    return lines + 1  # a notice: its text and the margin above it


@dataclass(slots=True)
class RowCache:
    """One entry's rows: measured (exact at ``width``) or estimated, whichever is known."""

    measured: int | None = None
    measured_width: int = 0
    estimated: int | None = None
    estimated_width: int = 0


class Sized(Protocol):
    kind: str
    text: str
    rows: RowCache


def rows_of(entry: Sized, width: int) -> int:
    """The rows ``entry`` takes at ``width``: what was measured at that width, else an estimate."""
    cache = entry.rows
    if cache.measured is not None and cache.measured_width == width:
        return cache.measured
    if cache.estimated is None or cache.estimated_width != width:
        cache.estimated = estimate_rows(entry.kind, entry.text, width)
        cache.estimated_width = width
    return cache.estimated


def index_at_row(entries: list, row: float, width: int) -> int:
    """The index of the entry that covers ``row`` (rows counted from the first entry's top)."""
    total = 0
    for index, entry in enumerate(entries):
        total += rows_of(entry, width)
        if total > row:
            return index
    return max(0, len(entries) - 1)
