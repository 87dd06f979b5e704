"""A small terminal emulator for tests: what a screen (and its scrollback) shows after some bytes.

It knows what the one-shot's Markdown view writes and what a terminal does with it: printable text
with auto-wrap at the right margin (the pending-wrap rule included), CR, LF (scrolling at the bottom
into the scrollback), cursor up (``CSI n A``), erase in line (``CSI 2K``) and SGR colours (dropped:
only the text is compared). Any other control sequence is an error, so a test notices a sequence
nobody expected.
"""

from __future__ import annotations

import re

from rich.cells import cell_len

__all__ = ["Screen"]

_CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


class Screen:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.rows: list[list[str]] = [[] for _ in range(height)]
        self.scrollback: list[str] = []
        self.x = self.y = 0
        self._pending_wrap = False

    def feed(self, data: str) -> None:
        pos = 0
        while pos < len(data):
            char = data[pos]
            if char == "\x1b":
                match = _CSI.match(data, pos)
                if match is None:
                    raise AssertionError(f"unexpected escape at {pos}: {data[pos:pos + 12]!r}")
                self._csi(match.group(1), match.group(2))
                pos = match.end()
                continue
            if char == "\r":
                self.x, self._pending_wrap = 0, False
            elif char == "\n":
                self._pending_wrap = False
                self._line_feed()
            elif ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0:
                raise AssertionError(f"unexpected control {char!r} at {pos}")
            else:
                self._put(char)
            pos += 1

    def _csi(self, params: str, final: str) -> None:
        if final == "m":
            return
        if final == "A":
            self.y = max(0, self.y - int(params or 1))
            self._pending_wrap = False
        elif final == "K" and params == "2":
            self.rows[self.y] = []
        else:
            raise AssertionError(f"unexpected sequence CSI {params}{final}")

    def _line_feed(self) -> None:
        if self.y == self.height - 1:
            self.scrollback.append(self._text(self.rows.pop(0)))
            self.rows.append([])
        else:
            self.y += 1

    def _put(self, char: str) -> None:
        width = cell_len(char)
        if self._pending_wrap or self.x + width > self.width:
            self.x, self._pending_wrap = 0, False
            self._line_feed()
        row = self.rows[self.y]
        while len(row) < self.x:
            row.append(" ")
        cells = [char] + [""] * (width - 1)
        row[self.x:self.x + width] = cells
        self.x += width
        if self.x >= self.width:
            self.x, self._pending_wrap = self.width - 1, True

    @staticmethod
    def _text(row: list[str]) -> str:
        return "".join(row).rstrip()

    @property
    def lines(self) -> list[str]:
        """Everything written, scrollback then screen, trailing blank rows dropped."""
        lines = self.scrollback + [self._text(row) for row in self.rows]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    @property
    def lines_above_cursor(self) -> list[str]:
        """Scrollback, then the rows above the cursor's (what text ending in a newline wrote)."""
        return self.scrollback + [self._text(row) for row in self.rows[:self.y]]
