"""The chat screen: header, conversation, input, status line, footer.

It is given the :class:`~edgechat_tui.ui.session.Session` (attributes down) and shows it: the
conversation of the session's agent, the state, the context. What only the app can do (switch
profile, quit) it asks for with a message (:mod:`edgechat_tui.ui.messages`). A turn's life is
:class:`~edgechat_tui.ui.turn.TurnRunner`'s; what each ``/command`` does is in
:mod:`edgechat_tui.ui.commands`.

A message is sent only while the session is ready: while a history loads, or while ``/user``
connects, Enter is refused and the text stays in the input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, TextArea

from edgechat_tui.backends.base import Agent
from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.core.messages import ContextInfo, Message
from edgechat_tui.ui.history_watch import HistoryWatch
from edgechat_tui.ui.messages import SwitchUser
from edgechat_tui.ui.meter import context_text
from edgechat_tui.ui.render_cache import session_cache_path
from edgechat_tui.ui.screens import message_keys
from edgechat_tui.ui.screens.chat_parts import ChatParts
from edgechat_tui.ui.screens.dialogs import ChatDialogs
from edgechat_tui.ui.session import Session
from edgechat_tui.ui.widgets.chat_log import ChatLog, Entry
from edgechat_tui.ui.widgets.conversations import ConversationPanel
from edgechat_tui.ui.widgets.focusable import CopyRequest, MoveFocus
from edgechat_tui.ui.widgets.header import ChatHeader
from edgechat_tui.ui.widgets.prompt import CommandSuggestions, PromptArea
from edgechat_tui.ui.widgets.status import StatusLine

if TYPE_CHECKING:  # the Markdown widget loads with the first reply, not with the screen
    # The turn runner, the library, the clipboard and the commands load on first use, after the
    # first frame (ChatParts), not with the screen.
    from edgechat_tui.core.catalog import ModelPrice
    from edgechat_tui.storage.tail import EarlyTail
    from edgechat_tui.ui.commands.registry import Invocation
    from edgechat_tui.ui.widgets.reply import ReplyMarkdown

__all__ = ["ChatScreen"]

# The context preview is recomputed this long after the user stops typing.
PREVIEW_DELAY = 0.4
# While a reply streams, a key typed holds its next render this long, so the frame showing the
# key does not also lay out the growing reply (which made typing lag; see docs/tui.md).
KEY_HOLD = 0.06
SWITCHING = "Switching profile: the message stays in the input; send it once the switch is done."


class ChatScreen(ChatParts, ChatDialogs, Screen[None]):
    """The main screen, showing ``session``. The app moves the session; the screen shows it."""

    DEFAULT_CSS = """
    ChatScreen { layout: vertical; }
    ChatScreen #composer { height: auto; }
    ChatScreen #body { height: 1fr; }
    """
    AUTO_FOCUS = "#prompt"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop reply"),
        Binding("ctrl+r", "retry", "Retry"),
        Binding("f1", "help", "Help"),
        Binding("pageup", "scroll_chat(-1)", "Scroll up", show=False, priority=True),
        Binding("pagedown", "scroll_chat(1)", "Scroll down", show=False, priority=True),
        Binding("ctrl+end", "latest", "Newest", show=False),
        Binding("ctrl+home", "first", "Start", show=False),
        Binding("ctrl+c", "ctrl_c", "Copy", show=False, priority=True),
        Binding("ctrl+up", "focus_messages", "Messages", key_display="^↑"),
        # The conversation library (ui/library.py).
        Binding("ctrl+b", "chats", "Chats"),
        Binding("ctrl+g", "regenerate", "Regenerate"),
        Binding("alt+left", "branch(-1)", "Previous version", show=False),
        Binding("alt+right", "branch(1)", "Next version", show=False),
        Binding("f2", "setup", "Set up"),  # shown only once the API refused the credentials
    ]

    def __init__(self, session: Session, *, early: EarlyTail | None = None) -> None:
        super().__init__()
        self.session = session
        self._preview_timer: Timer | None = None
        self._held_warnings: list[str] = []
        #: Set from the moment ``/user`` is entered until the app has switched (or failed to).
        self._switch_pending = False
        self._switch_requests = 0
        model = None if session.remote else session.settings.model
        self._header = ChatHeader(session.user, session.mode_label, model, id="header")
        self._log = ChatLog(id="chat", early=early, user=session.user)
        self._log.describe_usage = self._describe_usage
        self._log.drawn_path = session_cache_path(self.session)
        self._suggestions = CommandSuggestions(id="suggestions")
        self._prompt = PromptArea(id="prompt", suggestions=self._suggestions, completer=self._complete)
        self._status = StatusLine(id="status")
        self.history_watch = HistoryWatch(self)
        self._panel = ConversationPanel(id="library")

    def compose(self) -> ComposeResult:
        yield self._header
        with Horizontal(id="body"):  # the conversation list (hidden until Ctrl+B) beside the pane
            yield self._panel
            yield self._log
        with Vertical(id="composer"):
            yield self._suggestions
            yield self._prompt
        yield self._status
        yield Footer()

    # --- parts, for the app, the commands and the tests ----------------------------------------

    @property
    def chat_log(self) -> ChatLog:
        return self._log

    @property
    def prompt(self) -> PromptArea:
        return self._prompt

    @property
    def status(self) -> StatusLine:
        return self._status

    @property
    def header(self) -> ChatHeader:
        return self._header

    @property
    def panel(self) -> ConversationPanel:
        return self._panel

    @property
    def user(self) -> str:
        return self.session.user

    @property
    def agent(self) -> Agent | None:
        return self.session.agent

    @property
    def streams(self) -> bool:
        agent = self.session.agent
        return agent is None or agent.info.streams

    @property
    def failed_text(self) -> str | None:
        """The text Ctrl+R (``/retry``) sends again, if any."""
        return self.turns.retry_text

    # --- the session, as the app moves it ------------------------------------------------------

    def connecting(self, what: str) -> None:
        self._status.set_state(what, "busy")
        self.refresh_bindings()

    def warn(self, text: str) -> None:
        """A warning (from the config, the agent, its store) shown in the pane, after the history."""
        if not self.session.ready:
            self._held_warnings.append(text)
        else:
            self.run_worker(self.say(text, warning=True), exit_on_error=False)

    async def show_held_warnings(self) -> None:
        """Show the warnings held for the history (when there will be none: the agent failed)."""
        held, self._held_warnings = self._held_warnings, []
        for text in held:
            await self.say(text, warning=True)

    async def show_conversation(self) -> None:
        """Show the session's (new) agent: header, history. The app marks the session ready after."""
        agent = self.session.agent
        if agent is None:
            return
        self.turns.retry_text = None
        self.history_watch.forget()  # and it watches from now on (ui/history_watch.py)
        self.show_info_header()
        self._status.set_state("loading history…", "busy")
        entries: list[Entry] = []
        recall: list[str] = []
        library_entries: list[Entry] | None = None
        try:
            library_entries = await self.library.opening_entries(agent)
            history = await agent.history() if library_entries is None else []
        except EdgechatError as error:
            history = []
            entries.append(Entry("error", error.message, hint=error.hint,
                                 advice="The conversation could not be loaded; new messages may still work."))
        if library_entries is not None:
            entries[:0] = library_entries
            recall = [entry.text for entry in library_entries if entry.kind == "user"]
        elif history is None:
            entries.append(Entry("info", "This agent does not share its history: earlier messages are not "
                                         "shown here, though the agent may still remember them."))
        else:
            entries[:0] = [Entry.from_message(message) for message in history if message.role != "system"]
            recall = [message.content for message in history if message.role == "user"]
        self._prompt.recall_list = recall[-500:]
        self._log.drawn_path = session_cache_path(self.session)
        # Warnings raised while the history loaded (a damaged line...) come after it.
        entries += [Entry("warning", text) for text in self._held_warnings]
        self._held_warnings.clear()
        await self._log.show_conversation(entries, user=self.user)

    def reply_price(self, model: str | None) -> ModelPrice | None:
        """A model's price, from the account's catalog or the built-in table (for the usage line)."""
        return self.session.catalog.price_of(model)

    def _describe_usage(self, entry: Entry) -> str | None:
        """The figures under a stored reply: its tokens and cost (its time was not kept)."""
        from edgechat_tui.ui.usage_text import reply_usage_line

        return reply_usage_line(entry.usage, self.session.catalog.price_of(entry.model))

    def switch_finished(self) -> None:
        """The app is done with a ``/user`` switch (made or failed): sending may resume."""
        self._switch_pending = False

    def show_info_header(self) -> None:
        agent = self.session.agent
        if agent is None:
            return
        info = agent.info
        mode = "local" if info.mode == "local" else f"remote {info.host or ''}".strip()
        self._header.show(user=info.user, mode=mode, model=info.model)

    def show_ready(self, detail: str | None = None) -> None:
        agent = self.session.agent
        if agent is None or not self.session.ready:
            return
        info = agent.info
        if info.mode == "remote":
            state = f"connected to {info.host}" if info.host else "connected"
            if not info.streams:
                state += " (replies arrive whole)"
        else:
            state = "ready"
        self._status.set_state(state, "idle", detail=detail)
        self.refresh_bindings()

    def refresh_context(self, next_text: str = "") -> None:
        """Recompute ``ctx 3.1k/24k · 18 of 40 messages`` in the background."""
        agent = self.session.agent
        if agent is None:
            return

        async def preview() -> None:
            try:
                info = await agent.context_preview(next_text)
            except EdgechatError:
                info = None
            if agent is self.session.agent:
                self._show_context(info)

        self.run_worker(preview(), group="context-preview", exclusive=True, exit_on_error=False)

    def _show_context(self, info: ContextInfo | None) -> None:
        self._status.set_context(context_text(info) if info else None)
        self._log.set_context_start(info.messages_sent if info else 0, info.messages_total if info else 0)

    # --- input --------------------------------------------------------------------------------

    def _complete(self, text: str) -> list:
        from edgechat_tui.ui.commands.handlers import complete  # the commands load after the first frame

        return complete(text, themes=self.app.available_themes, models=self.session.catalog.model_ids())

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area is not self._prompt:
            return
        reply = self.turn.reply if self.turn is not None else None
        if reply is not None and reply.live:
            reply.body.hold(KEY_HOLD)
        if self._preview_timer is not None:
            self._preview_timer.stop()
        if self.session.ready and self.turn is None:
            text = self._prompt.text
            self._preview_timer = self.set_timer(PREVIEW_DELAY, lambda: self.refresh_context(text))

    def on_prompt_area_submitted(self, event: PromptArea.Submitted) -> None:
        event.stop()
        from edgechat_tui.ui.commands.registry import invocation_problem, message_text, parse_slash

        text = event.text
        invocation = parse_slash(text)
        if invocation is not None:
            self._prompt.close_suggestions()
            if invocation_problem(invocation) is not None:
                self._prompt.restore(text)  # the problem is shown; the line stays to be fixed
            else:
                # The box was emptied with the Enter: the user may already be typing.
                self._prompt.remember(text.strip())
                if invocation.command is not None and invocation.command.name == "user":
                    # Held from this key on, not from when the command runs: a message typed
                    # right after must not go to the profile being left.
                    self._switch_pending = True
            # Some commands take a while (/user loads a history, /export writes a file).
            self.run_worker(self.run_command(invocation), group="command", exit_on_error=False)
            return
        if not self.send(message_text(text)):
            self._prompt.restore(text)  # refused: the text goes back, before anything typed since

    async def run_command(self, invocation: Invocation) -> None:
        """Run a command line on this screen (the palette runs its entries here too)."""
        is_switch = invocation.command is not None and invocation.command.name == "user"
        asked = self._switch_requests
        try:
            from edgechat_tui.ui.commands.handlers import run_command

            await run_command(self, invocation)
        finally:
            if is_switch and self._switch_requests == asked:  # refused (bad name, busy...)
                self._switch_pending = False

    def request_switch(self, user: str) -> None:
        """``/user NAME``: ask the app for the switch; nothing is sent until it is done."""
        self._switch_pending = True
        self._switch_requests += 1
        self.post_message(SwitchUser(user))

    def send(self, text: str) -> bool:
        """Start a turn with ``text``. Returns False (and says why) when it cannot be sent now."""
        return self.start_turn(text, action="edit" if self.library.editing is not None else "chat")

    def start_turn(self, text: str, *, action: str = "chat") -> bool:
        """Start a turn: ``send`` (action "chat"), or the library's "edit", "regenerate", "continue"."""
        typed = action in ("chat", "edit")
        if typed and not text.strip():
            return False
        if self.turn is not None:
            self._refuse("A reply is still coming: wait for it, or press Esc to stop it. "
                         "Your text stays in the input.")
            return False
        if self._switch_pending:
            self._refuse(SWITCHING)
            return False
        agent = self.session.agent
        if agent is None or not self.session.ready:
            self._refuse(self.session.busy_reason)
            return False
        if self.library.busy_reason is not None:
            self._refuse(self.library.busy_reason)
            return False
        # From the prompt, the box was emptied with the Enter (keys typed since are a new text).
        if typed:
            self._prompt.remember(text)
        self.turns.retry_text = None
        from edgechat_tui.ui.turn import Turn

        turn = Turn(text, action=action)
        self.turns.turn = turn
        self.refresh_bindings()
        turn.worker = self.run_worker(self.library.run_turn(turn, agent), group="turn", exclusive=True,
                                      exit_on_error=False)
        return True

    def _refuse(self, reason: str) -> None:
        self._prompt.show_refusal(reason.split(":")[0] + ": wait, or press Esc to stop it"
                                  if self.turn is not None else reason)
        self.app.bell()
        self.notify(reason, severity="warning", markup=False, timeout=4)

    def on_reply_markdown_failed(self, event: ReplyMarkdown.Failed) -> None:
        """A reply could not be rendered: it shows its text plain; a live turn ends as failed."""
        event.stop()
        turn = self.turn
        reply = turn.reply if turn is not None else None
        if reply is not None and reply.body is event.reply:
            self.turns.display_failed(event.error)
        else:
            self.notify(f"A reply could not be rendered and is shown as plain text "
                        f"({type(event.error).__name__}).", severity="warning", markup=False)

    # --- keys ---------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.turn is not None or self.library.editing is not None
        if action == "retry":
            return self.failed_text is not None and self.turn is None
        if action == "setup":
            return self.credentials_refused and self.turn is None
        return True

    def action_stop(self) -> None:
        if not self.turns.stop():
            self.library.cancel_edit()

    # The conversation library's keys and the list's requests (ui/library.py, commands/library.py).

    def action_chats(self) -> None:
        self.library.toggle_panel()

    def action_regenerate(self) -> None:
        from edgechat_tui.ui.commands.registry import parse_slash

        self.run_worker(self.run_command(parse_slash("/regen")), group="command", exit_on_error=False)

    def action_branch(self, step: int) -> None:
        # The focused message's versions (Ctrl+↑, then ↑/↓ to it); else the newest message's with several.
        at = message_keys.focused_message_id(self)
        self.run_worker(self.library.switch(step, at=at), group="command", exit_on_error=False)

    def on_conversation_panel_chosen(self, event: ConversationPanel.Chosen) -> None:
        event.stop()
        from edgechat_tui.ui.commands.library import panel_action

        self.run_worker(panel_action(self, event.action, event.summary), group="command",
                        exit_on_error=False)

    def action_retry(self) -> None:
        self.retry()

    def retry(self) -> bool:
        """Send the failed (or taken back) message again; the input is emptied if it holds that text."""
        text = self.failed_text
        if text is None:
            self._status.set_detail("nothing to retry: no message failed")
            return False
        if self.turn is not None:
            self._refuse("A reply is still coming: wait for it, or press Esc to stop it.")
            return False
        if not self.session.ready or self._switch_pending:
            self._refuse(SWITCHING if self._switch_pending else self.session.busy_reason)
            return False
        if self._prompt.text == text:
            self._prompt.clear()
        return self.send(text)

    def action_scroll_chat(self, direction: int) -> None:
        self._log.page(direction)  # a screen per press, every press counted (chat_log.py)

    async def action_latest(self) -> None:
        await self._log.jump_to_end()
        self._log.scroll_to_latest()

    async def action_first(self) -> None:
        await self._log.jump_to_start()

    async def action_load_earlier(self) -> None:
        await self._log.load_earlier()

    def action_ctrl_c(self) -> None:
        message_keys.ctrl_c(self)

    def action_focus_messages(self) -> None:
        message_keys.focus_last_message(self)

    def on_copy_request(self, request: CopyRequest) -> None:
        request.stop()
        message_keys.copy_to_clipboard(self, request.text, request.what)

    async def on_move_focus(self, move: MoveFocus) -> None:
        move.stop()
        await message_keys.move_focus(self, move.widget, move.step, move.typed)

    # --- notices ------------------------------------------------------------------------------

    async def say(self, text: str, *, warning: bool = False) -> None:
        """A notice in the pane (a command's result, a warning)."""
        await self._log.add(Entry("warning" if warning else "info", text))

    async def say_error(self, error: EdgechatError | str, hint: str | None = None) -> None:
        if isinstance(error, EdgechatError):
            error, hint = error.message, error.hint
        await self._log.add(Entry("error", error, hint=hint))

    def messages_shown(self) -> list[Message]:
        """The conversation as shown in the pane (for /export when the agent does not share history)."""
        return [
            Message(role="user" if entry.kind == "user" else "assistant", content=entry.text,
                    stopped=entry.stopped, model=entry.model, time="")
            for entry in self._log.entries
            if entry.kind in ("user", "assistant") and not entry.live
        ]
