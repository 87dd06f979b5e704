"""A turn's life in the UI: run it, stop it, fail it, take it back.

A turn runs in one worker (group ``turn``) that iterates ``agent.send()``. Esc cancels that worker:
the agent ends the request and keeps what arrived, marked stopped. A failure (an
:class:`EdgechatError` from the iteration, or an exception while showing the reply) ends the turn
with the error in the pane. Whatever ends a turn, the turn is over afterwards: the screen never
stays in "a reply is still coming".

**Taking back** is one path, for a stop before the first token and for a failure with nothing
shown: the turn leaves the pane, and the text goes back into the input if the input is empty;
if the user typed something new meanwhile, that stays, and the sent text is kept for Ctrl+R
(``/retry``), which a notice in the pane says. Nothing the user sent is lost either way.

**Cut off**: a failure after text had arrived (a dropped connection) keeps what was shown, marked
cut off, and Ctrl+R sends the message again.

Streamed text goes to the reply widget piece by piece; the widget renders at most once a frame,
so a fast stream costs one render per frame, not one per token. The status line's figures are
refreshed four times a second.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from textual.timer import Timer
from textual.worker import Worker

from edgechat_tui.backends.base import Agent
from edgechat_tui.core.catalog import ModelPrice
from edgechat_tui.core.errors import ConversationConflict, EdgechatError, HistoryChanged, StorageError
from edgechat_tui.core.messages import Done, Event, Retrying, TextDelta
from edgechat_tui.ui.history_watch import HistoryWatch
from edgechat_tui.ui.meter import TurnMeter, short_count
from edgechat_tui.ui.usage_text import reply_usage_line
from edgechat_tui.ui.widgets.chat_log import ChatLog, Entry
from edgechat_tui.ui.widgets.messages import AssistantMessage
from edgechat_tui.ui.widgets.prompt import PromptArea
from edgechat_tui.ui.widgets.status import StatusLine

__all__ = ["KEPT_ADVICE", "RESTORED_ADVICE", "Turn", "TurnHost", "TurnRunner"]

RESTORED_ADVICE = "Your message is back in the input: press Enter to send it again (or /retry, Ctrl+R)."
KEPT_ADVICE = "Your new text is kept in the input; press Ctrl+R (or /retry) to send the failed message again."
REFUSED_BACK = "Your message is back in the input."
REFUSED_KEPT = "Your new text is kept in the input; the refused message is kept for Ctrl+R (/retry)."
STOPPED_KEPT = ("Stopped before the reply began. Your new text is kept in the input; press Ctrl+R "
                "(or /retry) to send the stopped message again.")
CUT_OFF_ADVICE = ("What arrived is kept above, marked cut off. Press Ctrl+R (or /retry) to send the "
                  "message again.")
UI_FAILURE_HINT = "this is a bug in edgechat; please report it"
# Sends of one turn refused because the conversation changed elsewhere, before giving up.
SEND_ATTEMPTS = 3
NOTHING_CHANGED = "Nothing was changed: run the command again to try once more."
CUT_OFF_AGAIN = "What arrived is kept above, marked cut off. Run the command again to try once more."


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
    #: What the turn asks of the agent (the conversation library's turns besides "chat"):
    #: "chat" sends ``text``; "edit" sends ``text`` as a new version of the last question;
    #: "regenerate" and "continue" send nothing typed (``text`` is empty, nothing goes back to the
    #: input or to Ctrl+R; the command is run again instead).
    action: str = "chat"
    #: The reply's text before the turn ("continue" goes on from it).
    reply_prefix: str = ""
    #: The Done that completed the turn, once it has.
    result: Done | None = None

    @property
    def typed(self) -> bool:
        """The turn sends text the user typed (it goes back to the input if the turn is taken back)."""
        return self.action in ("chat", "edit")

    @property
    def reply(self) -> AssistantMessage | None:
        widget = self.reply_entry.widget if self.reply_entry else None
        return widget if isinstance(widget, AssistantMessage) else None

    @property
    def shown_text(self) -> str:
        """What of the reply reached the screen (empty before the first token)."""
        reply = self.reply
        if reply is not None:
            return reply.text
        return self.reply_entry.text if self.reply_entry is not None else ""


class TurnHost(Protocol):
    """What a turn needs of the screen it runs on (the chat screen is one)."""

    @property
    def chat_log(self) -> ChatLog: ...
    @property
    def prompt(self) -> PromptArea: ...
    @property
    def status(self) -> StatusLine: ...
    @property
    def streams(self) -> bool: ...

    def set_interval(self, interval: float, callback: object) -> Timer: ...
    def refresh_bindings(self) -> None: ...
    def show_ready(self, detail: str | None = None) -> None: ...
    def refresh_context(self, next_text: str = "") -> None: ...
    def reply_price(self, model: str | None) -> ModelPrice | None: ...
    @property
    def history_watch(self) -> HistoryWatch: ...


class TurnRunner:
    """Runs the turns of one screen, one at a time, and remembers the text to resend."""

    def __init__(self, host: TurnHost) -> None:
        self._host = host
        self.turn: Turn | None = None
        #: The text Ctrl+R (/retry) sends again: a failed turn's, or one taken back while new text
        #: was in the input.
        self.retry_text: str | None = None
        #: The last turn's failure (None once a turn starts again), and what the screen offers for
        #: one, added to the error's advice (new credentials after a 401).
        self.failure: EdgechatError | None = None
        self.failure_offer: Callable[[EdgechatError], str | None] | None = None

    # --- the turn -----------------------------------------------------------------------------

    async def run(self, turn: Turn, agent: Agent) -> None:
        """The worker's body: show the turn, stream the reply, end the turn whatever happens."""
        host = self._host
        log = host.chat_log
        self.failure = None
        try:
            seen = await self._show_turn(turn, agent)
            turn.ticker = host.set_interval(0.25, lambda: self._tick(turn))
            for attempt in range(SEND_ATTEMPTS):
                try:
                    async for event in _events(turn, agent, seen):
                        if isinstance(event, TextDelta):
                            self._queue_text(turn, event.text)
                        elif isinstance(event, Retrying):
                            turn.retry = event
                            turn.retry_deadline = time.monotonic() + event.wait
                            self._tick(turn)
                        elif isinstance(event, Done):
                            self._finish(turn, event)
                    break
                except HistoryChanged:
                    # Another process added turns: nothing was sent. They go on screen, above the
                    # question, before it is sent again: a reply never answers what is not shown.
                    if attempt == SEND_ATTEMPTS - 1:
                        raise
                    for entry in (turn.reply_entry, turn.user_entry):
                        if entry is not None:
                            log.discard_entry(entry)
                    await host.history_watch.sync()
                    seen = await self._show_turn(turn, agent)
        except asyncio.CancelledError:
            self._stopped(turn)
            raise
        except EdgechatError as error:
            # A reply cut short by the server or the network keeps what was shown: the Agent base
            # saved it, marked stopped, and set ``kept_partial`` to its Done. A failed save (nothing
            # stored, no ``kept_partial``) takes the turn back, as before any text.
            kept = getattr(error, "kept_partial", None) is not None
            keep_shown = kept or (not hasattr(error, "kept_partial") and not isinstance(error, StorageError))
            self.failure = error
            offer = self.failure_offer(error) if self.failure_offer is not None else None
            await self._failed(turn, error.message, error.hint, keep_shown=keep_shown, kept=kept, offer=offer,
                               refused=isinstance(error, ConversationConflict))
        except Exception as error:  # a bug (in the agent or in showing the reply): end the turn, say it
            await self._failed(turn, f"Unexpected error: {type(error).__name__}: {error}", UI_FAILURE_HINT)
        finally:
            self._end(turn)

    async def _show_turn(self, turn: Turn, agent: Agent) -> int:
        """Put the question and the reply to come at the end of the pane; returns the stored
        messages shown above them (what the agent is told the user has seen)."""
        log = self._host.chat_log
        seen = log.message_count()
        if turn.typed:
            turn.user_entry = Entry("user", turn.text)
            await log.add(turn.user_entry)
        turn.reply_entry = Entry("assistant", turn.reply_prefix, model=agent.info.model, live=True)
        await log.add(turn.reply_entry)
        log.scroll_to_latest()
        self._show_waiting(turn)
        return seen

    def stop(self) -> bool:
        """Esc: cancel the turn's worker. False when no turn is under way."""
        turn = self.turn
        if turn is None or turn.worker is None or turn.done:
            return False
        turn.worker.cancel()
        return True

    def display_failed(self, error: BaseException) -> None:
        """Showing the live reply raised (a bug): end the turn as failed, at once.

        The request is cancelled, the turn leaves the pane, the text goes back (one take-back
        path), and the error says what happened. Never left in "a reply is still coming".
        """
        turn = self.turn
        if turn is None or turn.done:
            return
        turn.done = True
        if turn.worker is not None:
            turn.worker.cancel()
        host = self._host
        self.retry_text = turn.text if turn.typed else None
        self._take_back(turn)
        message = f"The reply could not be shown: {type(error).__name__}: {error}"
        host.chat_log.call_later(host.chat_log.add, Entry("error", message, hint=UI_FAILURE_HINT,
                                                          advice=self._advice(turn)))
        host.status.set_state("failed", "error", detail="the reply could not be shown · Ctrl+R retries")
        self._end(turn)

    # --- what arrives -------------------------------------------------------------------------

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
        if not self._host.streams:
            waited = f"{turn.meter.waited():.0f} s"
            self._host.status.set_state("waiting for the agent", "busy",
                                        detail=f"it sends the whole reply at once · {waited} · Esc stops")
        else:
            self._host.status.set_state("waiting for the reply…", "busy", detail="Esc stops")

    def _show_streaming(self, turn: Turn) -> None:
        rate = turn.meter.tokens_per_second()
        detail = tokens_text(turn.meter.tokens)
        if rate is not None:
            detail += f" · {rate:.0f} tok/s"
        self._host.status.set_state("streaming", "busy", detail=detail + " · Esc stops")

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
            self._host.status.set_state(state, "warning", detail=detail)
            if turn.reply is not None:
                # The reason goes in the pane at once too: the status line may be cut at its end.
                turn.reply.set_note(f"{state} · {reason}")
        elif turn.meter.first_text_at is None:
            self._show_waiting(turn)
        else:
            self._show_streaming(turn)

    # --- how it ends --------------------------------------------------------------------------

    def _finish(self, turn: Turn, done: Done) -> None:
        turn.done = True
        turn.result = done
        reply, entry = turn.reply, turn.reply_entry
        if entry is not None:
            entry.live = False
            entry.text = done.message.content
            entry.stopped = done.stopped
            entry.model = done.message.model or entry.model
        if reply is not None and not reply.text and done.message.content:
            reply.append(done.message.content)  # an agent that does not stream sends it all here
        if reply is not None:
            reply.finish(stopped=done.stopped)
        turn.meter.finish(done.usage)
        if entry is not None and not done.stopped:
            entry.usage = done.usage
            entry.figures = reply_usage_line(done.usage, self._host.reply_price(entry.model),
                                             seconds=turn.meter.seconds(),
                                             tokens_per_second=turn.meter.final_rate())
            if reply is not None:
                reply.set_usage(entry.figures)
        self._host.show_ready(detail=f"last reply {tokens_text(turn.meter.tokens)}")
        # Done.context describes the request just sent; the status line is about the next one.
        self._host.refresh_context()

    def _stopped(self, turn: Turn) -> None:
        """Esc: keep what arrived, marked stopped; with nothing arrived, take the turn back."""
        if turn.done:
            return
        turn.done = True
        reply, entry = turn.reply, turn.reply_entry
        host = self._host
        if reply is not None and reply.text:
            if entry is not None:
                entry.live = False
                entry.text = reply.text
                entry.stopped = True
            _finish_quietly(reply, stopped=True)
            host.show_ready(detail="reply stopped; what arrived is kept, marked stopped")
        elif not turn.typed:
            self._take_back(turn)
            host.show_ready(detail="stopped before the reply began: nothing changed")
        elif self._take_back(turn):
            host.show_ready(detail="stopped before the reply began: your message is back in the input")
        else:
            self.retry_text = turn.text
            host.chat_log.call_later(host.chat_log.add, Entry("info", STOPPED_KEPT))
            host.show_ready(detail="stopped before the reply began · Ctrl+R sends it again")
        host.refresh_context()

    async def _failed(self, turn: Turn, message: str, hint: str | None, *, keep_shown: bool = False,
                      kept: bool | None = None, offer: str | None = None, refused: bool = False) -> None:
        """``refused``: the agent refused the turn as the conversation is (archived, say): sending
        it again as it is cannot help, so nothing offers that."""
        turn.done = True
        host = self._host
        self.retry_text = turn.text if turn.typed else None
        shown = turn.shown_text
        if shown and keep_shown:
            # What the user was reading stays, marked cut off; Ctrl+R sends the message again.
            reply, entry = turn.reply, turn.reply_entry
            if entry is not None:
                entry.live = False
                entry.text = shown
                entry.stopped = True
            if reply is not None:
                _finish_quietly(reply, stopped=True, cut_off=True)
            advice = CUT_OFF_ADVICE if turn.typed else CUT_OFF_AGAIN
            detail = ("cut off · what arrived is saved, marked stopped · Ctrl+R retries" if kept
                      else "cut off · Ctrl+R retries")
        else:
            self._take_back(turn)
            advice = self._advice(turn)
            detail = "nothing was saved · Ctrl+R retries"
            if refused:
                back = self._host.prompt.text == turn.text
                advice = REFUSED_BACK if back else REFUSED_KEPT
                detail = "refused · nothing was sent"
        if offer:
            advice = f"{advice} {offer}"
        # Awaited here (not scheduled) so that the error is in the pane before /retry can run.
        await host.chat_log.add(Entry("error", message, hint=hint, advice=advice))
        host.status.set_state("failed", "error", detail=detail)
        # The context changed too: a cut-off reply kept in the history, the text back in the input.
        host.refresh_context(host.prompt.text)
        host.refresh_bindings()

    def _advice(self, turn: Turn) -> str:
        if not turn.typed:
            return NOTHING_CHANGED
        return RESTORED_ADVICE if self._host.prompt.text == turn.text else KEPT_ADVICE

    def _take_back(self, turn: Turn) -> bool:
        """Remove the turn from the pane; put its text back in the input if that is empty.

        True if the text is back in the input. Not awaited: this also runs in a cancelled
        worker, which must not wait on the screen.
        """
        log = self._host.chat_log
        if turn.reply_entry is not None:
            turn.reply_entry.live = False
            log.discard_entry(turn.reply_entry)
        if turn.user_entry is not None:
            log.discard_entry(turn.user_entry)
        prompt = self._host.prompt
        if not turn.typed:
            return False
        if not prompt.text.strip():
            prompt.set_text(turn.text)
            return True
        return prompt.text == turn.text

    def _end(self, turn: Turn) -> None:
        if turn.ticker is not None:
            turn.ticker.stop()
            turn.ticker = None
        if self.turn is turn:
            self.turn = None
        self._host.prompt.clear_refusal()
        self._host.refresh_bindings()


def tokens_text(n: int) -> str:
    """``1 token``, ``950 tokens``, ``3.1k tokens``."""
    return "1 token" if n == 1 else f"{short_count(n)} tokens"


def _events(turn: Turn, agent: Agent, seen: int | None = None) -> AsyncIterator[Event]:
    """The agent's event stream for the turn's action."""
    if turn.action == "regenerate":
        return agent.regenerate()
    if turn.action == "edit":
        return agent.edit(turn.text)
    if turn.action == "continue":
        return agent.continue_reply()
    return agent.send(turn.text, seen=seen)


def _finish_quietly(reply: AssistantMessage, **how: bool) -> None:
    """End a reply's widget while the turn is ending anyway: a failure there must not stop that."""
    try:
        reply.finish(**how)
    except Exception as error:
        reply.log.error("finishing the reply failed", repr(error))
