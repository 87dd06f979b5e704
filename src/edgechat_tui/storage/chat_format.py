"""A conversation file's records: ids, titles, and the lines that make a tree of messages. Pure, no I/O.

A conversation file is a history file (``format.py``: header, one JSON line per record, append-only)
whose header says ``"edgechat": "conversation"`` and names the conversation's ``chat`` id. Its records::

    {"messages":[{...message, "id":"…", "parent":null}, {...reply, "id":"…", "parent":"…"}], "meta":{…}?}
    {"append":{"id":"…", "content":" more", "time":"…", "stopped":true?, "truncated":true?, "usage":{…}?}}
    {"switch":{"leaf":"…"}}
    {"meta":{"title":"…", "titleSource":"user"|"model"|"words"}}
    {"meta":{"archived": bool}}   {"meta":{"deleted": time|null}}

- ``messages``: one turn (a question and its reply: chat, edit) or one reply (regenerate). Each message
  is ``Message.to_json()`` plus its ``id``, its ``parent`` (the message it follows, null for a first
  one) and, for a reply that reached ``max_tokens``, ``truncated: true``. The record makes its last
  message the current leaf. It may carry the first-words title of a first exchange (``meta``).
- ``append``: ``continue``: text added to an existing reply, which keeps its id.
- ``switch``: the current branch now ends at ``leaf``.
- ``meta``: the title (and who made it), archived or not, when it went to the trash.
"""

from __future__ import annotations

import os
import re
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from edgechat_tui.core.messages import Message, Usage
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.storage.format import encode_header, encode_line, parse_json_line
from edgechat_tui.storage.paths import CHAT_ID, LIBRARY_SUFFIX

__all__ = [
    "CHAT_ID",
    "CHAT_KIND",
    "LIBRARY_SUFFIX",
    "MAX_TITLE_CHARS",
    "AppendEntry",
    "Entry",
    "MessageEntry",
    "MetaEntry",
    "SwitchEntry",
    "chat_header",
    "clean_title",
    "decode_chat_record",
    "encode_append",
    "encode_messages",
    "encode_meta",
    "encode_switch",
    "id_time_ms",
    "new_chat_id",
    "new_message_id",
    "title_from_model",
    "title_from_words",
]

CHAT_KIND = "conversation"
#: Crockford's base32, lower case (no i, l, o, u): sorts as the numbers it encodes.
_BASE32 = "0123456789abcdefghjkmnpqrstvwxyz"
_MESSAGE_ID = re.compile(r"[0-9a-hjkmnp-tv-z]{1,32}")
MAX_TITLE_CHARS = 80
_TITLE_SOURCES = ("user", "model", "words")


def _base32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_BASE32[value % 32])
        value //= 32
    return "".join(reversed(out))


