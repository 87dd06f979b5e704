"""Helpers for the conversation library's TUI tests: conversation files written as the store writes
them (fixed times, so snapshots do not change from run to run), and waits on the library's state."""

from __future__ import annotations

from pathlib import Path

from edgechat_tui.core.messages import Message
from tests.ui.conftest import wait_until

MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def write_conversation(data_dir: Path, user: str, turns: list[tuple[str, str]] | int, *, day: int,
                       title: str | None = None, archived: bool = False, hour: int = 10) -> str:
    """A conversation file in ``user``'s library, created on 2025-01-``day`` at ``hour``:00 UTC, its
    turns a minute apart. Returns its id (sortable by creation: a later ``day`` sorts later)."""
    from datetime import UTC, datetime

    from edgechat_tui.storage.chat_format import (
        MessageEntry,
        chat_header,
        encode_messages,
        encode_meta,
        new_chat_id,
    )

    if isinstance(turns, int):
        turns = [(f"question {i}", f"answer {i}") for i in range(turns)]
    start = datetime(2025, 1, day, hour, 0, tzinfo=UTC)
    ms = int(start.timestamp() * 1000)
    chat_id = new_chat_id(ms=ms, random_bits=day * 24 + hour)
    root = data_dir / f"{user}.chats"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    created = start.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    lines = [chat_header(user, chat_id, created=created)]
    parent: str | None = None
    for index, (question, answer) in enumerate(turns):
        minute = start.replace(minute=index % 60, second=(index // 60) % 60)
        when = minute.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        qid, aid = f"{chat_id}{2 * index:08d}", f"{chat_id}{2 * index + 1:08d}"
        meta = {"title": title, "titleSource": "user"} if index == 0 and title else None
        lines.append(encode_messages([
            MessageEntry(qid, parent, Message("user", question, time=when)),
            MessageEntry(aid, qid, Message("assistant", answer, time=when, model=MODEL)),
        ], meta))
        parent = aid
    if not turns and title:
        lines.append(encode_meta({"title": title, "titleSource": "user"}))
    if archived:
        lines.append(encode_meta({"archived": True}))
    (root / f"{chat_id}.jsonl").write_bytes(b"".join(lines))
    return chat_id


async def open_panel(pilot) -> None:
    """Ctrl+B, until the list is shown."""
    app = pilot.app
    panel = app.chat.panel
    panel.loaded = False
    await pilot.press("ctrl+b")
    await wait_until(pilot, lambda: panel.is_open and panel.loaded, what="the conversation list")


async def wait_library(pilot) -> None:
    """The session ready (its status may say a turn failed), no turn, no redraw of the branch pending."""
    app = pilot.app
    await wait_until(pilot, lambda: app.agent is not None and app.session.ready and app.chat.turn is None
                     and not app.chat.library.redrawing and app.chat.status.state != "loading history…",
                     what="the chat to be ready and the branch redrawn")


def pane(app) -> list[tuple[str, str, tuple[int, int] | None]]:
    """The pane's messages as (kind, text, branch position)."""
    return [(e.kind, e.text, e.branch) for e in app.chat.chat_log.entries if e.kind in ("user", "assistant")]
