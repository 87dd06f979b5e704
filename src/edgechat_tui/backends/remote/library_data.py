"""The conversation library's answers from an agent, read as untrusted data (docs/protocol.md,
``conversations`` and ``search``).

Every field is checked for its type and bounded before it becomes a
:class:`~edgechat_tui.core.conversations.ConversationSummary`, a
:class:`~edgechat_tui.core.conversations.SearchHit` or a
:class:`~edgechat_tui.core.conversations.BranchMessage`: ids must be well formed (a conversation id is
14 characters of lower-case Crockford base32, a message id a positive whole number, given as text),
titles and snippets are made safe to show (escape sequences and control characters gone, one line,
secrets masked) and cut, times must read as ISO 8601. One entry that fails is left out of a list
rather than hiding the rest; a single answer that fails is a ProtocolError.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from typing import Any

from edgechat_tui.core.conversations import BranchMessage, ConversationSummary, SearchHit
from edgechat_tui.core.errors import ConversationNotFound, MessageNotFound, ProtocolError
from edgechat_tui.core.messages import Message
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.http.text import NO_SECRETS, Redactor, shown
from edgechat_tui.http.unicode import fix_surrogates

#: A conversation id: ten characters of the creation time, four random, in lower-case Crockford base32.
CONVERSATION_ID = re.compile(r"[0-9a-hjkmnp-tv-z]{14}")
#: The longest title kept (the protocol's own bound).
MAX_TITLE_CHARS = 80
#: The longest snippet kept (the protocol says about 160; a little room for a server's own idea).
MAX_SNIPPET_CHARS = 400
#: At most this many highlight ranges of a snippet are kept.
MAX_HIGHLIGHTS = 64
#: At most this many sibling ids of one message are kept (a message regenerated that often is rare).
MAX_SIBLINGS = 10_000
#: The largest message id taken (JavaScript's largest safe integer: the Worker's ids are below it).
MAX_MESSAGE_ID = 2**53 - 1
_MAX_TIME_CHARS = 40
_SPACES = re.compile(r"[\n\t\r\x0b\x0c\u2028\u2029\x85]")


def check_chat_id(chat_id: object) -> str:
    """``chat_id`` when it is a well-formed conversation id; ConversationNotFound (nothing sent) otherwise."""
    if isinstance(chat_id, str) and CONVERSATION_ID.fullmatch(chat_id):
        return chat_id
    shown_id = shown(chat_id, 40) if isinstance(chat_id, str) else type(chat_id).__name__
    raise ConversationNotFound(f"{shown_id!r} is not a conversation id.",
                               hint="an id is 14 characters of 0-9 and a-z; edgechat chats lists them")


def message_number(message_id: object) -> int:
    """The agent's integer for message id ``message_id`` (text of a positive whole number)."""
    if isinstance(message_id, str) and message_id.isascii() and message_id.isdigit() \
            and not message_id.startswith("0") and int(message_id) <= MAX_MESSAGE_ID:
        return int(message_id)
    shown_id = shown(message_id, 40) if isinstance(message_id, str) else type(message_id).__name__
    raise MessageNotFound(f"{shown_id!r} is not a message id of this agent.",
                          hint="message ids come from the conversation's history")


def wire_message_id(value: object) -> str | None:
    """A message id as the agent sent it (a positive integer), as text; None when malformed."""
    if type(value) is int and 1 <= value <= MAX_MESSAGE_ID:
        return str(value)
    return None


def wire_chat_id(value: object) -> str | None:
    """A conversation id as the agent sent it; None when malformed."""
    return value if isinstance(value, str) and CONVERSATION_ID.fullmatch(value) else None


def clean_title(value: object, redactor: Redactor = NO_SECRETS) -> str:
    """A title fit to show: one line, nothing a terminal acts on, at most MAX_TITLE_CHARS; "" for none
    (a conversation not titled yet: the UI shows its own placeholder)."""
    if not isinstance(value, str):
        return ""
    return shown(value, MAX_TITLE_CHARS, redactor)


def clean_time(value: object) -> str:
    """An ISO 8601 time as sent, when it reads as one; "" (unknown) otherwise."""
    if not isinstance(value, str) or len(value) > _MAX_TIME_CHARS or not value.isascii():
        return ""
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return ""
    return value


def decode_summary(data: object, redactor: Redactor = NO_SECRETS) -> ConversationSummary | None:
    """A conversation of the agent's answer; None when its id or its count is malformed."""
    if not isinstance(data, dict):
        return None
    chat_id = wire_chat_id(data.get("id"))
    count = data.get("messageCount")
    if chat_id is None or type(count) is not int or count < 0:
        return None
    deleted_at = clean_time(data.get("deletedAt")) or None
    return ConversationSummary(
        id=chat_id,
        title=clean_title(data.get("title"), redactor),
        message_count=count,
        created=clean_time(data.get("created")),
        updated=clean_time(data.get("updated")),
        archived=data.get("archived") is True,
        deleted_at=deleted_at,
        purge_at=(clean_time(data.get("purgeAt")) or None) if deleted_at else None,
    )


def one_summary(data: dict[str, Any] | None, what: str,
                redactor: Redactor = NO_SECRETS) -> ConversationSummary:
    """The ``conversation`` of an answer about one; a ProtocolError when there is none to read."""
    summary = decode_summary(data.get("conversation") if data is not None else None, redactor)
    if summary is None:
        raise ProtocolError(f"The agent's answer to {what} has no conversation that edgechat can read.")
    return summary


