"""Talking: first frame, history, sending, streaming, following the stream, stop, retries, failures."""

from __future__ import annotations

import asyncio
import threading

from textual import events

from edgechat_tui.ui.widgets.messages import AssistantMessage, ErrorNotice, UserMessage
from tests.fakes.workers_ai import ErrorReply, Reply, capacity_error, quota_error
from tests.ui.conftest import (
    SIZE,
    make_app,
    screen_text,
    send,
    stored_messages,
    type_text,
    wait_ready,
    wait_until,
    write_history,
)

LONG_REPLY = "".join(f"Paragraph {i} of a long answer, long enough to wrap once or twice.\n\n"
                     for i in range(60))


async def test_first_frame_has_header_and_focused_input_before_the_agent(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        # The very first frame: nothing has been loaded yet, the input already takes keys.
        assert app.agent is None
        assert app.focused is app.chat.prompt
        text = screen_text(app)
        assert "alice" in text and "local" in text and settings.model in text
        await wait_ready(pilot)
        assert fake.run_requests == []  # starting makes no call to the model


async def test_history_is_shown_scrolled_to_the_end(tmp_path, settings):
    write_history(settings.data_dir, "alice", [(f"q{i}", f"a{i}\n\n" + "line\n\n" * 5) for i in range(12)])
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        assert [e.kind for e in log.entries[:2]] == ["user", "assistant"]
        assert len(log.entries) == 24
        await wait_until(pilot, lambda: log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y,
                         what="the pane at its end")
        assert "a11" in screen_text(app)
        await wait_until(pilot, lambda: "24 of 24 messages" in app.chat.status.plain, what="the context")
        # Up in the empty input recalls what the user sent.
        await pilot.press("up")
        assert app.chat.prompt.text == "q11"


async def test_send_streams_the_reply_and_saves_the_turn(settings, fake):
    fake.enqueue(Reply("# Title\n\nSome **bold** text.\n\n```python\nprint('hi')\n```\n", chunk_size=4,
                       delay=0.005))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hello there")
        assert app.chat.prompt.text == ""
        await wait_ready(pilot)
        log = app.chat.chat_log
        assert [e.kind for e in log.entries] == ["user", "assistant"]
        reply = log.entries[1].widget
        assert isinstance(reply, AssistantMessage) and not reply.stopped
        assert reply.text == "# Title\n\nSome **bold** text.\n\n```python\nprint('hi')\n```\n"
        assert "print('hi')" in screen_text(app)
        stored = stored_messages(settings.data_dir, "alice")
        assert [(m["role"], m["content"][:7]) for m in stored] == [("user", "hello t"),
                                                                   ("assistant", "# Title")]
        assert fake.run_requests[-1].body["messages"][-1] == {"role": "user", "content": "hello there"}
        await wait_until(pilot, lambda: "2 of 2 messages" in app.chat.status.plain, what="the context")
        assert "last reply" in app.chat.status.plain


async def test_status_shows_speed_while_streaming(settings, fake):
    fake.enqueue(Reply("word " * 200, chunk_size=5, delay=0.01))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "go")
        await wait_until(pilot, lambda: "tok/s" in app.chat.status.plain, what="a tokens-per-second figure")
        assert app.chat.status.state == "streaming"
        assert app.chat.check_action("stop", ()) is True  # the footer offers Esc while it streams
        await wait_ready(pilot)
        assert app.chat.check_action("stop", ()) is False


async def test_pane_follows_the_stream_at_the_bottom_and_stays_when_scrolled_up(settings, fake):
    # Every check waits on a condition, never on a moment: the fake holds the stream at two known
    # pieces until the test lets it go, so "the reply grew while the pane followed" and "more text
    # came after the user scrolled up" hold however slowly the machine runs.
    first, second = threading.Event(), threading.Event()
    fake.enqueue(Reply(LONG_REPLY, chunk_size=20, holds={60: first, 120: second}))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "long please")
        log = app.chat.chat_log

        def at_bottom() -> bool:
            return log.scroll_y == log.max_scroll_y

        def shown() -> int:
            return len(log.entries[1].widget.text) if len(log.entries) == 2 else 0

        try:
            await wait_until(pilot, lambda: shown() == 60 * 20 and log.max_scroll_y > 10 and at_bottom(),
                             what="the first part of the reply to overflow the pane")
            grown_from = log.max_scroll_y
            first.set()
            await wait_until(pilot, lambda: shown() == 120 * 20 and log.max_scroll_y > grown_from + 3
                             and at_bottom(), what="the pane to follow the growing reply")
            assert log.is_anchored and not log._anchor_released  # following
            log.scroll_to(y=0, animate=False, immediate=True)
            assert log._anchor_released  # the user's scroll lets go of the end
            grown_from = log.max_scroll_y
        finally:
            first.set()
            second.set()
        await wait_ready(pilot)
        await wait_until(pilot, lambda: log.max_scroll_y > grown_from + 5, what="more text")
        assert log.scroll_y < 3  # the user's position is kept
        # Back at the bottom, the pane follows again.
        fake.enqueue(Reply(LONG_REPLY, chunk_size=20, delay=0.005))
        await send(pilot, "again")
        await wait_ready(pilot)
        await wait_until(pilot, at_bottom, what="the pane at the end of the second reply")
        assert log.is_anchored and not log._anchor_released


