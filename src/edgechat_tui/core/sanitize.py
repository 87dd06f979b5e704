"""Making untrusted text (model replies, server errors) safe to show in a terminal.

ESC, the other C0 controls (except newline and tab), DEL and the C1 controls never reach the
terminal. Whole escape sequences (CSI, OSC, DCS, ...) are removed, not just their ESC, so a reply
carrying ``\\x1b]0;title\\x07`` shows nothing of it. :class:`StreamSanitizer` does the same for a
stream of chunks, holding back a sequence that a chunk boundary cut in two.
"""

from __future__ import annotations

import re

# An escape sequence, complete: CSI (ESC [ or C1 CSI) params + final byte; OSC/DCS/SOS/PM/APC strings
# ended by BEL or ST; or a two-character escape.
_SEQUENCE = re.compile(
    r"""
    (?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]          # CSI
  | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)  # OSC DCS SOS PM APC
  | \x1b(?:[\x20-\x2f]+[\x30-\x7e]|[\x30-\x4f\x51-\x57\x59\x5a\x5c\x60-\x7e])  # other ESC sequences
    """,
    re.VERBOSE,
)
# A sequence that has begun but not ended at the end of the text.
_UNFINISHED = re.compile(
    r"""
    (?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*\Z
  | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*\x1b?\Z
  | \x1b[\x20-\x2f]*\Z
    """,
    re.VERBOSE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# An unfinished string sequence longer than this is dropped rather than held back forever.
_MAX_PENDING = 4096


def sanitize(text: str) -> str:
    """Remove escape sequences and control characters (keeping newline and tab) from ``text``."""
    if not _CONTROL.search(text):
        return text
    text = text.replace("\r\n", "\n")
    return _CONTROL.sub("", _SEQUENCE.sub("", text))


class StreamSanitizer:
    """Sanitise text that arrives in chunks, where an escape sequence may straddle two chunks."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, chunk: str) -> str:
        """Return the safe text of ``chunk``; an unfinished sequence at its end waits for the next."""
        text = self._pending + chunk
        self._pending = ""
        if not _CONTROL.search(text):
            return text
        text = _SEQUENCE.sub("", text.replace("\r\n", "\n"))
        tail = _UNFINISHED.search(text)
        if tail is not None:
            if len(text) - tail.start() <= _MAX_PENDING:
                self._pending = text[tail.start():]
            text = text[: tail.start()]
        if text.endswith("\r"):  # may be the first half of CRLF
            self._pending = "\r" + self._pending
            text = text[:-1]
        return _CONTROL.sub("", text)

    def flush(self) -> str:
        """The end of the stream: whatever was held back, with its control characters removed."""
        text, self._pending = self._pending, ""
        return _CONTROL.sub("", _SEQUENCE.sub("", text))
