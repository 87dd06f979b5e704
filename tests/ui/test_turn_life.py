"""A turn's life at its edges: sending while the agent is not ready, taking a turn back, a reply cut
off, a reply that cannot be shown. Each window is held open by a condition (an event the test sets),
never by a sleep."""

from __future__ import annotations

import asyncio
import threading

from edgechat_tui.backends.local.agent import LocalAgent
from edgechat_tui.ui import app as app_module
from edgechat_tui.ui.markdown.document import RenderedDocument
from edgechat_tui.ui.turn import TurnRunner
from edgechat_tui.ui.widgets.messages import AssistantMessage
from tests.fakes.workers_ai import CutStream, Reply, Stall
from tests.ui.conftest import (
    SIZE,
    make_app,
    send,
    stored_messages,
    type_text,
    wait_ready,
    wait_until,
    write_history,
)


def _hold_history(monkeypatch) -> asyncio.Event:
    """Make every local agent's ``history()`` (and its library's ``branch()``, which the chat screen
    reads instead when the agent keeps conversations) wait until the returned event is set."""
    from edgechat_tui.backends.local.conversations import LocalConversations

    gate = asyncio.Event()
    original = LocalAgent.history
    original_branch = LocalConversations.branch

    async def slow_history(self):
        await gate.wait()
        return await original(self)

    async def slow_branch(self):
        await gate.wait()
        return await original_branch(self)

    monkeypatch.setattr(LocalAgent, "history", slow_history)
    monkeypatch.setattr(LocalConversations, "branch", slow_branch)
    return gate


async def test_a_message_sent_while_the_history_loads_is_kept_in_the_input(settings, fake, monkeypatch):
    write_history(settings.data_dir, "alice", [("old question", "old answer")])
    gate = _hold_history(monkeypatch)
    fake.enqueue(Reply("the answer"))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.chat.status.state == "loading history…", what="the load")
        await send(pilot, "too early")
        assert app.chat.prompt.text == "too early"  # refused: kept, not shown
        assert app.chat.turn is None and fake.run_requests == []
        gate.set()
        await wait_ready(pilot)
        texts = [entry.text for entry in app.chat.chat_log.entries]
        assert texts == ["old question", "old answer"]
        assert app.chat.prompt.text == "too early"
        await pilot.press("enter")  # now it goes, and it stays
        await wait_until(pilot, lambda: len(stored_messages(settings.data_dir, "alice")) == 4,
                         what="the turn saved")
        await wait_ready(pilot)
        assert [entry.text for entry in app.chat.chat_log.entries][2:] == ["too early", "the answer"]


async def test_a_message_typed_during_a_user_switch_is_not_sent_as_the_old_profile(settings, fake,
                                                                                   monkeypatch):
    write_history(settings.data_dir, "bob", [("bob's question", "bob's answer")])
    release = threading.Event()
    original = app_module._create_agent

    def slow_create(settings, user, warn):
        if user == "bob":
            assert release.wait(20), "the test never released bob's agent"
        return original(settings, user, warn)

    monkeypatch.setattr(app_module, "_create_agent", slow_create)
    fake.enqueue(Reply("hello bob"))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        app.chat.prompt.set_text("/user bob")
        await pilot.press("enter")
        await type_text(pilot, "for bob")
        await pilot.press("enter")
        try:
            await wait_until(pilot, lambda: app.chat.status.state == "starting…", what="the switch")
            assert app.chat.prompt.text == "for bob"
            assert app.chat.turn is None and fake.run_requests == []
        finally:
            release.set()
        await wait_until(pilot, lambda: app.chat.user == "bob" and app.chat.status.state == "ready",
                         what="bob's conversation")
        assert app.chat.prompt.text == "for bob"
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(stored_messages(settings.data_dir, "bob")) == 4,
                         what="bob's turn saved")
    assert stored_messages(settings.data_dir, "alice") == []
    assert [m["content"] for m in stored_messages(settings.data_dir, "bob")][2:] == ["for bob", "hello bob"]


