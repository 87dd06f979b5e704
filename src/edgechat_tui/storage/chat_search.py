"""Search's pure parts: a query's words, the FTS5 query made of them, and a snippet with highlights.

As ``docs/protocol.md`` (``search``) says for the Worker: the words (letters and digits) of a query are
its terms, every one required, each matching words that start with it, case and accents folded; nothing
else in the query has a meaning. A snippet is one line of plain text around the first match.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

__all__ = ["fold", "fts_query", "make_snippet", "query_terms"]

_WORD = re.compile(r"[^\W_]+")
_MAX_TERMS = 16


def fold(text: str) -> str:
    """Lower case without accents (as FTS5's ``unicode61 remove_diacritics 2`` folds)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def query_terms(query: str) -> list[str]:
    """The folded words of ``query``, each once, at most 16."""
    terms: list[str] = []
    for match in _WORD.finditer(unicodedata.normalize("NFC", query)):
        term = fold(match.group())
        if term and term not in terms:
            terms.append(term)
        if len(terms) >= _MAX_TERMS:
            break
    return terms


def fts_query(terms: list[str]) -> str:
    """Every term as a quoted prefix: quoting makes any text a literal, so no FTS5 syntax gets through."""
    return " ".join('"' + term.replace('"', '""') + '"*' for term in terms)


_BLANKED = ("Cc", "Cf", "Zl", "Zp")
_ASCII_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")


def _fold_word(word: str) -> str:
    return word.lower() if word.isascii() else fold(word)


def _one_line(text: str) -> str:
    """Control and format characters made spaces, one for one (offsets do not move)."""
    if text.isascii():
        return _ASCII_CONTROLS.sub(" ", text)
    return "".join(" " if unicodedata.category(ch) in _BLANKED else ch for ch in text)


Matcher = Callable[[re.Match[str]], bool]


def _word_matcher(text: str, terms: list[str], *, quick: bool = True) -> tuple[Matcher, int | None]:
    """Whether a word of ``text`` (a match of ``_WORD``) starts with one of ``terms`` once folded, and
    where the first such word starts (None: nowhere)."""
    if quick and text.isascii():
        # Every word is ASCII letters and digits, folded by lower(), which keeps every offset: a regex
        # of the terms on the lower-cased text answers both (a term holding anything else cannot start
        # such a word). Fifty snippets take a third of the time of folding each word.
        usable = sorted({term for term in terms if term.isascii() and term.isalnum()})
        if not usable:
            return (lambda _word: False), None
        lowered = text.lower()
        either = "|".join(map(re.escape, usable))
        starts = re.compile(either).match
        first = re.compile(f"(?<![a-z0-9])(?:{either})").search(lowered)
        return (lambda word: starts(lowered, word.start()) is not None), (first.start() if first else None)

    def matches(word: re.Match[str]) -> bool:
        folded = _fold_word(word.group())
        return any(folded.startswith(term) for term in terms)

    return matches, next((m.start() for m in _WORD.finditer(text) if matches(m)), None)


def make_snippet(content: str, terms: list[str], width: int = 160, *,
                 quick: bool = True) -> tuple[str, list[tuple[int, int]]]:
    """About ``width`` characters of ``content`` around its first matching word, and the
    ``[start, end)`` offsets of the matched words in it. Control and format characters become spaces.
    (``quick=False``: every word folded one by one, the reference the quick way is tested against.)"""
    text = content if unicodedata.is_normalized("NFC", content) else unicodedata.normalize("NFC", content)
    matches, first = _word_matcher(text, terms, quick=quick)
    start = 0
    if first is not None and first > width // 3:
        start = first - width // 3
        # Open on a whole word when one starts close by.
        for m in _WORD.finditer(text, start, start + 21):
            if m.start() == start and start > 0 and _WORD.match(text[start - 1]):
                continue  # the rest of a word that began before the window
            start = m.start()
            break
    end = min(len(text), start + width)
    lead = "…" if start > 0 else ""
    tail = "…" if end < len(text) else ""
    offset = len(lead) - start
    highlights = []
    for m in _WORD.finditer(text, start):
        if m.start() >= end:
            break
        if m.end() <= end and not (m.start() == start and start > 0 and _WORD.match(text[start - 1])) \
                and matches(m):
            highlights.append((m.start() + offset, m.end() + offset))
    return lead + _one_line(text[start:end]) + tail, highlights