async def test_esc_stops_the_reply_and_keeps_it_marked_stopped(settings, fake):
    fake.enqueue(Reply("a slow reply " * 200, chunk_size=6, delay=0.02))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "tell me slowly")
        log = app.chat.chat_log
        await wait_until(pilot, lambda: len(log.entries) == 2 and len(log.entries[1].widget.text) > 20,
                         what="some text")
        await pilot.press("escape")
        await wait_ready(pilot)
        entry = log.entries[1]
        assert entry.stopped and not entry.live
        widget = entry.widget
        assert isinstance(widget, AssistantMessage) and widget.has_class("-stopped")
        assert "stopped" in str(widget.label.render())
        shown = widget.text
        assert 20 < len(shown) < len("a slow reply " * 200)
        # The request ended at once, and the partial reply was saved, marked stopped.
        request = fake.run_requests[-1]
        await asyncio.to_thread(request.finished.wait, 5)
        assert request.closed_early.is_set()
        stored = stored_messages(settings.data_dir, "alice")
        assert stored[-1]["stopped"] is True and stored[-1]["content"] == shown
        assert app.chat.prompt.text == ""


async def test_esc_before_any_text_puts_the_message_back(settings, fake):
    fake.enqueue(Reply("too late", first_delay=10))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "never answered")
        await wait_until(pilot, lambda: len(fake.run_requests) == 1, what="the request")
        await pilot.press("escape")
        await wait_ready(pilot)
        assert app.chat.prompt.text == "never answered"
        assert app.chat.chat_log.entries == []
        assert stored_messages(settings.data_dir, "alice") == []
        assert "back in the input" in app.chat.status.plain


async def test_retry_countdown_is_shown_and_esc_cancels_it(settings, fake):
    fake.enqueue(capacity_error(retry_after=30))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "busy model")
        await wait_until(pilot, lambda: app.chat.status.state.startswith("retrying in"), what="the countdown")
        first = app.chat.status.state
        assert "attempt 1 of 4" in app.chat.status.plain and "Esc cancels" in app.chat.status.plain
        await pilot.pause(1.3)
        assert app.chat.status.state != first  # it counts down
        await pilot.press("escape")
        await wait_ready(pilot)
        assert app.chat.prompt.text == "busy model"
        assert len(fake.run_requests) == 1  # the retry never went out
        assert stored_messages(settings.data_dir, "alice") == []


async def test_retry_after_a_short_wait_then_the_reply(settings, fake):
    fake.enqueue(capacity_error(retry_after=0.5), Reply("second time lucky"))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "try")
        await wait_until(pilot, lambda: "retrying" in app.chat.status.state, what="the retry")
        await wait_ready(pilot)
        assert app.chat.chat_log.entries[-1].text == "second time lucky"
        assert len(fake.run_requests) == 2


async def test_failure_shows_the_error_restores_the_text_and_retry_sends_it(settings, fake):
    fake.enqueue(quota_error())
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "out of quota")
        await wait_until(pilot, lambda: app.chat.failed_text is not None and app.chat.turn is None,
                         what="the failure")
        log = app.chat.chat_log
        assert [e.kind for e in log.entries] == ["error"]
        error = log.entries[0].widget
        assert isinstance(error, ErrorNotice) and error.hint
        assert "allocation" in error.message
        assert "back in the input" in (error.advice or "")
        assert app.chat.prompt.text == "out of quota"
        assert stored_messages(settings.data_dir, "alice") == []
        assert app.chat.status.state == "failed"
        assert app.chat.check_action("retry", ()) is True
        await pilot.press("ctrl+r")
        await wait_ready(pilot)
        assert app.chat.prompt.text == ""
        assert [e.kind for e in log.entries] == ["error", "user", "assistant"]
        assert stored_messages(settings.data_dir, "alice")[0]["content"] == "out of quota"


