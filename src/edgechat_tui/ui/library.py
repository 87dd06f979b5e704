"""The conversation library on the chat screen: which conversation is open, the list panel, the
branch shown in the pane, and the turns that make branches (regenerate, edit, continue).

:class:`Library` belongs to one chat screen and works through ``agent.conversations`` (the
:class:`~edgechat_tui.backends.conversations.Conversations` facet). When the agent has none (a seed
server keeps one conversation), every action says it is not available with this agent and changes
nothing (:data:`UNAVAILABLE_HINT`).

The pane shows the open conversation's current branch (``Conversations.branch``): each message
knows its id and, when it has siblings, shows ``‹2/3›`` (Alt+←/→ move between them). After a turn
that changed the tree (regenerate, edit, continue) the branch is read again and redrawn; sending
waits (the text stays in the input) until it is. After an ordinary turn only the summary is read
again, for the title the agent sets a moment after the first reply.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from edgechat_tui.core.conversations import BranchMessage, ConversationSummary
from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.ui.library_parts import (
    ARCHIVED_NOTE,
    EARLY_FRAME_WAIT,
    EDITING,
    OPEN_WINDOW,
    OPENING,
    PREFETCH_DELAY,
    PREFETCH_MOST,
    REDRAWING,
    TITLE_WATCH,
    TRUNCATED,
    UNAVAILABLE_HINT,
    LibraryHost,
    describe,
    entries_from_branch,
    hit_detail,
    other_version,
    unavailable,
    version_detail,
)
from edgechat_tui.ui.turn import Turn
from edgechat_tui.ui.widgets.chat_log import Entry
from edgechat_tui.ui.widgets.conversations import View, clean_title

if TYPE_CHECKING:
    from edgechat_tui.backends.base import Agent
    from edgechat_tui.backends.conversations import Conversations

__all__ = ["EDITING", "UNAVAILABLE_HINT", "Library", "LibraryHost", "describe", "entries_from_branch",
           "unavailable"]


class Library:
    """The chat screen's conversation library (see the module's docstring)."""

    def __init__(self, host: LibraryHost) -> None:
        self.host = host
        #: The open conversation, as last read (None: none yet, or no library).
        self.current: ConversationSummary | None = None
        #: The text of the question being edited (``/edit``), while the edit is under way.
        self.editing: str | None = None
        #: Set while the branch is read again after a turn: sending waits.
        self.redrawing = False
        #: Set while a conversation is being opened (its newest messages may be shown already).
        self.opening = False
        self._opens = 0
        self._open_lock = asyncio.Lock()
        self._prefetch: Any = None
        self._started = False

    # --- the facet ----------------------------------------------------------------------------

    @property
    def conversations(self) -> Conversations | None:
        agent = self.host.session.agent
        return agent.conversations if agent is not None else None

    @property
    def busy_reason(self) -> str | None:
        """Why a message cannot be sent now because of the library, or None."""
        return REDRAWING if self.redrawing else OPENING if self.opening else None

    # --- opening ------------------------------------------------------------------------------

    async def opening_entries(self, agent: Agent) -> list[Entry] | None:
        """The entries of the conversation the agent has open, after the TUI's ``--chat ID`` or
        ``--new`` (the first time only). None when the agent keeps no library (use its history)."""
        conversations = agent.conversations
        self.current = None
        self.editing = None
        self.show_title()
        session = self.host.session
        chat_id, new = session.start_chat, session.start_new
        if conversations is None:
            if not self._started and (chat_id or new):
                what = "--new" if new else "--chat"
                self.host.warn(f"{what} is not available with this agent: it keeps a single "
                               "conversation, shown here.")
            self._started = True
            return None
        notices: list[Entry] = []
        if not self._started:
            self._started = True
            try:
                if new:
                    self.current = await conversations.create()
                elif chat_id:
                    self.current = await conversations.open(chat_id)
            except EdgechatError as error:
                notices.append(Entry("error", error.message, hint=error.hint,
                                     advice="The most recent conversation is shown instead."))
        if self.current is None:
            self.current = await conversations.current()
        branch = await conversations.branch() if self.current is not None else []
        self.show_title()
        entries = entries_from_branch(branch)
        if self.current is not None and self.current.archived:
            notices.append(Entry("info", ARCHIVED_NOTE))
        return entries + notices

    async def open(self, chat_id: str, *, at_message: str | None = None) -> bool:
        """Open conversation ``chat_id`` in the pane (at message ``at_message``, a search hit).
        Its current branch's newest messages show first when the end of its file tells them (``peek``,
        in a thread) while the whole is read; sending waits until it is (:data:`OPENING`). A failed
        read shows the conversation that was open again."""
        conversations = self.conversations
        host = self.host
        if conversations is None:
            await host.say_error(*unavailable("Opening another conversation"))
            return False
        if host.turns.turn is not None:
            await host.say_error("A reply is still coming: wait for it, or press Esc to stop it, "
                                 "then open the conversation.")
            return False
        if self._prefetch is not None:  # a read ahead not begun would slow the drawing: the open reads
            self._prefetch.cancel()
        self._opens += 1
        ticket = self._opens  # a later open (Enter again, on another row) takes the pane over
        left = host.chat_log.entries if at_message is None else None
        self.opening = True
        try:
            if left is not None:
                await self._show_early(conversations, chat_id, ticket)
            async with self._open_lock:  # the agent's open conversation is the last one asked for
                if ticket != self._opens:
                    return False
                try:
                    summary = await conversations.open(chat_id)
                    branch = await conversations.branch()
                    if at_message is not None and all(item.id != at_message for item in branch):
                        branch = await conversations.switch(at_message)  # the hit is on another branch
                except EdgechatError as error:
                    if ticket == self._opens and left is not None and host.chat_log.early:
                        await host.chat_log.show_conversation(left, user=host.user, window=OPEN_WINDOW)
                    await host.say_error(error)
                    return False
            if ticket != self._opens:
                return False
            self.current = summary
            self.cancel_edit(quiet=True)
            host.turns.retry_text = None
            await self._show(branch)
        finally:
            if ticket == self._opens:
                self.opening = False
        if summary.archived:
            await host.say(ARCHIVED_NOTE)
        if at_message is not None:
            host.status.set_detail(hit_detail(branch, at_message))
            index = next((i for i, e in enumerate(host.chat_log.entries) if e.message_id == at_message), None)
            if index is not None:
                await host.chat_log.jump_to(index)
        host.refresh_context()
        self.refresh_list()
        return True

    async def _show_early(self, conversations: Conversations, chat_id: str, ticket: int) -> None:
        """The newest messages of ``chat_id``'s current branch, if the end of its file tells them; the
        whole is read once they are drawn (a read in a thread slows the loop drawing them)."""
        if self.current is not None and self.current.id == chat_id:
            return
        log = self.host.chat_log
        with contextlib.suppress(EdgechatError):
            newest = await conversations.peek(chat_id, OPEN_WINDOW)
            if newest and ticket == self._opens:
                await log.show_early(entries_from_branch(newest))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(log.wait_for_refresh(), EARLY_FRAME_WAIT)

    async def new(self, *, left_gone: bool = False) -> None:
        """``/new``: a new, empty conversation; the one left stays in the list (unless ``left_gone``)."""
        conversations = self.conversations
        host = self.host
        if conversations is None:
            await host.say_error(*unavailable("Starting another conversation (/new)"))
            return
        if self.current is not None and self.current.message_count == 0 and not self.current.archived:
            await host.say("This conversation is new already: type below to start it.")
            return
        try:
            summary = await conversations.create()
        except EdgechatError as error:
            await host.say_error(error)
            return
        left = self.current
        self.current = summary
        self.cancel_edit(quiet=True)
        host.turns.retry_text = None
        await self._show([])
        stays = left is not None and left.message_count and not left_gone
        what = f"{describe(left)} stays in the list (Ctrl+B)." if stays else ""
        await host.say(f"A new conversation. {what}".strip())
        host.refresh_context()
        self.refresh_list()

    async def set_title(self, title: str, chat_id: str | None = None) -> None:
        """``/title TEXT`` (the open conversation), or a rename from the list."""
        conversations = self.conversations
        host = self.host
        if conversations is None:
            await host.say_error(*unavailable("Titles (/title)"))
            return
        try:
            if chat_id is None:
                current = await conversations.current()
                summary = (await conversations.create(title) if current is None
                           else await conversations.rename(current.id, title))
            else:
                summary = await conversations.rename(chat_id, title)
        except EdgechatError as error:
            await host.say_error(error)
            return
        if self.current is None or summary.id == self.current.id:
            self.current = summary
            self.show_title()
        await host.say(f"Title: {clean_title(summary.title, width=80)}")
        self.refresh_list()

    # --- after a turn ---------------------------------------------------------------------------

    async def run_turn(self, turn: Turn, agent: Agent) -> None:
        """A turn's worker: the turn (``TurnRunner.run``), then what the library shows after it."""
        host = self.host
        log = host.chat_log
        if turn.action != "chat":
            self.redrawing = True
            self._hide_replaced(turn)
        start = len(log.entries)
        try:
            await host.turns.run(turn, agent)
        except asyncio.CancelledError:
            if turn.action != "chat":
                host.run_worker(self._after_turn(turn, log.entries[start:]), group="library-redraw",
                                exit_on_error=False)
            raise
        if turn.result is not None and turn.result.truncated and self.conversations is not None:
            await host.say(TRUNCATED)
        if turn.action != "chat":
            await self._after_turn(turn, log.entries[start:])
        elif self.conversations is not None:
            host.run_worker(self._after_chat_turn(), group="library-title", exclusive=True,
                            exit_on_error=False)

    async def _after_chat_turn(self) -> None:
        """The summary again (the list, the title); after a first exchange, watch for the title the
        agent makes in the background (a small model call, a moment after the reply)."""
        await self.refresh_current()
        current, conversations = self.current, self.conversations
        settings = self.host.session.settings
        makes_titles = self.host.session.remote or settings.values.get("auto_title", True)
        if current is None or conversations is None or current.message_count > 2 or not makes_titles:
            return
        for delay in TITLE_WATCH:
            await asyncio.sleep(delay)
            try:
                summary = await conversations.get(current.id)
            except EdgechatError:
                return
            if summary.title != current.title:
                if self.current is not None and self.current.id == summary.id:
                    self.current = summary
                    self.show_title()
                    self.refresh_list()
                return

    def _hide_replaced(self, turn: Turn) -> None:
        """While a regenerate, edit or continue streams, the messages it replaces are hidden."""
        entries = self.host.chat_log.entries
        kinds = ("user",) if turn.action == "edit" else ("assistant",)
        index = next((i for i in range(len(entries) - 1, -1, -1) if entries[i].kind in kinds), None)
        if index is None:
            return
        if turn.action == "continue":
            turn.reply_prefix = entries[index].text
        for entry in entries[index:]:
            if entry.widget is not None and entry.kind in ("user", "assistant"):
                entry.widget.display = False

    async def _after_turn(self, turn: Turn, added: list[Entry]) -> None:
        """Read the branch again and redraw it, keeping the notices the turn added (an error)."""
        host = self.host
        notices = [Entry(e.kind, e.text, hint=e.hint, advice=e.advice) for e in added
                   if e.kind in ("error", "info", "warning")]
        kept = turn.reply_entry is not None and turn.reply_entry in host.chat_log.entries
        try:
            conversations = self.conversations
            if conversations is None:
                return
            if turn.action == "edit" and kept:
                self.cancel_edit(quiet=True)
            try:
                branch = await conversations.branch()
                self.current = await conversations.current()
            except EdgechatError as error:
                notices.append(Entry("error", error.message, hint=error.hint))
                branch = None
            if branch is not None:
                await self._show(branch)
            else:
                for entry in host.chat_log.entries:
                    if entry.widget is not None:
                        entry.widget.display = True
            for notice in notices:
                await host.chat_log.add(notice)
            self.show_title()
            self.refresh_list()
        finally:
            self.redrawing = False
            host.refresh_bindings()

    async def refresh_current(self) -> None:
        """Read the open conversation's summary again: the header's title (set by the agent a moment
        after the first reply), the list. Quiet on failure: the next turn reads it again."""
        conversations = self.conversations
        if conversations is None:
            return
        with contextlib.suppress(EdgechatError):
            self.current = await conversations.current()
        self.show_title()
        self.refresh_list()

    # --- branches -----------------------------------------------------------------------------

    async def switch(self, step: int, *, at: str | None = None) -> None:
        """Alt+←/→: show the previous or next version of message ``at`` (the focused one) if it has
        several, else of the newest message that has several. The focus stays on the message moved."""
        conversations = self.conversations
        host = self.host
        if conversations is None:
            await host.say_error(*unavailable("Branches"))
            return
        if host.turns.turn is not None or self.redrawing or self.opening:
            what = "The conversation is being opened" if self.opening else "A reply is still coming"
            host.notify(f"{what}: switch branches once it is done.", severity="warning", markup=False)
            return
        try:
            branch = await conversations.branch()
            other = other_version(branch, step, at)
            if other is None:
                host.status.set_detail("no other versions: /regen or /edit make one")
                return
            branch = await conversations.switch(other)
            self.current = await conversations.current()
        except EdgechatError as error:
            await host.say_error(error)
            return
        self.cancel_edit(quiet=True)
        await self._show(branch)
        moved = next((item for item in branch if item.id == other), None)
        if moved is not None:
            host.status.set_detail(version_detail(moved.position))
            widget = next((e.widget for e in host.chat_log.entries if e.message_id == other), None)
            if at is not None and widget is not None and widget.is_mounted and widget.can_focus:
                widget.focus()  # it had the focus before the pane was redrawn
        host.refresh_context()

    def begin_edit(self, text: str) -> None:
        """``/edit``: the last question in the input; Enter makes a branch, Esc cancels."""
        self.editing = text
        prompt = self.host.prompt
        prompt.set_text(text)
        prompt.border_title = EDITING
        prompt.focus()
        self.host.refresh_bindings()

    def cancel_edit(self, *, quiet: bool = False) -> bool:
        """Esc while editing: the edit ends. The input keeps what was typed, unless it is still the
        question unchanged (which is stored anyway)."""
        if self.editing is None:
            return False
        prompt = self.host.prompt
        if not quiet and prompt.text == self.editing:
            prompt.clear()
        self.editing = None
        prompt.border_title = None
        if not quiet:
            self.host.turns.retry_text = None
            self.host.status.set_detail("edit cancelled" + (": your text stays in the input"
                                                             if prompt.text.strip() else ""))
        self.host.refresh_bindings()
        return True

    # --- the list -----------------------------------------------------------------------------

    def toggle_panel(self, view: View | None = None) -> None:
        panel = self.host.panel
        if self.conversations is None:
            self.host.run_worker(self.host.say_error(*unavailable("The conversation list")),
                                 exit_on_error=False)
            return
        if panel.is_open and view is None:
            panel.close()
            self.host.prompt.focus()
            return
        panel.open()
        self.refresh_list(view or panel.view)

    def refresh_list(self, view: View | None = None) -> None:
        """Read the list again (in a worker, off the loop's path) if the panel is open."""
        panel = self.host.panel
        if not panel.is_open or self.conversations is None:
            return
        self.host.run_worker(self._load_list(view or panel.view), group="library-list", exclusive=True,
                             exit_on_error=False)

    async def _load_list(self, view: View) -> None:
        conversations = self.conversations
        if conversations is None:
            return
        try:
            summaries = await conversations.list(archived=view == "archived", deleted=view == "trash")
        except EdgechatError as error:
            self.host.panel.show_list([], view=view, current_id=None, note=f"✖ {error.message}")
            return
        self.host.panel.show_list(summaries, view=view, current_id=self.current.id if self.current else None)

    def prefetch(self, summary: ConversationSummary) -> None:
        """The highlight rests on a conversation: read it ahead (in a thread) if it is short, so that Enter
        shows it at once (:data:`PREFETCH_MOST`: a longer one's read would slow drawing it on Enter)."""
        conversations, chat_id = self.conversations, summary.id
        if conversations is None or summary.message_count > PREFETCH_MOST or (
                self.current is not None and self.current.id == chat_id):
            return

        async def read() -> None:
            await asyncio.sleep(PREFETCH_DELAY)  # only where the highlight rests, not every row passed
            with contextlib.suppress(EdgechatError):
                await conversations.get(chat_id)

        self._prefetch = self.host.run_worker(read(), group="library-prefetch", exclusive=True,
                                              exit_on_error=False)

    # --- the pane -----------------------------------------------------------------------------

    async def _show(self, branch: list[BranchMessage]) -> None:
        host = self.host
        entries = entries_from_branch(branch)
        host.prompt.recall_list = [e.text for e in entries if e.kind == "user"][-500:]
        host.status.set_detail(None)  # it spoke of the view before ("version 2 of 3"…)
        await host.chat_log.show_conversation(entries, user=host.user, window=OPEN_WINDOW)  # a screen first
        self.show_title()

    def show_title(self) -> None:
        current = self.current
        title = current.title if current is not None else None
        if current is not None and current.archived:
            title = f"{title or '(untitled)'} (archived)"
        self.host.header.set_title(title)
