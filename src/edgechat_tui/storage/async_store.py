"""The history store for code on an event loop: every call runs in a thread (``asyncio.to_thread``).

A save fsyncs, a read may parse a long history, and taking the lock may wait (up to 30 s) for another
process: none of it may stall a Textual app or any other loop. The wrapped store refuses to be called
on the loop's own thread, so a caller cannot do that I/O there by accident.
"""

from __future__ import annotations

import sys
from pathlib import Path

from edgechat_tui.core.messages import Message
from edgechat_tui.storage.store import HistoryStore

__all__ = ["AsyncHistoryStore"]


async def _to_thread(fn, /, *args):
    # Only code on an event loop awaits this, so asyncio is loaded by then: not importing it here
    # keeps it out of the commands that never start a loop (``edgechat search``).
    return await sys.modules["asyncio"].to_thread(fn, *args)


class AsyncHistoryStore:
    """The awaitable face of a :class:`HistoryStore`: the same calls, each run in a worker thread."""

    def __init__(self, store: HistoryStore) -> None:
        store.forbid_event_loop()
        self._store = store

    @property
    def user(self) -> str:
        return self._store.user

    @property
    def path(self) -> Path:
        return self._store.path

    async def load(self) -> list[Message]:
        return await _to_thread(self._store.load)

    async def refresh(self) -> list[Message]:
        return await _to_thread(self._store.refresh)

    async def messages(self) -> list[Message]:
        # In a thread too: the cache's mutex may be held by a call that is waiting for the file lock.
        return await _to_thread(lambda: self._store.messages)

    async def append_turn(self, user_message: Message, reply: Message) -> int:
        return await _to_thread(self._store.append_turn, user_message, reply)

    async def archive(self) -> Path | None:
        return await _to_thread(self._store.archive)
