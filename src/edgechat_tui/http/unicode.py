"""Surrogate halves in server text: joined when they pair up, U+FFFD when they do not.

JSON may write a character outside the BMP as two escapes (``"\\ud83d\\ude00"``), and a stream
may split the pair over two events. A lone half cannot be encoded as UTF-8: left in a reply it
would crash the terminal output and the history file. So every piece of server text passes here.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def fix_surrogates(text: str) -> str:
    """``text`` with surrogate pairs joined into their character and lone halves made U+FFFD."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _is_high(char: str) -> bool:
    return "\ud800" <= char <= "\udbff"


class SurrogateJoiner:
    """Repairs a text that arrives in pieces: a high half at the end of one piece waits for the next."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, piece: str) -> str:
        """The safe text of ``piece``; a trailing high half is held back (it may pair with what comes)."""
        if not self._pending and not _SURROGATE.search(piece):
            return piece  # the common case, once per piece of a reply: kept cheap
        text = self._pending + piece
        self._pending = ""
        if text and _is_high(text[-1]):
            text, self._pending = text[:-1], text[-1]
        return fix_surrogates(text)

    def flush(self) -> str:
        """The end of the text: a half still held back becomes U+FFFD."""
        pending, self._pending = self._pending, ""
        return "\ufffd" if pending else ""


__all__ = ["SurrogateJoiner", "fix_surrogates"]
