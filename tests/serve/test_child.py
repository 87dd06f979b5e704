"""The served app (``serve/child.py``) in Textual's test harness: a signal quits it as Ctrl+Q does,
and the message input takes the keyboard when the page gets focus.

The end-to-end tests (test_shutdown.py) see the saved result through real processes; these see the
path taken: the web driver's own signal handlers would exit without going through ``action_quit``.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from textual import events

from edgechat_tui.serve.child import QUIT_SIGNALS, ServedApp
from tests.fakes.workers_ai import FakeWorkersAI, Reply
from tests.ui.conftest import SIZE, make_settings, send, stored_messages, wait_ready, wait_until


def _remove_handlers() -> None:
    loop = asyncio.get_running_loop()
    for sig in QUIT_SIGNALS:
        loop.remove_signal_handler(sig)


@pytest.fixture
def fake():
    with FakeWorkersAI() as server:
        yield server


async def test_sigterm_quits_through_ctrl_q_and_the_reply_is_saved_stopped(tmp_path, fake, monkeypatch):
    fake.enqueue(Reply(" ".join(f"w{i}" for i in range(400)), chunk_size=4, delay=0.03))
    app = ServedApp(make_settings(tmp_path, fake), "alice", cursor_blink=False)
    quits = []
    original = ServedApp.action_quit

    async def recording_quit(self):
        quits.append(self.chat.turn is not None)
        await original(self)

    monkeypatch.setattr(ServedApp, "action_quit", recording_quit)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await send(pilot, "stream please")
            await wait_until(pilot, lambda: app.chat.turn is not None and app.chat.turn.meter.first_text_at,
                             what="the reply to stream")
            os.kill(os.getpid(), signal.SIGTERM)
            await wait_until(pilot, lambda: bool(quits) and app.chat.turn is None, what="the app to quit")
    finally:
        _remove_handlers()
    assert quits == [True]  # one quit, through action_quit, while the reply streamed
    messages = stored_messages(tmp_path / "data", "alice")
    assert messages[-1]["role"] == "assistant" and messages[-1]["stopped"] is True


async def test_the_input_takes_the_keyboard_when_the_page_gets_focus(tmp_path, fake):
    app = ServedApp(make_settings(tmp_path, fake), "alice", cursor_blink=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            # As in a browser: the app starts blurred, so nothing has focus.
            app.post_message(events.AppBlur())
            await pilot.pause()
            app.screen.set_focus(None)
            app._last_focused_on_app_blur = None
            assert app.screen.focused is None
            app.post_message(events.AppFocus())
            await wait_until(pilot, lambda: app.screen.focused is app.chat.prompt,
                             what="the input to get focus")
    finally:
        _remove_handlers()