async def test_failure_keeps_what_the_user_typed_meanwhile(settings, fake):
    fake.enqueue(ErrorReply(400, 5006, "Error: oneOf at '/' not met"))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        assert app.chat.send("first message")
        app.chat.prompt.set_text("my next thought")
        await wait_until(pilot, lambda: app.chat.failed_text == "first message" and app.chat.turn is None,
                         what="the failure")
        assert app.chat.prompt.text == "my next thought"
        assert app.chat.retry()
        await wait_ready(pilot)
        assert app.chat.prompt.text == "my next thought"
        assert app.chat.chat_log.entries[-1].text.startswith("You said: first message")


async def test_send_is_refused_while_streaming_but_typing_is_not(settings, fake):
    fake.enqueue(Reply("streaming along " * 200, chunk_size=8, delay=0.05))
    app = make_app(settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_ready(pilot)
        await send(pilot, "first")
        await wait_until(pilot, lambda: app.chat.status.state == "streaming", what="the stream")
        await send(pilot, "second")
        assert app.chat.prompt.text == "second"
        assert app.chat.prompt.has_class("-refused")
        assert "still coming" in str(app.chat.prompt.border_subtitle)
        assert any("still coming" in str(n.message) for n in app._notifications)
        assert app.chat.turn is not None
        await pilot.press("escape")
        await wait_ready(pilot)
        assert app.chat.prompt.text == "second"  # the stopped turn does not take the input back
        assert len(fake.run_requests) == 1
        await pilot.press("enter")
        await wait_ready(pilot)
        assert [m["content"] for m in stored_messages(settings.data_dir, "alice")][2] == "second"


async def test_multi_line_input_ctrl_j_and_paste(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        prompt = app.chat.prompt
        await type_text(pilot, "line one")
        await pilot.press("ctrl+j")
        await type_text(pilot, "line two")
        assert prompt.text == "line one\nline two"
        height_two = prompt.size.height
        app.post_message(events.Paste("pasted a\npasted b\npasted c\npasted d"))
        await pilot.pause()
        assert prompt.text == "line one\nline twopasted a\npasted b\npasted c\npasted d"
        assert prompt.size.height > height_two  # the box grows with its text
        for _ in range(20):
            await pilot.press("ctrl+j")
        assert prompt.size.height <= 12  # up to a limit
        prompt.set_text("line one\nline two")
        await pilot.press("enter")
        await wait_ready(pilot)
        assert fake.run_requests[-1].body["messages"][-1]["content"] == "line one\nline two"
        assert isinstance(app.chat.chat_log.entries[0].widget, UserMessage)


async def test_up_and_down_recall_sent_messages(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        for text in ("one", "two", "three"):
            await send(pilot, text)
            await wait_ready(pilot)
        prompt = app.chat.prompt
        await pilot.press("up")
        assert prompt.text == "three"
        await pilot.press("up", "up")
        assert prompt.text == "one"
        await pilot.press("up")
        assert prompt.text == "one"  # the oldest stays
        await pilot.press("down")
        assert prompt.text == "two"
        await pilot.press("down", "down")
        assert prompt.text == ""
        # Up in a non-empty input that was not recalled moves the cursor, it does not recall.
        await type_text(pilot, "draft")
        await pilot.press("up")
        assert prompt.text == "draft"


async def test_quitting_while_a_reply_streams_saves_it_stopped(settings, fake):
    fake.enqueue(Reply("a reply cut by quitting " * 100, chunk_size=6, delay=0.02))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "then I quit")
        await wait_until(pilot, lambda: app.chat.status.state == "streaming", what="the stream")
        await pilot.pause(0.2)
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: app._exit, what="the exit")
    stored = stored_messages(settings.data_dir, "alice")
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["stopped"] is True and stored[1]["content"].startswith("a reply cut by quitting")


async def test_warnings_from_the_config_and_the_store_are_shown_after_the_history(tmp_path, fake):
    from tests.ui.conftest import make_settings

    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('colour = "blue"\n')
    settings = make_settings(tmp_path, fake)
    path = write_history(settings.data_dir, "alice", [("kept question", "kept answer")])
    with path.open("ab") as handle:
        handle.write(b'{"messages":[{"role":"user","content":"torn')  # a write cut off midway
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        entries = app.chat.chat_log.entries
        assert [e.text for e in entries[:2]] == ["kept question", "kept answer"]
        warnings = [e.text for e in entries if e.kind == "warning"]
        assert any("colour" in w for w in warnings)
        assert len(warnings) == 2, warnings
