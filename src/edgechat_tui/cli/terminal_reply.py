"""A one-shot reply shown to a person: Markdown rendered at a terminal, block by block, as it streams.

When stdout is a terminal (and neither ``--raw`` nor ``--json`` is given), the reply is cut into
Markdown blocks as it arrives: a paragraph, a list or a table ends at a blank line, a code block at
its closing fence. The block still open is written as it comes, character by character, so the reply
feels as live as plain output. When a block closes, the raw text of it is erased (it is all on screen:
only the lines of that one block) and the block is written again rendered by Rich: headings, lists,
tables, code in colour. A block taller than the screen allows to erase stays as it streamed, plain:
what scrolled out of view cannot be taken back, and nothing is ever printed twice.

The text is sanitised before it gets here (``StreamSanitizer``); what Rich writes around it is its
own styling. Links are not made clickable (no OSC 8), as in the chat screen. Rich is imported in a
thread once the reply's first text has arrived (:func:`preload`), so neither start-up nor the first
byte waits for it, and the import runs while the model streams.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["BlockSplitter", "TerminalReply", "preload", "rows_of"]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
#: A line Markdown shows as it is written: words and plain punctuation, starting with a letter (no
#: list, heading, emphasis, code, link, table, entity or escape).
_PLAIN_LINE = re.compile(r"[^\W\d_][\w ,.;:!?'\"()/@%$]*")
_ERASE_LINE = "\x1b[2K"  # erase the cursor's row
_UP = "\x1b[A"  # the cursor one row up


def preload() -> threading.Thread:
    """Import Rich's Markdown in a thread, while the request is on its way."""

    def load() -> None:
        import importlib

        for name in ("rich.console", "rich.markdown", "rich.syntax"):
            importlib.import_module(name)

    thread = threading.Thread(target=load, name="edgechat-rich-preload", daemon=True)
    thread.start()
    return thread


class BlockSplitter:
    """Cuts streamed Markdown into closed blocks; :attr:`tail` is the block still open.

    A block ends at a blank line, except inside a fenced code block, which ends at its closing fence.
    A fence that opens right under a paragraph closes that paragraph first.
    """

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._partial = ""
        self._fence: str | None = None

    @property
    def tail(self) -> str:
        """The open block as it stands (its complete lines, then the line being written)."""
        if not self._lines:
            return self._partial
        return "\n".join(self._lines) + "\n" + self._partial

    def feed(self, text: str) -> list[str]:
        """Add ``text``; returns the blocks it closed, in order."""
        closed: list[str] = []
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        for line in complete:
            self._line(line, closed)
        return closed

    def finish(self) -> str | None:
        """The last block (the reply ended), or None when there is none."""
        if self._partial:
            self._lines.append(self._partial)
            self._partial = ""
        block = "\n".join(self._lines)
        self._lines, self._fence = [], None
        return block if block.strip() else None

    def _line(self, line: str, closed: list[str]) -> None:
        if self._fence is not None:
            self._lines.append(line)
            marker = line.strip()
            if marker and set(marker) == {self._fence[0]} and len(marker) >= len(self._fence):
                self._close(closed)
            return
        opening = _FENCE.match(line)
        if opening:
            if self._lines:
                self._close(closed)
            self._fence = opening.group(1)
            self._lines.append(line)
        elif not line.strip():
            if self._lines:
                self._close(closed)
        else:
            self._lines.append(line)

    def _close(self, closed: list[str]) -> None:
        closed.append("\n".join(self._lines))
        self._lines, self._fence = [], None


def cell_len(text: str) -> int:
    from rich.cells import cell_len as cells

    return cells(text)