def decode_summaries(data: dict[str, Any] | None,
                     redactor: Redactor = NO_SECRETS) -> list[ConversationSummary]:
    """The list of a ``GET /api/conversations`` answer, as sent (newest first), malformed entries out."""
    items = data.get("conversations") if data is not None else None
    if not isinstance(items, list):
        raise ProtocolError("The agent's list of conversations cannot be read: it has no \"conversations\".")
    found = (decode_summary(item, redactor) for item in items)
    seen: set[str] = set()
    summaries = []
    for summary in found:
        if summary is not None and summary.id not in seen:  # an id listed twice is shown once
            seen.add(summary.id)
            summaries.append(summary)
    return summaries


def clean_snippet(snippet: str, highlights: object) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A snippet fit to show, one line, with its highlight ranges moved to match what was removed.

    The snippet is cleaned piece by piece between the range boundaries, so a range keeps marking the
    same words whatever escape sequences a server put around them; ranges that are not pairs of whole
    numbers inside the snippet, or that overlap an earlier one, are dropped.
    """
    text = fix_surrogates(snippet[: MAX_SNIPPET_CHARS * 8])
    ranges: list[tuple[int, int]] = []
    if isinstance(highlights, list):
        for pair in highlights[:MAX_HIGHLIGHTS * 4]:
            if not (isinstance(pair, list) and len(pair) == 2 and all(type(n) is int for n in pair)):
                continue
            start, end = pair
            if 0 <= start < end <= len(text) and (not ranges or start >= ranges[-1][1]):
                ranges.append((start, end))
    cuts = sorted({0, len(text), *(n for r in ranges for n in r)})
    pieces: dict[int, tuple[int, int]] = {}  # a cut's offset in the text -> its offset once cleaned
    out: list[str] = []
    length = 0
    for begin, finish in itertools.pairwise(cuts):
        pieces[begin] = (length, length)
        piece = _SPACES.sub(" ", sanitize(_SPACES.sub(" ", text[begin:finish])))
        out.append(piece)
        length += len(piece)
    pieces[len(text)] = (length, length)
    clean = "".join(out)
    moved = []
    for start, end in ranges:
        a, b = pieces[start][0], pieces[end][0]
        if a < b <= MAX_SNIPPET_CHARS and len(moved) < MAX_HIGHLIGHTS:
            moved.append((a, b))
    if len(clean) > MAX_SNIPPET_CHARS:
        clean = clean[: MAX_SNIPPET_CHARS - 1] + "…"
        moved = [(a, b) for a, b in moved if b <= MAX_SNIPPET_CHARS - 1]
    return clean, tuple(moved)


def decode_hit(data: object, redactor: Redactor = NO_SECRETS) -> SearchHit | None:
    """One search result; None when its conversation id, role or message id is malformed."""
    if not isinstance(data, dict):
        return None
    chat_id = wire_chat_id(data.get("chat"))
    role = data.get("role")
    message_id = data.get("messageId")
    snippet = data.get("snippet")
    if chat_id is None or role not in ("user", "assistant") or not isinstance(snippet, str):
        return None
    if message_id is not None and wire_message_id(message_id) is None:
        return None
    text, ranges = clean_snippet(snippet, data.get("highlights"))
    if redactor:
        masked = redactor.mask(text)
        if masked != text:  # a secret in a snippet: shown masked, its ranges no longer meaningful
            text, ranges = masked, ()
    return SearchHit(chat=chat_id, title=clean_title(data.get("title"), redactor), role=role,
                     time=clean_time(data.get("time")), snippet=text, highlights=ranges,
                     message_id=wire_message_id(message_id), archived=data.get("archived") is True)


def decode_hits(data: dict[str, Any] | None, limit: int, redactor: Redactor = NO_SECRETS) -> list[SearchHit]:
    """The results of a search answer, newest first as sent, malformed entries out, at most ``limit``."""
    items = data.get("results") if data is not None else None
    if not isinstance(items, list):
        raise ProtocolError("The agent's search answer cannot be read: it has no \"results\".")
    hits = []
    for item in items:
        hit = decode_hit(item, redactor)
        if hit is not None:
            hits.append(hit)
            if len(hits) >= limit:
                break
    return hits


def decode_branch_message(item: object) -> BranchMessage | None:
    """A message of a history answer with its place in the tree; None when it or its ids are malformed."""
    if not isinstance(item, dict):
        return None
    try:
        message = Message.from_json(item)
    except (ValueError, TypeError):
        return None
    message_id = wire_message_id(item.get("id"))
    raw_parent = item.get("parent")
    parent = wire_message_id(raw_parent)
    if message.role == "system" or message_id is None or (raw_parent is not None and parent is None):
        return None
    raw_siblings = item.get("siblings")
    siblings: list[str] = []
    if isinstance(raw_siblings, list):
        for value in raw_siblings[:MAX_SIBLINGS]:
            sibling = wire_message_id(value)
            if sibling is not None and sibling not in siblings[-1:]:
                siblings.append(sibling)
    if message_id not in siblings:
        siblings = [message_id]  # a list that does not hold the message itself says nothing of its place
    fixed = {name: fix_surrogates(value) for name in ("content", "time", "model")
             if isinstance(value := getattr(message, name), str)}
    message = Message(role=message.role, content=fixed["content"], time=clean_time(fixed.get("time")),
                      model=fixed.get("model"), usage=message.usage, stopped=message.stopped)
    return BranchMessage(message=message, id=message_id, parent=parent, siblings=tuple(siblings),
                         truncated=message.role == "assistant" and item.get("truncated") is True)


__all__ = [
    "CONVERSATION_ID",
    "MAX_SNIPPET_CHARS",
    "MAX_TITLE_CHARS",
    "check_chat_id",
    "clean_snippet",
    "clean_time",
    "clean_title",
    "decode_branch_message",
    "decode_hit",
    "decode_hits",
    "decode_summaries",
    "decode_summary",
    "message_number",
    "one_summary",
    "wire_chat_id",
    "wire_message_id",
]
