"""What the command line prints: every line made safe for a terminal, and a closed stdout ending quietly.

Text from a server or a stored file (replies, times, model names, paths, error texts) goes through
:func:`say`, which removes anything a terminal would act on. When the reader of stdout goes away
(``edgechat ... | head -1``), the rest of the output is dropped silently and the command carries on,
so a turn still completes and is saved.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.core.sanitize import mend_surrogates, sanitize

__all__ = ["Interrupted", "print_json", "report", "say", "stdout_closed", "warn"]

PROG = "edgechat"
_closed: set[int] = set()


def stdout_closed() -> bool:
    """True once a write to stdout found its reader gone."""
    return 1 in _closed


def _write(stream: TextIO | None, text: str, fd: int) -> None:
    if fd in _closed or stream is None:
        return
    try:
        stream.write(text)
        stream.flush()
    except (BrokenPipeError, ValueError, OSError):
        # The reader went away (or the stream was closed): say nothing more there, and keep the
        # interpreter's last flush at exit quiet.
        _closed.add(fd)
        try:
            devnull = open(os.devnull, "w")  # kept open for the rest of the process
        except OSError:
            return
        if fd == 1:
            sys.stdout = devnull
        else:
            sys.stderr = devnull


def say(text: str, *, err: bool = False, trusted: bool = False) -> None:
    """Write ``text`` to stdout (or stderr); ``trusted`` only for text already sanitised."""
    if not trusted:
        text = sanitize(text)
    text = mend_surrogates(text)
    if err:
        _write(sys.stderr, text, 2)
    else:
        _write(sys.stdout, text, 1)


def warn(message: str) -> None:
    say(f"{PROG}: warning: {message}\n", err=True)


_UNSAFE_IN_JSON = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}


def print_json(value: Any, *, indent: int | None = None) -> None:
    """JSON on stdout, non-ASCII text kept readable, and nothing a terminal would act on.

    json.dumps escapes the C0 controls but passes DEL and the C1 controls (U+009B is a CSI) as they
    are; they can only stand inside JSON strings, where the \\u escape means the same text. Lone
    surrogates (from a history written by hand) are escaped the same way rather than failing.
    """
    text = json.dumps(value, ensure_ascii=False, indent=indent).translate(_UNSAFE_IN_JSON)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    say(text + "\n", trusted=True)


def report(error: EdgechatError) -> int:
    text = error.message
    if error.hint:
        text += f"\n  hint: {sanitize(error.hint)}"
    say(f"{PROG}: error: {sanitize(text)}\n", err=True)
    return error.exit_code


class Interrupted(Exception):
    """The process was asked to end by ``signum``; what arrived of the reply was kept."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
