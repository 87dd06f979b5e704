"""The TUI in front of a remote agent endpoint: the seed's (no streaming, no history) and ours."""

from __future__ import annotations

from tests.fakes.agent_server import AgentServer
from tests.fakes.seed_server import Scripted, SeedServer
from tests.ui.conftest import SIZE, make_app, make_settings, screen_text, send, wait_until


async def test_seed_server_waits_for_whole_replies_and_says_history_is_not_shared(tmp_path):
    with SeedServer() as server:
        settings = make_settings(tmp_path, None, EDGECHAT_REMOTE_URL=server.url)
        app = make_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.agent is not None and app.chat.turn is None
                             and "connected" in app.chat.status.state, what="the connection")
            assert "replies arrive whole" in app.chat.status.state
            assert "remote 127.0.0.1" in app.chat.header.mode
            texts = [e.text for e in app.chat.chat_log.entries]
            assert any("does not share its history" in t for t in texts)
            server.script(Scripted(delay=1.5))
            await send(pilot, "hello seed")
            await wait_until(pilot, lambda: app.chat.status.state == "waiting for the agent",
                             what="the waiting state")
            assert "whole reply at once" in app.chat.status.plain
            await wait_until(pilot, lambda: app.chat.turn is None, what="the reply")
            assert app.chat.chat_log.entries[-1].text.startswith("You said: hello seed")
            assert "hello seed" in screen_text(app)
            app.chat.prompt.set_text("/clear")
            await pilot.press("enter")
            await wait_until(pilot, lambda: "cannot start a new conversation"
                             in app.chat.chat_log.entries[-1].text, what="the refusal")


async def test_streaming_agent_shows_history_and_stops_with_esc(tmp_path):
    with AgentServer(delta_delay=0.05) as server:
        server.conversations["alice"] = [
            {"role": "user", "content": "earlier question"},
            {"role": "assistant", "content": "earlier answer"},
        ]
        settings = make_settings(tmp_path, None, EDGECHAT_REMOTE_URL=server.url)
        app = make_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.agent is not None and app.chat.turn is None
                             and app.chat.status.state.startswith("connected"), what="the connection")
            assert [e.text for e in app.chat.chat_log.entries] == ["earlier question", "earlier answer"]
            app.chat.prompt.set_text("a long answer please " * 10)
            await pilot.press("enter")
            log = app.chat.chat_log
            await wait_until(pilot, lambda: len(log.entries) == 4 and len(log.entries[-1].widget.text) > 10,
                             what="streamed text")
            await pilot.press("escape")
            await wait_until(pilot, lambda: app.chat.turn is None, what="the stop")
            assert log.entries[-1].stopped
            assert log.entries[-1].widget.has_class("-stopped")
