"""Rendering a Markdown (GitHub) table to lines that fit a width.

Columns take their natural width when the table fits; otherwise the widest columns are narrowed
first (cells wrap), so short columns stay readable. When not even one cell per column fits, the
rows are shown as "header: value" lines instead of a grid.
"""

from __future__ import annotations

from markdown_it.tree import SyntaxTreeNode
from rich.segment import Segment
from textual.content import Content
from textual.style import Style

from edgechat_tui.ui.markdown.inline import content_line, content_lines, inline_content
from edgechat_tui.ui.markdown.style import Line, Palette

__all__ = ["fit_columns", "render_table"]


def _cells(row: SyntaxTreeNode, palette: Palette) -> list[tuple[Content, str]]:
    """The cells of a table row as Content, each with its alignment (left, center, right)."""
    cells = []
    for cell in row.children:
        inline = cell.children[0] if cell.children else None
        tokens = inline.token.children if inline is not None and inline.token is not None else None
        style = str(cell.attrs.get("style", ""))
        align = style.split(":", 1)[1] if style.startswith("text-align:") else "left"
        cells.append((inline_content(tokens or [], palette), align))
    return cells


def fit_columns(natural: list[int], available: int) -> list[int]:
    """Column widths summing to at most ``available``: natural widths, or the widest capped.

    The cap is the largest width such that every column at most that wide fits; any room left
    is shared among the capped columns.
    """
    if sum(natural) <= available:
        return natural
    low, high = 1, max(natural)
    while low < high:  # largest cap whose capped total still fits
        cap = (low + high + 1) // 2
        if sum(min(width, cap) for width in natural) <= available:
            low = cap
        else:
            high = cap - 1
    widths = [min(width, low) for width in natural]
    spare = available - sum(widths)
    for index, width in enumerate(natural):
        if spare <= 0:
            break
        if width > widths[index]:
            widths[index] += 1
            spare -= 1
    return widths


def render_table(node: SyntaxTreeNode, width: int, base: Style, palette: Palette) -> list[Line]:
    """A table as box-drawn lines no wider than ``width``."""
    header_rows: list[list[tuple[Content, str]]] = []
    body_rows: list[list[tuple[Content, str]]] = []
    for section in node.children:
        target = header_rows if section.type == "thead" else body_rows
        target.extend(_cells(row, palette) for row in section.children)
    rows = header_rows + body_rows
    columns = max((len(row) for row in rows), default=0)
    if columns == 0:
        return []
    for row in rows:  # markdown-it pads rows already; be safe with ragged input anyway
        row.extend((Content(""), "left") for _ in range(columns - len(row)))

    available = width - (3 * columns + 1)
    if available < columns:
        return _stacked(header_rows, body_rows, width, base, palette)

    natural = [max(max(row[index][0].cell_length for row in rows), 1) for index in range(columns)]
    widths = fit_columns(natural, available)
    border = (base + palette.table_border).rich_style
    header_base = base + palette.table_header

    def rule(left: str, middle: str, right: str) -> Line:
        return [Segment(left + middle.join("─" * (w + 2) for w in widths) + right, border)]

    lines = [rule("┌", "┬", "┐")]
    for row in header_rows:
        lines.extend(_row_lines(row, widths, header_base, border))
    if header_rows and body_rows:
        lines.append(rule("├", "┼", "┤"))
    for row in body_rows:
        lines.extend(_row_lines(row, widths, base, border))
    lines.append(rule("└", "┴", "┘"))
    return lines


def _row_lines(row: list[tuple[Content, str]], widths: list[int], base: Style, border: object) -> list[Line]:
    """One table row, as many lines high as its tallest wrapped cell."""
    blank = base.rich_style
    wrapped = [content.wrap(width) or [Content("")] for (content, _), width in zip(row, widths, strict=True)]
    height = max(len(cell) for cell in wrapped)
    lines = []
    for y in range(height):
        segments = [Segment("│", border)]  # type: ignore[arg-type]
        for (_, align), cell, width in zip(row, wrapped, widths, strict=True):
            text = cell[y] if y < len(cell) else Content("")
            spare = max(width - text.cell_length, 0)
            left = spare if align == "right" else spare // 2 if align == "center" else 0
            segments.append(Segment(" " * (1 + left), blank))
            segments.extend(content_line(text, base))
            segments.append(Segment(" " * (1 + spare - left), blank))
            segments.append(Segment("│", border))  # type: ignore[arg-type]
        lines.append(segments)
    return lines


def _stacked(
    header_rows: list[list[tuple[Content, str]]],
    body_rows: list[list[tuple[Content, str]]],
    width: int,
    base: Style,
    palette: Palette,
) -> list[Line]:
    """A table too wide for any grid: each row as "header: value" lines, rows apart."""
    headers = [content for content, _ in header_rows[0]] if header_rows else []
    lines: list[Line] = []
    for row in body_rows or header_rows:
        if lines:
            lines.append([])
        for index, (content, _) in enumerate(row):
            label = headers[index] if index < len(headers) else Content("")
            line = Content.assemble(label.stylize(palette.table_header), ": ", content)
            lines.extend(content_lines(line, width, base))
    return lines
