"""Keeping the pane in step with the stored conversation when another edgechat adds to it.

Two edgechat processes (two terminals, or a one-shot ``edgechat -m`` beside the TUI) may add turns
to one profile. The pane shows them:

- in the background: every :data:`POLL_SECONDS`, the agent's :meth:`~Agent.history_stamp` (a stat
  of the history, in a thread) is compared with the last one; when it changed, the history is
  read (the store reads only what was appended) and the new messages are added to the pane;
- when the terminal window regains focus, at once;
- when a message is sent: the turn tells the agent how many stored messages the pane shows, and
  the local agent refuses the turn (``HistoryChanged``, nothing sent or stored) if it holds
  another number. The turn then shows the new messages above the question and sends it again, so
  a reply never answers a conversation that is not on screen.

New messages at the end are added to the pane; any other change (the conversation archived or
replaced elsewhere) shows the whole conversation again. No Textual import here: the host (the
chat screen) runs the timer and the workers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.core.messages import Message
from edgechat_tui.ui.session import Session
from edgechat_tui.ui.widgets.chat_log import ChatLog, Entry

__all__ = ["POLL_SECONDS", "HistoryWatch", "WatchHost"]

POLL_SECONDS = 1.0


class WatchHost(Protocol):
    """What the watch needs of the chat screen (a Textual screen: timers, workers, notices)."""

    session: Session
    app: Any

    @property
    def chat_log(self) -> ChatLog: ...
    @property
    def prompt(self) -> Any: ...
    @property
    def streaming(self) -> bool: ...
    @property
    def opening(self) -> bool: ...

    async def show_conversation(self) -> None: ...
    async def summary_changed(self) -> None: ...
    def show_ready(self, detail: str | None = None) -> None: ...
    def refresh_context(self, next_text: str = "") -> None: ...
    def set_interval(self, interval: float, callback: Callable[[], object]) -> object: ...
    def run_worker(self, work: Any, **options: Any) -> object: ...
    def watch(self, obj: Any, attribute: str, callback: Callable[[bool], None], *, init: bool) -> None: ...
    def notify(self, message: str, **options: Any) -> None: ...


def _same(message: Message, entry: Entry) -> bool:
    kind = "user" if message.role == "user" else "assistant"
    return entry.kind == kind and entry.text == message.content


class HistoryWatch:
    """Compares the stored conversation with the pane, and brings the pane up to date."""

    def __init__(self, host: WatchHost) -> None:
        self._host = host
        self._stamp: object | None = None
        self._checking = False
        self._started = False
        #: How many times the pane was brought up to date (for tests and the bench).
        self.syncs = 0

    def start(self) -> None:
        """Look every :data:`POLL_SECONDS` (a stat, off the loop), and when the window regains focus."""
        host = self._host
        host.set_interval(POLL_SECONDS, self._poll)
        host.watch(host.app, "app_focus", self._focus_changed, init=False)

    def _poll(self) -> None:
        self._host.run_worker(self.check(), group="history-watch", exit_on_error=False)

    def _focus_changed(self, focused: bool) -> None:
        if focused:  # back in this window: what another one added shows at once
            self._host.run_worker(self.check(read_anyway=True), group="history-watch", exit_on_error=False)

    def _added(self, count: int, user_texts: list[str]) -> None:
        """``count`` messages another edgechat stored are now in the pane."""
        host = self._host
        prompt = host.prompt
        prompt.recall_list = (prompt.recall_list + user_texts)[-500:]
        if count:
            noun = "message" if count == 1 else "messages"
            host.notify(f"{count} {noun} added by another edgechat window", markup=False, timeout=4)
        if host.session.ready and not host.streaming:
            host.refresh_context(prompt.text)

    def forget(self) -> None:
        """A new conversation is shown (start, /user, /clear): the next check compares afresh.
        The first call starts the watch."""
        self._stamp = None
        if not self._started:
            self._started = True
            self.start()

    @property
    def _can_check(self) -> bool:
        host = self._host
        # While a conversation is opened, the pane may show its newest messages and the agent still
        # the one open before: the two are not compared until it is open.
        return host.session.ready and not host.streaming and not host.opening

    async def check(self, *, read_anyway: bool = False) -> int:
        """The background check: read the history if its stamp changed (or ``read_anyway``, for
        agents without a stamp). Returns the messages added to the pane."""
        host = self._host
        agent = host.session.agent
        if agent is None or self._checking or not self._can_check:
            return 0
        self._checking = True
        try:
            try:
                stamp = await agent.history_stamp()
            except EdgechatError:
                return 0
            if stamp is None and not read_anyway:
                return 0
            if stamp is not None and stamp == self._stamp:
                return 0
            if agent is not host.session.agent or not self._can_check:
                return 0
            added = await self.sync(background=True)
            if agent is host.session.agent:
                if stamp is not None:
                    await host.summary_changed()  # a title or an archive set elsewhere: the header
                self._stamp = stamp
            return added
        finally:
            self._checking = False

    async def sync(self, *, background: bool = False) -> int:
        """Bring the pane up to the stored conversation. Returns how many messages were added.
        ``background``: nothing is done if a turn began while the history was read (the pane then
        holds a question the store may not have yet)."""
        host = self._host
        agent = host.session.agent
        if agent is None:
            return 0
        try:
            history = await agent.history()
        except EdgechatError:
            return 0
        if history is None or agent is not host.session.agent or (background and not self._can_check):
            return 0
        stored = [message for message in history if message.role != "system"]
        log = host.chat_log
        shown = [entry for entry in log.entries if entry.is_message]
        if len(stored) == len(shown) and (not shown or _same(stored[-1], shown[-1])):
            return 0
        self.syncs += 1
        if len(stored) > len(shown) and (not shown or _same(stored[len(shown) - 1], shown[-1])):
            new = stored[len(shown):]
            await log.extend([Entry.from_message(message) for message in new])
            self._added(len(new), [m.content for m in new if m.role == "user"])
            return len(new)
        # Changed otherwise (archived, replaced, rewritten elsewhere): show it whole again.
        await host.show_conversation()
        host.show_ready()  # show_conversation leaves the status to its caller (the app, on start)
        self._added(max(0, len(stored) - len(shown)), [])
        return max(1, len(stored) - len(shown))