async def test_esc_before_the_first_token_with_new_text_keeps_the_sent_message_for_ctrl_r(settings, fake):
    fake.enqueue(Stall(before_headers=True, seconds=30))
    fake.enqueue(Reply("answered at last"))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "the first message")
        await wait_until(pilot, lambda: len(fake.run_requests) == 1, what="the request")
        await type_text(pilot, "new text")
        await pilot.press("escape")
        await wait_ready(pilot)
        assert app.chat.prompt.text == "new text"  # what the user typed meanwhile stays
        assert app.chat.failed_text == "the first message"  # and the sent one is kept for Ctrl+R
        await wait_until(pilot, lambda: any("Ctrl+R" in e.text for e in app.chat.chat_log.entries),
                         what="the notice")
        assert app.chat.check_action("retry", ()) is True
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: len(stored_messages(settings.data_dir, "alice")) == 2,
                         what="the resent turn saved")
        await wait_ready(pilot)
        assert [m["content"] for m in stored_messages(settings.data_dir, "alice")] == [
            "the first message", "answered at last"]
        assert app.chat.prompt.text == "new text"


async def test_a_reply_cut_off_mid_stream_stays_shown_marked_and_ctrl_r_sends_again(settings, fake):
    fake.enqueue(CutStream("This reply will be cut off before it is complete, mid sentence.", after_chunks=4))
    fake.enqueue(Reply("the whole reply"))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "tell me")
        await wait_until(pilot, lambda: app.chat.status.state == "failed", what="the failure")
        log = app.chat.chat_log
        kinds = [entry.kind for entry in log.entries]
        assert kinds == ["user", "assistant", "error"]
        reply = log.entries[1]
        assert reply.text and "This reply" in reply.text and not reply.live and reply.stopped
        widget = reply.widget
        assert isinstance(widget, AssistantMessage) and widget.text == reply.text
        assert "cut off" in str(widget.label.render())
        assert "kept above" in log.entries[2].advice
        assert app.chat.prompt.text == ""  # not put back: Ctrl+R sends it again
        assert app.chat.failed_text == "tell me"
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: any(m["content"] == "the whole reply"
                                            for m in stored_messages(settings.data_dir, "alice")),
                         what="the resent turn saved")
        await wait_ready(pilot)
        assert [entry.kind for entry in log.entries] == ["user", "assistant", "error", "user", "assistant"]
        assert log.entries[1].text == reply.text  # what was shown before is still shown


async def test_a_reply_that_cannot_be_shown_ends_the_turn_with_the_error(settings, fake, monkeypatch):
    """An exception inside the reply widget while it streams: the turn ends, the error is shown, the
    text is back in the input, and the chat is ready again (not stuck in "a reply is still coming")."""
    original = RenderedDocument.render

    def broken(self, **kw):
        if "BOOM" in self._tail or any("BOOM" in block.source for block in self._blocks):
            raise ValueError("injected rendering failure")
        return original(self, **kw)

    monkeypatch.setattr(RenderedDocument, "render", broken)
    fake.enqueue(Reply("A fine start.\n\nThen BOOM and more " * 40, chunk_size=5, delay=0.005))
    fake.enqueue(Reply("shown fine"))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "break it")
        await wait_until(pilot, lambda: app.chat.status.state == "failed", what="the turn to fail")
        assert app.chat.turn is None and app.chat.check_action("stop", ()) is False
        await wait_until(pilot, lambda: any(e.kind == "error" for e in app.chat.chat_log.entries),
                         what="the error in the pane")
        error = next(e for e in app.chat.chat_log.entries if e.kind == "error")
        assert "could not be shown" in error.text and "injected rendering failure" in error.text
        assert [e.kind for e in app.chat.chat_log.entries] == ["error"]
        assert app.chat.prompt.text == "break it"
        monkeypatch.setattr(RenderedDocument, "render", original)
        app.chat.prompt.clear()
        await send(pilot, "again")  # the chat works on
        await wait_until(pilot, lambda: any(m["content"] == "shown fine"
                                            for m in stored_messages(settings.data_dir, "alice")),
                         what="the next turn saved")


