"""The history file's format: encoding and decoding its lines. Pure: bytes in, messages out, no I/O.

The file starts with a header line naming the schema version and the user it belongs to, then holds
one line per turn (the user's message and the reply together)::

    {"edgechat": "history", "schema": 1, "user": "alice", "created": "2025-01-01T12:00:00.000Z"}
    {"messages":[{"role":"user","content":"hi","time":"..."},{"role":"assistant","content":"hello",...}]}

Whatever a stored line holds (written by an older version, by hand, by a broken decoder upstream), what
comes out of here is plain text: a lone surrogate (``"\\ud83d"`` in the JSON) becomes U+FFFD, so no
stored history can make a later print, export or save fail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgechat_tui.core.errors import NewerSchemaError, StorageError
from edgechat_tui.core.messages import Message, now_iso
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.storage.paths import HISTORY_SUFFIX

__all__ = [
    "HISTORY_SUFFIX",
    "SCHEMA_VERSION",
    "Decoder",
    "Scan",
    "check_header",
    "clean_message",
    "decode_record",
    "encode_header",
    "encode_line",
    "encode_turn",
    "lines",
    "parse_json_line",
    "scan_file",
    "scan_records",
]

#: The version of the file format this code writes and reads. A file with a higher one is left untouched.
SCHEMA_VERSION = 1

#: Reads one record line: the items it holds, or None when it is not a readable record.
Decoder = Callable[..., "list[Any] | None"]

_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON escape of a surrogate (\uD800-\uDFFF) is the only way one can reach decoded text, since the
# UTF-8 decoder refuses encoded surrogates. Lines without one (nearly all) skip the clean-up walk.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


# --- Encoding -------------------------------------------------------------------------------------


def encode_header(user: str, created: str | None = None, *, kind: str = "history", **extra: str) -> bytes:
    """The first line of a history file: format (``kind``), schema version, owner, creation time."""
    header: dict[str, Any] = {"edgechat": kind, "schema": SCHEMA_VERSION, "user": user,
                              "created": created or now_iso(), **extra}
    return (json.dumps(header, ensure_ascii=False) + "\n").encode("utf-8")


def encode_turn(user_message: Message, reply: Message) -> bytes:
    """One turn as one line: the unit that is either on disk whole or not at all."""
    return encode_line({"messages": [user_message.to_json(), reply.to_json()]})


def encode_line(record: dict[str, Any]) -> bytes:
    # json.dumps escapes newlines and control characters, so a record can never span two lines.
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate has no UTF-8 form; \u escapes keep the line valid (it reads back as U+FFFD).
        return (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


def _clean_text(text: str) -> str:
    """``text`` with surrogate pairs joined and lone surrogates replaced by U+FFFD."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean_message(message: Message) -> Message:
    """``message`` with every text field valid Unicode (the form a reader of its stored line gets)."""
    fields = {name: _clean_text(value) for name, value in
              (("content", message.content), ("time", message.time), ("model", message.model))
              if isinstance(value, str) and _SURROGATE.search(value)}
    if not fields:
        return message
    return Message(role=message.role, content=fields.get("content", message.content),
                   time=fields.get("time", message.time), model=fields.get("model", message.model),
                   usage=message.usage, stopped=message.stopped)


# --- Decoding -------------------------------------------------------------------------------------


def _cleaned(value: Any) -> Any:
    """A parsed JSON value with every string made valid Unicode."""
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, list):
        return [_cleaned(item) for item in value]
    if isinstance(value, dict):
        return {_cleaned(key): _cleaned(item) for key, item in value.items()}
    return value


def _may_hold_surrogates(data: bytes) -> bool:
    # A substring search first (fast), the exact pattern only where a \u escape is.
    return b"\\u" in data and _SURROGATE_ESCAPE.search(data) is not None


def parse_json_line(line: bytes) -> Any:
    data = json.loads(line.decode("utf-8"))
    return _cleaned(data) if _may_hold_surrogates(line) else data


def decode_record(line: bytes, *, clean: bool | None = None) -> list[Message] | None:
    """The messages of one turn line, or None when the line is not a readable turn.

    ``clean=False`` says the caller knows the line holds no surrogate escape (it searched a whole file).
    """
    try:
        data = json.loads(line.decode("utf-8"))
        if clean or (clean is None and _may_hold_surrogates(line)):
            data = _cleaned(data)
        if not isinstance(data, dict):
            return None
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            return None
        return [Message.from_json(m) for m in messages]
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


