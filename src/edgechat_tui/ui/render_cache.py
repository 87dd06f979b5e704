"""The render cache: the newest replies as they were last drawn, for the next start's first frame.

Drawing a reply needs the Markdown renderer (markdown-it, Pygments, ``ui/markdown``: about a hundred
modules), and importing it was the largest part of the time to the conversation on screen. When the
app quits, the replies at the end of the conversation are drawn once more, at the pane's width and
one cell either side of it (with and without the scrollbar), and their lines are kept here; at the
next start the early view draws a reply from these lines when everything its look depends on is the
same (:class:`~edgechat_tui.ui.widgets.early_reply.EarlyReply` checks the rest), and the renderer
loads after the first frame.

What the cache may hold, and what it is checked against:

* only our own output for text of the history: each reply is found by its text (sanitised, as it is
  drawn), so a changed or another message is never drawn from it;
* the code that draws (our renderer's files, Textual, Rich, Pygments, markdown-it and the Python
  version, by file, size and time) must be the one that wrote it; the styles it was drawn in (the
  theme, the colour mode, the CSS) and the width are checked by the widget that draws it;
* no escape sequence or control character, no lone surrogate, no link, no meta but a cell's text
  offset and our decoration marks, and every line exactly as wide as the width it was drawn at: a
  file that holds anything else is not used at all;
* it is written whole or not at all (a temp file renamed), in the data directory, for the user
  alone (0600); a missing, damaged or foreign file only means the reply is rendered as before.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from edgechat_tui.core.sanitize import StreamSanitizer
from edgechat_tui.storage.fs import write_temp

__all__ = [
    "CACHE_VERSION",
    "DrawnReply",
    "cache_path",
    "code_key",
    "drawn_text",
    "encode_line",
    "load",
    "session_cache_path",
    "write",
]

CACHE_VERSION = 1
#: Larger files are not read (a cache of a screen's replies is a few tens of KB).
MAX_BYTES = 4 << 20
#: The meta a drawn cell may carry: its text offset (for selection) and our decoration marks
#: (``ui/markdown/selection.py``: ``MARK`` and its kinds; a test holds them equal).
MARK_KEY = "edgechat"
MARK_KINDS = frozenset({"pad", "code-top", "code-label"})
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_UI = Path(__file__).resolve().parent
#: Our files that decide how a reply is drawn.
_OUR_FILES = ("widgets/reply.py", "widgets/reply_css.py", "widgets/reply_style.py", "widgets/reply_render.py",
              "widgets/reply_background.py", "widgets/reply_select.py", "widgets/early_reply.py",
              "render_cache.py")
#: The libraries that do: a new version is a new file.
_LIBRARIES = ("textual", "rich", "pygments", "markdown_it", "linkify_it", "mdurl")


@dataclass(frozen=True)
class DrawnReply:
    """One reply as drawn: its (sanitised) text, the styles it was drawn in, its lines by width."""

    text: str
    styles: str
    lines: dict[int, list[Strip]]


def cache_path(data_dir: Path, user: str) -> Path:
    """Where ``user``'s render cache lives (in the data directory, beside nothing it could be taken for)."""
    return Path(data_dir) / ".cache" / f"drawn-{user}.json"


def session_cache_path(session: Any) -> Path | None:
    """The render cache of a session's profile (a remote agent's history is not drawn early)."""
    return None if session.remote else cache_path(session.settings.data_dir, session.user)


def drawn_text(text: str) -> str:
    """``text`` as a reply widget holds it (sanitised as the stream sanitiser does): the cache's key."""
    sanitizer = StreamSanitizer()
    return sanitizer.feed(text) + sanitizer.flush()


def code_key() -> str:
    """What identifies the code that draws a reply: our renderer's files and the libraries', by
    name, size and modification time (found without importing them), and the Python version."""
    parts = [sys.version]
    files = sorted((_UI / "markdown").glob("*.py")) + [_UI / name for name in _OUR_FILES]
    for library in _LIBRARIES:
        spec = find_spec(library)
        if spec is None or spec.origin is None:
            parts.append(f"{library}:-")
        else:
            files.append(Path(spec.origin))
    for file in files:
        try:
            info = os.stat(file)
        except OSError:
            parts.append(f"{file}:-")
            continue
        parts.append(f"{file}:{info.st_size}:{info.st_mtime_ns}")
    return "\n".join(parts)


