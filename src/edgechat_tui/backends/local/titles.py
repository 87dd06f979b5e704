"""Conversation titles made by a small model after the first reply, in the background.

The first words of the first message are the title at once (written with the first turn). Then, with
``auto_title`` on (the default), a small model (``@cf/meta/llama-3.1-8b-instruct-fast``, at most 24
tokens) is asked for a better one; the turn never waits for it. A title the user set meanwhile is never
replaced (checked under the lock when the title is written), and a failed call keeps the first words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from edgechat_tui.storage.chat_format import title_from_model
from edgechat_tui.storage.chat_tree import ChatState
from edgechat_tui.storage.library import Library

if TYPE_CHECKING:
    from edgechat_tui.backends.local.workers_ai import WorkersAIClient

__all__ = ["TITLE_MAX_TOKENS", "TITLE_MODEL", "TITLE_PROMPT", "TitleMaker"]

TITLE_MODEL = "@cf/meta/llama-3.1-8b-instruct-fast"
TITLE_MAX_TOKENS = 24
TITLE_PROMPT = ("Reply with a title for this conversation: at most six words, on one line, in the "
                "conversation's language, no quotes, no trailing full stop. Reply with the title only.")
#: How long closing the agent waits for titles still being made (a one-shot ``-m`` then exits).
FINISH_WAIT = 5.0

_log = logging.getLogger(__name__)


def _clip(text: str) -> str:
    return text if len(text) <= 1500 else text[:1500] + "…"


class TitleMaker:
    """Starts one title call per new conversation and writes what it says."""

    def __init__(self, library: Library, client: Callable[[], WorkersAIClient], *, enabled: bool,
                 warn: Callable[[str], None]) -> None:
        self._library = library
        self._client = client
        self.enabled = enabled
        self._warn = warn
        self._tried: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def after_reply(self, state: ChatState) -> None:
        """After a saved reply: start the title call if this was the conversation's first exchange."""
        if not self.enabled or state.title_source != "words" or state.id in self._tried:
            return
        first = state.first_exchange()
        if first is None:
            return
        self._tried.add(state.id)
        task = asyncio.get_running_loop().create_task(self._make(state.id, *first))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _make(self, chat_id: str, question: str, answer: str) -> None:
        messages = [{"role": "system", "content": TITLE_PROMPT},
                    {"role": "user", "content": f"User: {_clip(question)}\n\nAssistant: {_clip(answer)}"}]
        from edgechat_tui.backends.local.workers_ai import Completion  # loaded with the client

        try:
            text = ""
            events = self._client().chat(messages, model=TITLE_MODEL, max_tokens=TITLE_MAX_TOKENS,
                                       temperature=0.2, session_id=None)
            async with contextlib.aclosing(events) as stream:
                async for event in stream:
                    if isinstance(event, Completion):
                        text = event.text
            title = title_from_model(text)
            if title:
                await asyncio.to_thread(self._library.set_model_title, chat_id, title)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a title is a nicety: the first words stay
            _log.info("no title for %s: %s", chat_id, error)

    async def pending(self) -> None:
        """Wait for the titles being made (tests, and closing)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    async def finish(self, wait: float = FINISH_WAIT) -> None:
        """Give titles being made a moment to land, then stop them."""
        tasks = set(self._tasks)
        if not tasks:
            return
        _done, late = await asyncio.wait(tasks, timeout=wait)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