def _random_bits(count: int) -> int:
    """``count`` random bits from the system's source (what ``secrets.randbits`` gives; ``secrets``
    itself loads ``hmac`` and OpenSSL, which the chat screen's first frame does not need)."""
    return int.from_bytes(os.urandom((count + 7) // 8), "big") >> (-count % 8)


def new_chat_id(ms: int | None = None, random_bits: int | None = None) -> str:
    """14 characters: the creation time in ms (10), then 20 random bits (4)."""
    ms = int(time.time() * 1000) if ms is None else ms
    bits = _random_bits(20) if random_bits is None else random_bits % (1 << 20)
    return _base32(max(0, ms), 10) + _base32(bits, 4)


def new_message_id(ms: int | None = None) -> str:
    """16 characters: the time in ms (10), then 30 random bits (6): unique within a profile, sortable."""
    ms = int(time.time() * 1000) if ms is None else ms
    return _base32(max(0, ms), 10) + _base32(_random_bits(30), 6)


def id_time_ms(chat_id: str) -> int:
    """The creation time (ms) a conversation id carries."""
    n = 0
    for ch in chat_id[:10]:
        n = n * 32 + _BASE32.index(ch)
    return n


# --- titles ---------------------------------------------------------------------------------------

_UNPRINTABLE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs"}


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space >= limit / 2:
        head = head[:space]
    return head.rstrip() + "…"


def clean_title(raw: str, limit: int = MAX_TITLE_CHARS) -> str:
    """One line of printable text, at most ``limit`` characters (cut at a word, with …); may be empty.
    Escape sequences go whole (as the pane drops them), then every other unprintable character."""
    text = unicodedata.normalize("NFC", sanitize(raw))
    text = "".join(" " if unicodedata.category(ch) in _UNPRINTABLE_CATEGORIES else ch for ch in text)
    return _cut(" ".join(text.split()), limit)


def title_from_words(message: str, words: int = 8) -> str:
    """The first words of the first message, as a title (used at once, and when titles are off)."""
    flat = clean_title(message, 1000)
    head = " ".join(flat.split(" ")[:words])
    return _cut(f"{head}…" if len(head) < len(flat) else head, 60)


_LABEL = re.compile(r"^(?:\*\*)?title(?:\*\*)?\s*[:：]\s*", re.IGNORECASE)
_QUOTES_START = re.compile(r"^[\"'“”«»*`]+")
_QUOTES_END = re.compile(r"[\"'“”«»*`.]+$")


def title_from_model(reply: str) -> str:
    """What a title model said, made a title: its first non-empty line, without a label or quotes."""
    line = next((part.strip() for part in reply.replace("\r", "").split("\n") if part.strip()), "")
    return clean_title(_QUOTES_END.sub("", _QUOTES_START.sub("", _LABEL.sub("", line))))


# --- records --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageEntry:
    id: str
    parent: str | None
    message: Message
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class AppendEntry:
    id: str
    content: str
    time: str
    stopped: bool = False
    truncated: bool = False
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class SwitchEntry:
    leaf: str


@dataclass(frozen=True, slots=True)
class MetaEntry:
    fields: dict[str, Any] = field(default_factory=dict)


Entry = MessageEntry | AppendEntry | SwitchEntry | MetaEntry


def chat_header(user: str, chat_id: str, created: str | None = None, **extra: str) -> bytes:
    return encode_header(user, created, kind=CHAT_KIND, chat=chat_id, **extra)


def _message_json(entry: MessageEntry) -> dict[str, Any]:
    data = entry.message.to_json()
    data["id"] = entry.id
    data["parent"] = entry.parent
    if entry.truncated:
        data["truncated"] = True
    return data


def encode_messages(entries: list[MessageEntry], meta: dict[str, Any] | None = None) -> bytes:
    record: dict[str, Any] = {"messages": [_message_json(e) for e in entries]}
    if meta:
        record["meta"] = meta
    return encode_line(record)


def encode_append(entry: AppendEntry) -> bytes:
    data: dict[str, Any] = {"id": entry.id, "content": entry.content, "time": entry.time}
    if entry.stopped:
        data["stopped"] = True
    if entry.truncated:
        data["truncated"] = True
    if entry.usage is not None:
        data["usage"] = entry.usage.to_json()
    return encode_line({"append": data})


def encode_switch(leaf: str) -> bytes:
    return encode_line({"switch": {"leaf": leaf}})


def encode_meta(fields: dict[str, Any]) -> bytes:
    return encode_line({"meta": fields})


def _id(value: Any) -> str:
    if not isinstance(value, str) or not _MESSAGE_ID.fullmatch(value):
        raise ValueError("not a message id")
    return value


def _meta(value: Any) -> dict[str, Any]:
    """The meta fields this version understands, each of the right type; others are dropped."""
    if not isinstance(value, dict):
        raise ValueError("meta must be an object")
    fields: dict[str, Any] = {}
    title, source = value.get("title"), value.get("titleSource")
    if isinstance(title, str) and source in _TITLE_SOURCES:
        fields["title"], fields["titleSource"] = clean_title(title), source
    if isinstance(value.get("archived"), bool):
        fields["archived"] = value["archived"]
    if "deleted" in value and (value["deleted"] is None or isinstance(value["deleted"], str)):
        fields["deleted"] = value["deleted"]
    return fields


def decode_chat_record(line: bytes, *, clean: bool | None = None) -> list[Entry] | None:
    """The entries of one record line, or None when the line is not a readable record."""
    del clean  # parse_json_line looks for surrogate escapes itself
    try:
        data = parse_json_line(line)
        if not isinstance(data, dict):
            return None
        if "messages" in data:
            raw = data["messages"]
            if not isinstance(raw, list) or not 1 <= len(raw) <= 2:
                return None
            entries: list[Entry] = []
            for item in raw:
                if not isinstance(item, dict):
                    return None
                parent = item.get("parent")
                if parent is not None:
                    parent = _id(parent)
                entries.append(MessageEntry(_id(item.get("id")), parent, Message.from_json(item),
                                            item.get("truncated") is True))
            if "meta" in data:
                entries.append(MetaEntry(_meta(data["meta"])))
            return entries
        if "append" in data:
            raw = data["append"]
            if not isinstance(raw, dict) or not isinstance(raw.get("content"), str):
                return None
            when = raw.get("time")
            return [AppendEntry(_id(raw.get("id")), raw["content"], when if isinstance(when, str) else "",
                                raw.get("stopped") is True, raw.get("truncated") is True,
                                Usage.from_json(raw.get("usage")))]
        if "switch" in data:
            raw = data["switch"]
            return [SwitchEntry(_id(raw.get("leaf") if isinstance(raw, dict) else None))]
        if "meta" in data:
            return [MetaEntry(_meta(data["meta"]))]
        return None
    except (ValueError, RecursionError):
        return None
