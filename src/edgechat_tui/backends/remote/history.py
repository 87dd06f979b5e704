"""Decoding an agent's history answer (docs/protocol.md, ``history``) into messages."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from edgechat_tui.core.errors import ProtocolError
from edgechat_tui.core.messages import Message
from edgechat_tui.http.unicode import fix_surrogates


def decode_history(data: dict[str, Any] | None, describe: str) -> list[Message]:
    """The conversation in a history answer, oldest first, without the system prompt.

    One unreadable entry is skipped rather than hiding the rest; text is repaired (surrogate halves),
    so nothing stored on the server can make a later command fail. ``describe`` names the body for
    the error when there is no message list at all.
    """
    messages = data.get("messages") if data is not None else None
    if not isinstance(messages, list):
        raise ProtocolError(f"The agent's history answer has no messages: {describe}.")
    history: list[Message] = []
    for item in messages:
        try:
            message = Message.from_json(item)
        except (ValueError, TypeError):
            continue
        if message.role == "system":
            continue
        fixed = {name: fix_surrogates(value) for name in ("content", "time", "model")
                 if isinstance(value := getattr(message, name), str) and fix_surrogates(value) != value}
        history.append(replace(message, **fixed) if fixed else message)
    return history


__all__ = ["decode_history"]