# --- writing -------------------------------------------------------------------------------------


def encode_line(strip: Strip) -> list[list[Any]]:
    """A drawn line as JSON: ``[text, style, meta]`` per segment. ValueError for what the cache may
    not hold (a control segment, a link, a control character)."""
    out = []
    for segment in strip:
        text, style, control = segment
        if control or _CONTROL.search(text):
            raise ValueError("a control segment or character")
        if style is None:
            out.append([text, None, None])
            continue
        meta = style.meta or None
        if style.link or (meta is not None and not set(meta) <= {"offset", MARK_KEY}):
            raise ValueError("a link or meta the cache does not keep")
        plain = style.clear_meta_and_links()
        out.append([text, str(plain) if plain else None, meta])
    return out


def write(path: Path, replies: list[dict[str, Any]]) -> None:
    """Replace the cache at ``path`` with ``replies`` (``text``, ``styles``, ``lines`` by width, as
    :func:`encode_line` gives them). Raises OSError; the old file stays if the new one is not whole."""
    data = json.dumps({"version": CACHE_VERSION, "code": code_key(), "replies": replies},
                      ensure_ascii=True, separators=(",", ":")).encode()
    path.parent.mkdir(mode=0o700, exist_ok=True)
    temp = write_temp(path, data, mode=0o600)
    try:
        os.replace(temp, path)
    except OSError:
        temp.unlink(missing_ok=True)
        raise


# --- reading -------------------------------------------------------------------------------------


def load(path: Path) -> dict[str, DrawnReply]:
    """The replies cached at ``path``, by text; empty if there is none, it is damaged, holds anything
    it may not, or another version of the code wrote it."""
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            return {}
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return {}
        if data.get("code") != code_key():
            return {}
        found = {}
        for reply in data["replies"]:
            drawn = _decode_reply(reply)
            found[drawn.text] = drawn
        return found
    except Exception:  # anything amiss in a cache (a style rich cannot parse…): not used
        return {}


def _decode_reply(reply: dict[str, Any]) -> DrawnReply:
    text, styles, lines = reply["text"], reply["styles"], reply["lines"]
    if not isinstance(text, str) or not isinstance(styles, str) or not isinstance(lines, dict):
        raise ValueError("not a reply")
    decoded = {}
    for width, drawn in lines.items():
        strips = [_decode_line(line) for line in drawn]
        if any(strip.cell_length != int(width) for strip in strips):
            raise ValueError("a line of another width")  # each line fills the width it was drawn at
        decoded[int(width)] = strips
    return DrawnReply(text, styles, decoded)


def _decode_line(line: list[list[Any]]) -> Strip:
    segments = []
    for text, style, meta in line:
        if not isinstance(text, str) or _CONTROL.search(text):
            raise ValueError("a control character")
        text.encode("utf-8")  # UnicodeEncodeError (a ValueError) for a lone surrogate
        segments.append(Segment(text, _decode_style(style, meta)))
    return Strip(segments)


def _decode_style(style: str | None, meta: dict[str, Any] | None) -> Style | None:
    if style is not None and (not isinstance(style, str) or "link" in style.split()):
        raise ValueError("a link")
    parsed = Style.parse(style) if style is not None else None
    if meta is None:
        return parsed
    if not isinstance(meta, dict) or not set(meta) <= {"offset", MARK_KEY}:
        raise ValueError("unknown meta")
    checked: dict[str, Any] = {}
    for key, value in meta.items():  # in the order written: the style's identity depends on it
        if key == "offset":
            if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)):
                raise ValueError("a bad offset")
            checked[key] = (value[0], value[1])
        elif value in MARK_KINDS:
            checked[key] = value
        else:
            raise ValueError("an unknown mark")
    with_meta = Style.from_meta(checked)
    return parsed + with_meta if parsed is not None else with_meta
