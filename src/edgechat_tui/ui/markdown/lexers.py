"""Pygments lexers for code blocks, loaded off the event loop.

Loading a lexer the first time is slow (Python's takes ~140 ms: an import and a few hundred regex
compilations), long enough to freeze typing if done while a reply streams. So the renderer only
uses lexers that are already loaded; a code block in a language not yet loaded is shown without
colours, the lexer is loaded in a thread, and the block is re-rendered when it is ready.
"""

from __future__ import annotations

import re
import threading

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

__all__ = ["COMMON_LANGUAGES", "TAB_SIZE", "cached", "is_loaded", "load", "normalise", "preload"]

TAB_SIZE = 4
# What models write most; loaded ahead by ``preload`` so the first reply with code is coloured
# at once. Each costs 5-150 ms the first time.
COMMON_LANGUAGES = (
    "python",
    "bash",
    "sh",
    "javascript",
    "typescript",
    "json",
    "rust",
    "go",
    "java",
    "c",
    "cpp",
    "sql",
    "yaml",
    "toml",
    "html",
)

_loaded: dict[str, Lexer | None] = {}
_lock = threading.Lock()
# A fence's info word is untrusted: only plausible language names are looked up, and only so many
# are remembered, so a reply cannot grow the cache or send threads after thousands of names.
_NAME = re.compile(r"[a-z0-9][a-z0-9+#._-]{0,31}")
_MAX_REMEMBERED = 256


def normalise(language: str) -> str:
    """The lookup key of a fence's info word: ``Python`` and ``python`` are the same lexer."""
    return language.strip().lower()


def is_loaded(language: str) -> bool:
    """True if ``load`` would return at once (the lexer is loaded, or known not to exist)."""
    key = normalise(language)
    return key in _loaded or not _worth_looking_up(key)


def _worth_looking_up(key: str) -> bool:
    return _NAME.fullmatch(key) is not None and (key in _loaded or len(_loaded) < _MAX_REMEMBERED)


def cached(language: str) -> Lexer | None:
    """The loaded lexer for ``language``, or None if not loaded (yet) or unknown."""
    return _loaded.get(normalise(language))


def load(language: str) -> Lexer | None:
    """Load (blocking; safe in a worker thread) and cache the lexer; None for unknown languages."""
    key = normalise(language)
    with _lock:  # checked under the lock: several threads may be loading at once
        if not _worth_looking_up(key):
            return None
        if key in _loaded:
            return _loaded[key]
        try:
            lexer: Lexer | None = get_lexer_by_name(key, stripnl=False, ensurenl=False, tabsize=TAB_SIZE)
        except ClassNotFound:
            lexer = None
        except Exception:  # a broken third-party lexer plugin must not break the reply
            lexer = None
        _loaded[key] = lexer
        return lexer


def preload(languages: tuple[str, ...] = COMMON_LANGUAGES) -> None:
    """Load several lexers (blocking: run it in a thread)."""
    for language in languages:
        load(language)
