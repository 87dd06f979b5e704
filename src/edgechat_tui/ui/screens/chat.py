"""The chat screen: header, conversation, input, status line, footer; and the life of a turn.

A turn runs in one worker (group ``turn``) that iterates ``agent.send()``. Esc cancels that worker:
the agent ends the request and keeps what arrived, marked stopped; if nothing had arrived the
user's text goes back into the input. A failure (an :class:`EdgechatError` from the iteration)
takes the turn out of the pane, shows the error with its hint, and puts the text back.

Streamed text goes to the reply widget piece by piece; the widget renders at most once a frame,
so a fast stream costs one render per frame, not one per token. The status line's figures are
refreshed four times a second.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, TextArea
from textual.worker import Worker

from edgechat_tui.backends.base import Agent
from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.core.messages import ContextInfo, Done, Message, Retrying, TextDelta
from edgechat_tui.ui.chat_commands import ChatCommandsMixin
from edgechat_tui.ui.meter import TurnMeter, context_text, short_count
from edgechat_tui.ui.slash import invocation_problem, message_text, parse_slash, suggest
from edgechat_tui.ui.widgets.chat_log import ChatLog, Entry
from edgechat_tui.ui.widgets.header import ChatHeader
from edgechat_tui.ui.widgets.messages import AssistantMessage
from edgechat_tui.ui.widgets.prompt import CommandSuggestions, PromptArea
from edgechat_tui.ui.widgets.status import StatusLine

# The context preview is recomputed this long after the user stops typing.
PREVIEW_DELAY = 0.4
# While a reply streams, a key typed holds its next render this long, so the frame showing the
# key does not also lay out the growing reply (which made typing lag; see docs/tui.md).
KEY_HOLD = 0.06
RESTORED_ADVICE = "Your message is back in the input: press Enter to send it again (or /retry, Ctrl+R)."
KEPT_ADVICE = "Your new text is kept in the input; press Ctrl+R (or /retry) to send the failed message again."


@dataclass(eq=False)
class Turn:
    """One message on its way: what was sent, its entries in the pane, and how it is going."""

    text: str
    meter: TurnMeter = field(default_factory=TurnMeter)
    user_entry: Entry | None = None
    reply_entry: Entry | None = None
    retry: Retrying | None = None
    retry_deadline: float = 0.0
    ticker: Timer | None = None
    done: bool = False
    worker: Worker | None = None

    @property
    def reply(self) -> AssistantMessage | None:
        widget = self.reply_entry.widget if self.reply_entry else None
        return widget if isinstance(widget, AssistantMessage) else None


class ChatScreen(ChatCommandsMixin, Screen[None]):
    """The main screen. The app gives it an agent with :meth:`attach`."""

    DEFAULT_CSS = """
    ChatScreen { layout: vertical; }
    ChatScreen #composer { height: auto; }
    """
    AUTO_FOCUS = "#prompt"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop reply"),
        Binding("ctrl+r", "retry", "Retry"),
        Binding("f1", "help", "Help"),
        Binding("pageup", "scroll_chat(-1)", "Scroll up", show=False, priority=True),
        Binding("pagedown", "scroll_chat(1)", "Scroll down", show=False, priority=True),
        Binding("ctrl+end", "latest", "Newest", show=False),
    ]

    def __init__(self, *, user: str, mode: str, model: str | None) -> None:
        super().__init__()
        self.user = user
        self.agent: Agent | None = None
        self.turn: Turn | None = None
        #: The text of the last turn that failed, for /retry.
        self.failed_text: str | None = None
        self._preview_timer: Timer | None = None
        self._loading = False
        self._held_warnings: list[str] = []
        self._header = ChatHeader(user, mode, model, id="header")
        self._log = ChatLog(id="chat")
        self._suggestions = CommandSuggestions(id="suggestions")
        self._prompt = PromptArea(id="prompt", suggestions=self._suggestions, completer=self._complete)
        self._status = StatusLine(id="status")

    def compose(self) -> ComposeResult:
        yield self._header
        yield self._log
        with Vertical(id="composer"):
            yield self._suggestions
            yield self._prompt
        yield self._status
        yield Footer()

    # --- parts, for the app and the tests ------------------------------------------------------

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
    def streaming(self) -> bool:
        return self.turn is not None

    # --- the agent ----------------------------------------------------------------------------

    def connecting(self, what: str) -> None:
        self._status.set_state(what, "busy")

    def warn(self, text: str) -> None:
        """A warning (from the config, the agent, its store) shown in the pane, after the history."""
        if self._loading or self.agent is None:
            self._held_warnings.append(text)
        else:
            self.run_worker(self.say(text, warning=True), exit_on_error=False)

    async def show_held_warnings(self) -> None:
        """Show the warnings held for the history (when there will be none: the agent failed)."""
        held, self._held_warnings = self._held_warnings, []
        for text in held:
            await self.say(text, warning=True)

    async def attach(self, agent: Agent) -> None:
        """Use ``agent`` from now on (at start and after /user): header, history, context."""
        self._loading = True
        try:
            await self._load_agent(agent)
        finally:
            self._loading = False

    async def _load_agent(self, agent: Agent) -> None:
        self.agent = agent
        self.user = agent.info.user
        self.failed_text = None
        self._show_info_header()
        self._status.set_state("loading history…", "busy")
        entries: list[Entry] = []
        recall: list[str] = []
        try:
            history = await agent.history()
        except EdgechatError as error:
            history = []
            entries.append(Entry("error", error.message, hint=error.hint,
                                 advice="The conversation could not be loaded; new messages may still work."))
        if history is None:
            entries.append(Entry("info", "This agent does not share its history: earlier messages are not "
                                         "shown here, though the agent may still remember them."))
        else:
            entries[:0] = [Entry.from_message(message) for message in history if message.role != "system"]
            recall = [message.content for message in history if message.role == "user"]
        self._prompt.recall_list = recall[-500:]
        # Warnings raised while the history loaded (a damaged line...) come after it.
        entries += [Entry("warning", text) for text in self._held_warnings]
        self._held_warnings.clear()
        await self._log.show_conversation(entries, user=self.user)
        self._set_ready()
        self.refresh_context()

    def _show_info_header(self) -> None:
        if self.agent is None:
            return
        info = self.agent.info
        mode = "local" if info.mode == "local" else f"remote {info.host or ''}".strip()
        self._header.show(user=info.user, mode=mode, model=info.model)

    def _set_ready(self, detail: str | None = None) -> None:
        if self.agent is None:
            return
        info = self.agent.info
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
        if self.agent is None:
            return
        agent = self.agent

        async def preview() -> None:
            try:
                info = await agent.context_preview(next_text)
            except EdgechatError:
                info = None
            if agent is self.agent:
                self._show_context(info)

        self.run_worker(preview(), group="context-preview", exclusive=True, exit_on_error=False)

    def _show_context(self, info: ContextInfo | None) -> None:
        self._status.set_context(context_text(info) if info else None)

    # --- input --------------------------------------------------------------------------------

    def _complete(self, text: str) -> list:
        models: list[str] = []
        if text.startswith("/model"):
            from edgechat_tui.backends.local.context import CONTEXT_WINDOWS

            models = list(CONTEXT_WINDOWS)
        themes = list(self.app.available_themes) if text.startswith("/theme") else []
        return suggest(text, themes=themes, models=models)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area is not self._prompt:
            return
        reply = self.turn.reply if self.turn is not None else None
        if reply is not None and reply.live:
            reply.body.hold(KEY_HOLD)
        if self._preview_timer is not None:
            self._preview_timer.stop()
        if self.agent is not None and self.turn is None:
            text = self._prompt.text
            self._preview_timer = self.set_timer(PREVIEW_DELAY, lambda: self.refresh_context(text))

    def on_prompt_area_submitted(self, event: PromptArea.Submitted) -> None:
        event.stop()
        text = event.text
        invocation = parse_slash(text)
        if invocation is not None:
            self._prompt.close_suggestions()
            if invocation_problem(invocation) is None:
                # Cleared now, not when the command ends: the user may already be typing.
                self._prompt.remember(text.strip())
                self._prompt.clear()
            # Some commands take a while (/user loads a history, /export writes a file).
            self.run_worker(self.run_command(invocation), group="command", exit_on_error=False)
            return
        self.send(message_text(text), from_prompt=True)

    def send(self, text: str, *, from_prompt: bool = False) -> bool:
        """Start a turn with ``text``. Returns False (and says why) when it cannot be sent now."""
        if not text.strip():
            return False
        if self.turn is not None:
            self._refuse("A reply is still coming: wait for it, or press Esc to stop it. "
                         "Your text stays in the input.")
            return False
        if self.agent is None:
            self._refuse("Not connected yet: the message stays in the input.")
            return False
        if from_prompt:
            self._prompt.clear()
        self._prompt.remember(text)
        self.failed_text = None
        turn = Turn(text)
        self.turn = turn
        self.refresh_bindings()
        turn.worker = self.run_worker(self._run_turn(turn, self.agent), group="turn", exclusive=True,
                                      exit_on_error=False)
        return True

    def _refuse(self, reason: str) -> None:
        self._prompt.show_refusal(reason.split(":")[0] + ": wait, or press Esc to stop it"
                                  if self.turn is not None else reason)
        self.app.bell()
        self.notify(reason, severity="warning", markup=False, timeout=4)

    # --- a turn -------------------------------------------------------------------------------

    async def _run_turn(self, turn: Turn, agent: Agent) -> None:
        log = self._log
        turn.user_entry = Entry("user", turn.text)
        await log.add(turn.user_entry)
        turn.reply_entry = Entry("assistant", "", model=agent.info.model, live=True)
        await log.add(turn.reply_entry)
        log.scroll_to_latest()
        self._show_waiting(turn)
        turn.ticker = self.set_interval(0.25, lambda: self._tick(turn))
        try:
            async for event in agent.send(turn.text):
                if isinstance(event, TextDelta):
                    self._queue_text(turn, event.text)
                elif isinstance(event, Retrying):
                    turn.retry = event
                    turn.retry_deadline = time.monotonic() + event.wait
                    self._tick(turn)
                elif isinstance(event, Done):
                    self._finish(turn, event)
        except asyncio.CancelledError:
            self._stopped(turn)
            raise
        except EdgechatError as error:
            await self._failed(turn, error.message, error.hint)
        except Exception as error:  # a bug: show it in the pane rather than lose the text
            self.log.error("turn failed", repr(error))
            await self._failed(turn, f"Unexpected error: {type(error).__name__}: {error}",
                         "this is a bug in edgechat; please report it")
        finally:
            self._end_turn(turn)

    def _queue_text(self, turn: Turn, text: str) -> None:
        # The reply widget takes every piece and renders at most once a frame itself; the status
        # line's speed is refreshed by the quarter-second ticker, not per piece.
        first = turn.meter.first_text_at is None
        turn.meter.add_text(text)
        turn.retry = None
        reply = turn.reply
        if reply is not None and reply.live:
            reply.append(text)
        if first:
            self._show_streaming(turn)

    def _show_waiting(self, turn: Turn) -> None:
        info = self.agent.info if self.agent else None
        if info is not None and not info.streams:
            waited = f"{turn.meter.waited():.0f} s"
            self._status.set_state("waiting for the agent", "busy",
                                   detail=f"it sends the whole reply at once · {waited} · Esc stops")
        else:
            self._status.set_state("waiting for the reply…", "busy", detail="Esc stops")

    def _show_streaming(self, turn: Turn) -> None:
        rate = turn.meter.tokens_per_second()
        detail = f"{short_count(turn.meter.tokens)} tokens"
        if rate is not None:
            detail += f" · {rate:.0f} tok/s"
        self._status.set_state("streaming", "busy", detail=detail + " · Esc stops")

    def _tick(self, turn: Turn) -> None:
        """Every quarter second of a turn: the retry countdown, or the time spent waiting."""
        if turn.done or self.turn is not turn:
            return
        if turn.retry is not None:
            retry = turn.retry
            left = max(0.0, turn.retry_deadline - time.monotonic())
            reason = retry.reason.rstrip(".")
            if left > 0:
                state = f"retrying in {math.ceil(left)} s"
                detail = f"attempt {retry.attempt} of {retry.max_attempts} failed: {reason} · Esc cancels"
            else:
                state = f"retrying (attempt {retry.attempt + 1} of {retry.max_attempts})"
                detail = "Esc cancels"
            self._status.set_state(state, "warning", detail=detail)
            if turn.reply is not None:
                turn.reply.set_note(state)
        elif turn.meter.first_text_at is None:
            self._show_waiting(turn)
        else:
            self._show_streaming(turn)

    def _finish(self, turn: Turn, done: Done) -> None:
        turn.done = True
        reply, entry = turn.reply, turn.reply_entry
        if reply is not None and not reply.text and done.message.content:
            reply.append(done.message.content)  # an agent that does not stream sends it all here
        if reply is not None:
            reply.finish(stopped=done.stopped)
        if entry is not None:
            entry.live = False
            entry.text = done.message.content
            entry.stopped = done.stopped
            entry.model = done.message.model or entry.model
        turn.meter.finish(done.usage)
        tokens = turn.meter.tokens
        self._set_ready(detail=f"last reply {short_count(tokens)} tokens")
        # Done.context describes the request just sent; the status line is about the next one.
        self.refresh_context()

    def _stopped(self, turn: Turn) -> None:
        """Esc: keep what arrived, marked stopped; with nothing arrived, give the text back."""
        if turn.done:
            return
        turn.done = True
        reply, entry = turn.reply, turn.reply_entry
        if reply is not None and reply.text:
            reply.finish(stopped=True)
            if entry is not None:
                entry.live = False
                entry.text = reply.text
                entry.stopped = True
            self._set_ready(detail="reply stopped; what arrived is kept, marked stopped")
        else:
            self._take_back(turn)
            self._set_ready(detail="stopped before the reply began: your message is back in the input")
        self.refresh_context()

    async def _failed(self, turn: Turn, message: str, hint: str | None) -> None:
        turn.done = True
        self._take_back(turn)
        self.failed_text = turn.text
        advice = RESTORED_ADVICE if self._prompt.text == turn.text else KEPT_ADVICE
        # Awaited here (not scheduled) so that the error is in the pane before /retry can run.
        await self._log.add(Entry("error", message, hint=hint, advice=advice))
        self._status.set_state("failed", "error", detail="nothing was saved · Ctrl+R retries")
        self.refresh_bindings()

    def _take_back(self, turn: Turn) -> None:
        """Remove the turn from the pane and put its text back in the input (if that is empty).

        Not awaited: this also runs in a cancelled worker, which must not wait on the screen.
        """
        if turn.reply_entry is not None:
            turn.reply_entry.live = False
            self._log.discard_entry(turn.reply_entry)
        if turn.user_entry is not None:
            self._log.discard_entry(turn.user_entry)
        if not self._prompt.text.strip():
            self._prompt.set_text(turn.text)

    def _end_turn(self, turn: Turn) -> None:
        if turn.ticker is not None:
            turn.ticker.stop()
            turn.ticker = None
        if self.turn is turn:
            self.turn = None
        self._prompt.clear_refusal()
        self.refresh_bindings()

    # --- keys ---------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.turn is not None
        if action == "retry":
            return self.failed_text is not None and self.turn is None
        return True

    def action_stop(self) -> None:
        turn = self.turn
        if turn is not None and turn.worker is not None and not turn.done:
            turn.worker.cancel()

    def action_retry(self) -> None:
        self.retry()

    def retry(self) -> bool:
        """Send the failed message again; the input is emptied if it holds that same text."""
        text = self.failed_text
        if text is None:
            self._status.set_detail("nothing to retry: no message failed")
            return False
        if self.turn is not None:
            self._refuse("A reply is still coming: wait for it, or press Esc to stop it.")
            return False
        if self._prompt.text == text:
            self._prompt.clear()
        return self.send(text)

    def action_help(self) -> None:
        from edgechat_tui.ui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen())

    def action_scroll_chat(self, direction: int) -> None:
        if direction < 0:
            self._log.scroll_page_up()
        else:
            self._log.scroll_page_down()

    async def action_latest(self) -> None:
        if self._log.window[1] < len(self._log.entries):
            await self._log.jump_to_end()
        self._log.scroll_to_latest()

    async def action_load_earlier(self) -> None:
        await self._log.load_earlier()

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
