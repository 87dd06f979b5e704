"""Server text made fit to show: tokens masked, escape sequences gone, one line, shortened.

The order matters and is fixed here, in one place: surrogate halves repaired, control sequences
removed, **every echo of a secret masked**, then white space collapsed and the text cut. Masking
before cutting means a token at the cut point is never left half visible; masking after removing
escape sequences means a token split by one is still found.

A secret is found whole, split by white space or line breaks (also written as the JSON escapes
``\\n``, ``\\t``), percent-encoded or JSON-escaped (``\\u0041``, ``\\/``) character by character,
and in fragments: any run of :data:`MIN_FRAGMENT` or more of its characters in a row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.http.unicode import fix_surrogates

MASK = "[redacted]"
#: A run of this many characters of a secret, in order, is masked wherever it appears.
MIN_FRAGMENT = 8

# One character of the text as a server may have written it: an escape, or the character itself.
_PIECE = re.compile(r"%[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}|\\[nrtbf]|\\.|.", re.DOTALL)
_JSON_SPACE = {"\\n", "\\r", "\\t", "\\b", "\\f"}


class Redactor:
    """Masks every echo of a set of secrets in text. Its repr shows how many, never which."""

    __slots__ = ("_grams", "_k", "_secrets")

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets = tuple(s for s in secrets if s)
        self._k = min([MIN_FRAGMENT, *(len(s) for s in self._secrets)]) if self._secrets else 0
        self._grams = frozenset(s[i:i + self._k] for s in self._secrets for i in range(len(s) - self._k + 1))

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def mask(self, text: str) -> str:
        """``text`` with every run of secret characters (whole or a long fragment) replaced by MASK."""
        if not self._secrets or not text:
            return text
        if not any(g in text for g in self._grams) and not _maybe_hidden(text):
            return text  # the common case: no fragment in plain view, and nothing escaped or spaced out
        chars: list[str] = []  # the text as the characters it stands for, white space left out
        spans: list[tuple[int, int]] = []  # where each came from in ``text``
        for match in _PIECE.finditer(text):
            piece = match.group()
            char = _decoded(piece)
            if char.isspace() or piece in _JSON_SPACE:
                continue
            chars.append(char)
            spans.append(match.span())
        k = self._k
        hidden = [False] * len(chars)
        for i in range(len(chars) - k + 1):
            if "".join(chars[i:i + k]) in self._grams:
                for j in range(i, i + k):
                    hidden[j] = True
        if not any(hidden):
            return text
        out: list[str] = []
        position = 0
        i = 0
        while i < len(chars):
            if not hidden[i]:
                i += 1
                continue
            start = spans[i][0]
            while i < len(chars) and hidden[i]:
                i += 1
            out += [text[position:start], MASK]
            position = spans[i - 1][1]
        out.append(text[position:])
        return "".join(out)


def _maybe_hidden(text: str) -> bool:
    return "%" in text or "\\" in text or any(ch.isspace() for ch in text)


def _decoded(piece: str) -> str:
    if len(piece) == 3 and piece[0] == "%":
        return chr(int(piece[1:], 16))
    if len(piece) == 6 and piece.startswith("\\u"):
        return chr(int(piece[2:], 16))
    if len(piece) == 2 and piece[0] == "\\":
        return piece[1]
    return piece


NO_SECRETS = Redactor()


def shown(text: object, limit: int, redactor: Redactor = NO_SECRETS) -> str:
    """Server text made safe to show in one line of at most ``limit`` characters."""
    # Only a bounded prefix is looked at (the rest can never be shown); masking still comes before
    # the cut to ``limit``, and a secret's fragment at this prefix's end is masked if long enough.
    clean = redactor.mask(sanitize(fix_surrogates(str(text)[: max(limit * 32, 16384)])))
    clean = " ".join(clean.split())
    return clean if len(clean) <= limit else clean[: limit - 1].rstrip() + "…"


__all__ = ["MASK", "MIN_FRAGMENT", "NO_SECRETS", "Redactor", "shown"]
