"""What of a rendered line can be selected and copied, and how a selection is drawn on it.

A reply's line is a list of Segments. Most of it is text the user reads: that is what a mouse
selection highlights and what it copies, character for character. Some of it is decoration that
belongs to no text: the code panel's side padding and its language label. Decoration is marked by
the renderer with :func:`mark` (a meta key on the segment's style), and is neither copied nor
highlighted; a blank at a line's end is not copied either (nor highlighted).

Positions are character offsets into a line's :func:`line_text`, the unit of Textual's
``Selection``. :func:`with_offsets` gives each segment the ``offset`` meta Textual's compositor
reads to map a mouse position back to such an offset (``Strip.apply_offsets`` does the same for
lines without decoration); a decoration cell maps to the text position after it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.color import Color
from textual.selection import Selection

from edgechat_tui.ui.markdown.style import Line

__all__ = [
    "CODE_LABEL",
    "CODE_TOP",
    "MARK",
    "PAD",
    "code_top_lines",
    "extract",
    "highlighted",
    "line_text",
    "mark",
    "mark_of",
    "selection_restyle",
    "with_offsets",
]

MARK = "edgechat"
"""The meta key the renderer sets on decoration segments."""
PAD = "pad"
"""The code panel's side padding."""
CODE_TOP = "code-top"
"""The first line of a code panel (blank, or with the language label)."""
CODE_LABEL = "code-label"
"""The language label at the right of a code panel's first line (a click copies the block)."""

_MARK_STYLES = {kind: RichStyle.from_meta({MARK: kind}) for kind in (PAD, CODE_TOP, CODE_LABEL)}


def mark(style: RichStyle | None, kind: str) -> RichStyle:
    """``style`` with the decoration mark ``kind`` added."""
    marker = _MARK_STYLES[kind]
    return style + marker if style is not None else marker


def mark_of(segment: Segment) -> str | None:
    """The decoration mark of ``segment``, or None for text."""
    style = segment.style
    if style is None or style._meta is None:
        return None
    return _style_mark(style)


@lru_cache(maxsize=4096)
def _style_mark(style: RichStyle) -> str | None:
    value = style.meta.get(MARK)  # (unpickled at each access: kept per style)
    return value if isinstance(value, str) else None


def line_text(line: Line) -> str:
    """The text of ``line`` as copied: its characters less decoration and trailing blanks."""
    return "".join(segment.text for segment in line if mark_of(segment) is None).rstrip()


def extract(texts: list[str], selection: Selection) -> str:
    """The part of ``texts`` (one string a line, as :func:`line_text` gives) under ``selection``.

    Textual's ``Selection.extract`` takes one string and splits it with ``splitlines``, which also
    splits at characters a line may hold (U+2028, form feeds...); this takes the lines as drawn.
    """
    if not texts:
        return ""
    start, end = selection
    first_y, first_x = (0, 0) if start is None else (start.y, start.x)
    last_y, last_x = (len(texts) - 1, len(texts[-1])) if end is None else (end.y, end.x)
    if last_y >= len(texts):
        last_y, last_x = len(texts) - 1, len(texts[-1])
    if first_y > last_y:
        return ""
    if first_y == last_y:
        return texts[first_y][first_x:last_x]
    return "\n".join([texts[first_y][first_x:], *texts[first_y + 1:last_y], texts[last_y][:last_x]])


def code_top_lines(lines: list[Line]) -> list[int]:
    """The indexes of the lines that begin a code panel, in order."""
    return [y for y, line in enumerate(lines)
            if any(mark_of(segment) in (CODE_TOP, CODE_LABEL) for segment in line)]


@lru_cache(maxsize=8192)
def _offset_style(style: RichStyle | None, x: int, y: int) -> RichStyle:
    """``style`` carrying the text offset ``(x, y)``: the same few hundred for every repaint of the
    lines on screen (a drag repaints them at each move), so they are kept."""
    meta = RichStyle.from_meta({"offset": (x, y)})
    return style + meta if style is not None else meta


def with_offsets(line: Line, y: int, fill: int = 0, fill_style: RichStyle | None = None) -> list[Segment]:
    """``line``'s segments, each carrying the text offset of its first character (as ``offset`` meta).

    A decoration segment before text is cut into single cells that all point at the next text
    position, so a click on the padding left of code starts a selection at the code's first
    character (one after all text points past its end, as a whole). ``fill``
    blank cells are added at the end (in ``fill_style``), pointing past the line's text.
    """
    out: list[Segment] = []
    append = out.append
    x = 0
    last_text: int | None = None  # found when the first decoration needs it (most lines have none)
    for index, segment in enumerate(line):
        text, style, _ = segment
        if not text:
            continue
        if style is not None and style._meta is not None and _style_mark(style) is not None:
            combined = _offset_style(style, x, y)
            if len(text) > 1:
                if last_text is None:
                    last_text = max((i for i, s in enumerate(line) if mark_of(s) is None), default=-1)
                if index < last_text:  # text follows: every cell points at it
                    out.extend(Segment(character, combined) for character in text)
                    continue
            append(Segment(text, combined))
            continue
        append(Segment(text, _offset_style(style, x, y)))
        x += len(text)
    if fill > 0:
        append(Segment(" " * fill, _offset_style(fill_style, x, y)))
    return out


def selection_restyle(
    background: Color, foreground: Color, under: Color
) -> Callable[[RichStyle | None], RichStyle]:
    """How a selected character is drawn: the selection's background laid over the character's own
    (or ``under``, the widget's, where it has none), in the selection's foreground unless that is
    transparent (the default themes' is: the text keeps its colour).

    Textual's own widgets blend the same way; a Rich style taken straight from ``screen--selection``
    would have a transparent foreground drawn as the background colour: invisible text.
    """
    cache: dict[RichStyle | None, RichStyle] = {}

    def restyle(style: RichStyle | None) -> RichStyle:
        found = cache.get(style)
        if found is None:
            own = style.bgcolor if style is not None else None
            base = Color.from_rich_color(own) if own is not None else under
            colours = RichStyle(bgcolor=(base + background).rich_color,
                                color=(base + foreground).rich_color if foreground.a > 0 else None)
            found = cache[style] = style + colours if style is not None else colours
        return found

    return restyle


def highlighted(line: Line, span: tuple[int, int], restyle: Callable[[RichStyle | None], RichStyle]) -> Line:
    """``line`` with the characters in ``span`` (text offsets; end -1: to the end) drawn selected:
    ``restyle`` gives the style a selected character takes instead of its own.

    Only what would be copied is highlighted: not decoration, not the blanks at the line's end.
    """
    start, end = span
    limit = len(line_text(line))
    end = limit if end < 0 else min(end, limit)
    if end <= start:
        return line
    out: Line = []
    x = 0
    for segment in line:
        text, style, _ = segment
        if mark_of(segment) is not None or not text:
            out.append(segment)
            continue
        seg_start, seg_end = x, x + len(text)
        x = seg_end
        if seg_end <= start or seg_start >= end:
            out.append(segment)
            continue
        cut_from = max(start, seg_start) - seg_start
        cut_to = min(end, seg_end) - seg_start
        chosen = restyle(style)
        if cut_from:
            out.append(Segment(text[:cut_from], style))
        out.append(Segment(text[cut_from:cut_to], chosen))
        if cut_to < len(text):
            out.append(Segment(text[cut_to:], style))
    return out