async def test_esc_during_the_render_of_a_huge_block_stops_the_turn_at_once(settings, fake, monkeypatch):
    """A single 1.6 MB list streams in; while a background step renders it, Esc ends the turn: the
    turn is stopped before that step is done (the render no longer holds the event loop).

    The step is held in its thread until the turn has stopped, so "before the step is done" is a
    condition the test sets up, not a race it hopes to win."""
    from edgechat_tui.ui.widgets import reply_background

    huge = "".join(f"- item {n} of a very long list that the model keeps writing\n" for n in range(26_000))
    fake.enqueue(Reply(huge, chunk_size=4000, delay=0.02))
    stopped_during: list[tuple[int, bool, float]] = []
    original = TurnRunner._stopped
    gate = threading.Event()
    gate.set()
    held = threading.Event()
    real_step = reply_background.render_step

    def gated_step(*args, **kwargs):
        if not gate.is_set():
            held.set()
            gate.wait(60)
        return real_step(*args, **kwargs)

    def recording_stopped(self, turn):
        body = turn.reply.body
        stopped_during.append((body.background_steps, body.rendering_in_background,
                               asyncio.get_running_loop().time()))
        return original(self, turn)

    monkeypatch.setattr(reply_background, "render_step", gated_step)
    monkeypatch.setattr(TurnRunner, "_stopped", recording_stopped)
    app = make_app(settings)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await send(pilot, "write a long list")
            await wait_until(pilot, lambda: app.chat.turn is not None and app.chat.turn.reply is not None
                             and len(app.chat.turn.reply.text) > 300_000,
                             timeout=60, what="a long block streamed in")
            gate.clear()  # the next step waits in its thread
            await wait_until(pilot, lambda: held.is_set() and app.chat.turn is not None
                             and app.chat.turn.reply.body.rendering_in_background,
                             timeout=60, what="a background render of a long block")
            body = app.chat.turn.reply.body
            steps_before = body.background_steps
            pressed = asyncio.get_running_loop().time()
            await pilot.press("escape")
            await wait_until(pilot, lambda: app.chat.turn is None, what="the turn to stop")
            assert len(stopped_during) == 1
            steps_at_stop, rendering_at_stop, stopped_at = stopped_during[0]
            # The turn stopped while the step that was rendering was still at work.
            assert steps_at_stop == steps_before and rendering_at_stop
            print(f"Esc to stopped: {1000 * (stopped_at - pressed):.0f} ms (loop time)")
            gate.set()
            await wait_until(pilot, lambda: body.settled, timeout=60, what="the stopped reply rendered")
            entry = app.chat.chat_log.entries[-1]
            assert entry.stopped and entry.text == body.markdown
    finally:
        gate.set()


def _burst(prompt, text: str) -> None:
    """Keys as a terminal delivers a fast typist's (or a paste's) burst: all queued before any is handled."""
    from textual import events

    for char in text:
        key = {"\r": "enter", " ": "space"}.get(char, char)
        prompt.post_message(events.Key(key, None if char == "\r" else char))


async def test_a_message_typed_in_one_burst_after_a_command_is_never_lost(settings, fake, monkeypatch):
    """`/user bob⏎hello bob⏎` arriving at once: the keys after the first Enter are typed before the screen
    sees that Enter. The second line is kept (in the input, or sent as bob), never wiped by the command."""
    write_history(settings.data_dir, "bob", [("bob's question", "bob's answer")])
    fake.enqueue(Reply("hello to you, bob"))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        _burst(app.chat.prompt, "/user bob\rhello bob\r")
        await wait_until(pilot, lambda: app.chat.user == "bob" and app.chat.status.state == "ready",
                         what="bob's conversation")
        await pilot.pause()
        sent = [m["content"] for m in stored_messages(settings.data_dir, "bob") if m["role"] == "user"]
        assert "hello bob" in app.chat.prompt.text or "hello bob" in sent, (app.chat.prompt.text, sent)
        assert not [m for m in stored_messages(settings.data_dir, "alice") if m["content"] == "hello bob"]
        if "hello bob" in app.chat.prompt.text:
            await pilot.press("enter")
            await wait_until(pilot, lambda: len(stored_messages(settings.data_dir, "bob")) == 4,
                             what="the message sent as bob")


async def test_a_line_typed_right_after_enter_starts_a_new_text(settings, fake):
    """Keys queued behind an Enter belong to the next message, not to the one sent."""
    fake.enqueue(Reply("first answer"), Reply("second answer"))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        _burst(app.chat.prompt, "first\rsecond")
        await wait_until(pilot, lambda: len(stored_messages(settings.data_dir, "alice")) == 2,
                         what=f"the first turn (input: {app.chat.prompt.text!r})")
        assert stored_messages(settings.data_dir, "alice")[0]["content"] == "first"
        assert app.chat.prompt.text == "second"