def check_header(line: bytes, user: str, path: Path, kind: str = "history") -> str | None:
    """None when ``line`` is a header this code may use for ``user``; else why it is not a header.

    Raises NewerSchemaError for a newer format and StorageError for a file that belongs to another user:
    both mean "do not touch this file", unlike a missing header, which is damage to recover from.
    """
    try:
        data = parse_json_line(line)
    except (ValueError, RecursionError):
        return "its first line is not an edgechat history header"
    if not isinstance(data, dict) or data.get("edgechat") != kind:
        return "its first line is not an edgechat history header"
    schema = data.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        return "its header has no valid schema version"
    if schema > SCHEMA_VERSION:
        raise NewerSchemaError(
            f"The history file {path} was written by a newer edgechat (format version {schema}; "
            f"this one reads version {SCHEMA_VERSION}). It was left untouched.",
            hint="upgrade edgechat to use this history",
        )
    owner = data.get("user")
    if not isinstance(owner, str):
        return "its header names no user"
    if owner != user:
        raise _foreign_file_error(path, user, owner)
    return None


def _foreign_file_error(path: Path, user: str, owner: str) -> StorageError:
    try:
        shown = repr(validate_user_id(owner))
    except Exception:
        shown = "another user"  # not a valid id: do not echo file content
    if owner.lower() == user.lower():
        return StorageError(
            f"The history file {path} belongs to user {shown}, not {user!r}: user ids that differ only in "
            "case share one file on this file system. It was left untouched.",
            hint=f"use the user id {shown}, or a user id that differs by more than case",
        )
    return StorageError(
        f"The history file {path} belongs to user {shown}, not {user!r}. It was left untouched.",
        hint="move the file away if it was copied there by mistake",
    )


# --- Scanning a file's bytes ----------------------------------------------------------------------


@dataclass
class Scan:
    """What reading (part of) a history file found."""

    messages: list[Any]  # what the records decode to: messages (a history), entries (a conversation)
    end: int  # offset just past the last readable record: where the next record belongs
    size: int  # the file's size when read; more than ``end`` when a torn last line follows
    damage: str | None = None  # why the file must be moved aside, None when it need not be


def lines(data: bytes, start: int = 0) -> Iterator[tuple[int, int, bool]]:
    """(start, stop, complete) of each line; stop excludes the newline; the last may lack one."""
    pos = start
    while pos < len(data):
        newline = data.find(b"\n", pos)
        if newline < 0:
            yield pos, len(data), False
            return
        yield pos, newline, True
        pos = newline + 1


def scan_records(data: bytes, base: int, start: int = 0, decode: Decoder | None = None) -> Scan:
    """Read turn lines from ``data[start:]`` (the bytes of the file from offset ``base``).

    Anything after the last readable record that is at most one line (a fragment without a newline,
    or one unreadable line) is a torn tail: what a write cut short leaves. Unreadable lines followed by
    readable ones, or several unreadable lines at the end, are damage.
    """
    decode = decode or decode_record
    messages: list[Any] = []
    end = start  # relative to data
    pending = 0  # unreadable lines (and fragments) since the last readable record
    damaged = 0
    # Without a backslash (memchr: fast) no line holds an escape; with one, each line is checked.
    clean = None if b"\\" in data else False
    for line_start, stop, complete in lines(data, start):
        line = data[line_start:stop]
        if complete and not line.strip():
            if pending == 0:
                end = stop + 1  # blank lines carry nothing; step over them
            continue
        turn = decode(line, clean=clean) if complete else None
        if turn is None:
            pending += 1
            continue
        damaged += pending
        pending = 0
        messages.extend(turn)
        end = stop + 1
    scan = Scan(messages, base + end, base + len(data))
    if pending > 1:
        damaged += pending
    if damaged:
        scan.damage = f"{damaged} of its lines cannot be read"
    return scan


def scan_file(data: bytes, user: str, path: Path, decode: Decoder | None = None,
              kind: str = "history") -> Scan:
    """Read a whole history file: its header, then its turns (``decode`` reads one record line)."""
    if not data:
        return Scan([], 0, 0)  # an empty file: no history yet (the header comes with the first turn)
    first = next(lines(data))
    if not first[2]:
        # Only a fragment: a header cut short. Nothing was ever saved after it, so it is a torn tail.
        return Scan([], 0, len(data))
    problem = check_header(data[: first[1]], user, path, kind)
    if problem is None:
        return scan_records(data, 0, first[1] + 1, decode)
    # No usable header: keep whatever turns can be read, and move the file aside.
    scan = scan_records(data, 0, 0, decode)
    scan.damage = problem
    return scan
