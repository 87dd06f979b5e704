"""Making untrusted text (model replies, server errors) safe to show in a terminal.

ESC, the other C0 controls (except newline and tab), DEL and the C1 controls never reach the
terminal. Whole escape sequences (CSI, OSC, DCS, ...) are removed, not just their ESC, so a reply
carrying ``\\x1b]0;title\\x07`` shows nothing of it. :class:`StreamSanitizer` does the same for a
stream of chunks, holding back a sequence that a chunk boundary cut in two.

Nothing else disappears: an introducer that is never terminated (``ESC ]`` then ordinary text) is
not a sequence, so only its control characters go and the text after it stays. A string sequence
ends at a line break too: what follows a newline is text, and a held-back sequence longer than
``_MAX_PENDING`` is released as text rather than dropped.
"""

from __future__ import annotations

import re

# The longest body a sequence may have. Longer, it is not a sequence: its ESC goes and the rest is text.
# Both patterns share the bound, so the whole-text and the chunked paths agree on every input.
_MAX_PENDING = 4096
_B = f"{{0,{_MAX_PENDING}}}"
# An escape sequence, complete: CSI (ESC [ or C1 CSI) params + final byte; OSC/DCS/SOS/PM/APC strings
# ended by BEL or ST (a line break ends them as text); or a two-character escape.
_SEQUENCE = re.compile(
    rf"""
    (?:\x1b\[|\x9b)[\x30-\x3f]{_B}[\x20-\x2f]{_B}[\x40-\x7e]          # CSI
  | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]{_B}(?:\x07|\x1b\\|\x9c)  # OSC DCS SOS PM APC
  | \x1b(?:[\x20-\x2f]{{1,16}}[\x30-\x7e]|[\x30-\x4f\x51-\x57\x59\x5a\x5c\x60-\x7e])  # other ESC sequences
    """,
    re.VERBOSE,
)
# A sequence that has begun but not ended at the end of the text.
_UNFINISHED = re.compile(
    rf"""
    (?:\x1b\[|\x9b)[\x30-\x3f]{_B}[\x20-\x2f]{_B}\Z
  | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]{_B}\x1b?\Z
  | \x1b[\x20-\x2f]{{0,16}}\Z
    """,
    re.VERBOSE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def mend_surrogates(text: str) -> str:
    """``text`` as valid Unicode: a surrogate pair becomes its character, a lone half U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


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
        """Return the safe text of ``chunk``; an unfinished sequence at its end waits for the next.

        What is held back is the *unchanged* text from where the unfinished sequence begins: the
        sequences before it are removed in one pass, as :func:`sanitize` removes them, so that
        removing one never joins its neighbours into a new one (``\x9b`` + ``\x1b0`` + ``]``).
        """
        text = self._pending + chunk
        self._pending = ""
        if not _CONTROL.search(text):
            return text
        text = text.replace("\r\n", "\n")
        pieces: list[str] = []
        last = 0
        # The leftmost sequence that is still open at the end: nothing from it on is decided yet
        # (``\x1b]`` + ``\x9b]``: an OSC if its terminator comes, else a CSI inside it).
        tail = _UNFINISHED.search(text)
        hold = tail.start() if tail is not None else len(text)
        for match in _SEQUENCE.finditer(text):
            if match.start() >= hold:
                break
            pieces.append(text[last:match.start()])
            last = match.end()
            if last > hold:  # a whole sequence held what looked open: look again after it
                tail = _UNFINISHED.search(text, last)
                hold = tail.start() if tail is not None else len(text)
        end = max(hold, last)
        if end > last and text[end - 1] == "\r":  # may be the first half of CRLF
            end -= 1
        self._pending = text[end:]
        pieces.append(text[last:end])
        return _CONTROL.sub("", "".join(pieces))

    def flush(self) -> str:
        """The end of the stream: whatever was held back, sanitised as the whole text would be."""
        text, self._pending = self._pending, ""
        return sanitize(text)