def rows_of(text: str, width: int) -> int:
    """How many terminal rows ``text`` takes when written from the start of a row ``width`` wide."""
    width = max(width, 1)
    return sum(max(1, -(-cell_len(line) // width)) for line in text.split("\n"))


def _displayed(text: str) -> str:
    """Raw text as the live view writes it: a tab as four spaces, so its width is known."""
    return text.replace("\t", "    ")


def _render_block(block: str, width: int, color_system: str | None) -> str:
    """``block`` as Rich renders Markdown for a terminal ``width`` wide, with its styling."""
    import io

    from rich.console import Console
    from rich.markdown import Markdown

    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=color_system,  # type: ignore[arg-type]
                      markup=False, emoji=False, highlight=False, legacy_windows=False, soft_wrap=False)
    console.print(Markdown(block, hyperlinks=False))
    return _trim(out.getvalue(), code=bool(_FENCE.match(block)))


_SGR = re.compile(r"\x1b\[[0-9;]*m")


def _trim(rendered: str, *, code: bool) -> str:
    """Drop the blank lines Rich puts around a list or a table: blocks are spaced by one blank line.
    A code block keeps its padding rows (they carry its background)."""
    lines = rendered.split("\n")
    if lines and lines[-1] == "":
        lines.pop()

    def blank(line: str) -> bool:
        return not line if code else not _SGR.sub("", line).strip()

    while lines and blank(lines[0]):
        lines.pop(0)
    while lines and blank(lines[-1]):
        lines.pop()
    return "".join(line + "\n" for line in lines)


class TerminalReply:
    """Shows one reply on a terminal ``width`` x ``height``, written with ``write`` (sanitised text in).

    :meth:`feed` takes the reply's text as it arrives; :meth:`finish` renders what is left, whether
    the reply ended, was stopped or failed.
    """

    def __init__(self, write: Callable[[str], Any], *, width: int, height: int,
                 color_system: str | None = "auto",
                 render: Callable[[str, int, str | None], str] = _render_block) -> None:
        self._write = write
        self.width = max(width, 10)
        self.height = max(height, 3)
        self._color_system = color_system
        self._render = render
        self._splitter = BlockSplitter()
        self._shown = ""  # the open block's raw text, as it is on screen
        self._blocks = 0  # blocks begun (shown live or rendered)
        self._separated = False  # the blank line before the open block is written
        self._preload: threading.Thread | None = None
        #: How each block ended up: "rendered"; "as shown" (one line of words, which rendering
        #: would not change); or "plain" (too tall to take back).
        self.outcomes: list[str] = []

    def feed(self, text: str) -> None:
        closed = self._splitter.feed(text)
        for block in closed:
            self._close(block)
        tail = self._splitter.tail
        self._show(tail)
        if self._preload is None and (closed or len(tail) >= self.width or not _PLAIN_LINE.fullmatch(tail)):
            # Once text is on screen, not before, so the first byte does not wait for Rich, and
            # only once it will be needed (a reply of one line of words never needs it). The
            # import runs while the model streams.
            self._preload = preload()

    def finish(self) -> None:
        block = self._splitter.finish()
        if block is not None:
            self._close(block)
        elif self._shown:  # only blank text was open
            self._write("\n")
            self._shown = ""

    # --- on screen ----------------------------------------------------------------------------

    def _begin(self) -> None:
        if not self._separated:
            if self._blocks:
                self._write("\n")  # a blank line between blocks, as Markdown has
            self._blocks += 1
            self._separated = True

    def _show(self, tail: str) -> None:
        shown = _displayed(tail)
        if not shown or shown == self._shown or not shown.startswith(self._shown):
            return
        self._begin()
        self._write(shown[len(self._shown):])
        self._shown = shown

    def _close(self, block: str) -> None:
        self._begin()
        shown = self._shown
        erasable = rows_of(shown, self.width) <= self.height - 2
        if shown and not erasable:
            # Taller than the screen: the top has scrolled away. It stays as it streamed.
            whole = _displayed(block)
            rest = whole[len(shown):] if whole.startswith(shown) else ""
            self._write(rest if (shown + rest).endswith("\n") else rest + "\n")
            self.outcomes.append("plain")
        elif _PLAIN_LINE.fullmatch(block) and cell_len(block) < self.width and shown.rstrip("\n") == block:
            # One short line of words: rendered, it would look just as it does. It stays (and a
            # one-line reply costs no Rich at all).
            if not shown.endswith("\n"):
                self._write("\n")
            self.outcomes.append("as shown")
        else:
            if shown:
                # Row by row, from the cursor's up: erasing to the end of the screen from its top
                # row would make some terminals (tmux) keep the old screen in the scrollback.
                up = rows_of(shown, self.width) - 1
                self._write("\r" + _ERASE_LINE + (_UP + _ERASE_LINE) * up)
            self._write(self._render(block, self.width, self._color_system))
            self.outcomes.append("rendered")
        self._shown = ""
        self._separated = False
