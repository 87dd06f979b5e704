"""The conversation library's commands and keys in front of an agent that keeps one conversation
(the seed's server): each says it is not available with this agent, nothing typed is lost, and the
chat goes on working."""

from __future__ import annotations

import pytest

from edgechat_tui.ui.app import EdgechatApp
from tests.fakes.seed_server import SeedServer
from tests.ui.conftest import SIZE, make_settings, send, wait_until

NOT_AVAILABLE = "is not available with this agent"


def _errors(app) -> list[str]:
    return [entry.text for entry in app.chat.chat_log.entries if entry.kind == "error"]


async def _connected(pilot) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: app.agent is not None and app.chat.turn is None
                     and "connected" in app.chat.status.state, what="the connection")


LINES = ["/new", "/chats", "/chats archived", "/title A title", "/search anything", "/regen", "/edit",
         "/continue"]
KEYS = ["ctrl+b", "ctrl+g", "alt+left", "alt+right"]


@pytest.mark.parametrize("how", LINES + KEYS)
async def test_every_library_action_says_it_is_not_available(tmp_path, how):
    with SeedServer() as server:
        settings = make_settings(tmp_path, None, EDGECHAT_REMOTE_URL=server.url)
        app = EdgechatApp(settings, "alice", cursor_blink=False)
        async with app.run_test(size=SIZE) as pilot:
            await _connected(pilot)
            assert app.agent.conversations is None
            before = len(_errors(app))
            if how.startswith("/"):
                app.chat.prompt.set_text(how)
                await pilot.press("enter")
            else:
                app.chat.prompt.set_text("a draft I am typing")
                await pilot.press(how)
            await wait_until(pilot, lambda: len(_errors(app)) > before, what=f"{how} to answer")
            error = _errors(app)[-1]
            assert NOT_AVAILABLE in error, error
            hint = app.chat.chat_log.entries[-1].hint or ""
            assert "single conversation" in hint
            if not how.startswith("/"):
                assert app.chat.prompt.text == "a draft I am typing"  # the key took nothing typed
            assert not app.chat.panel.is_open
            assert app.chat.library.editing is None
            assert app.chat.turn is None
            # And the chat goes on: a message is sent and answered.
            app.chat.prompt.clear()
            await send(pilot, "still here?")
            await wait_until(pilot, lambda: app.chat.turn is None and any(
                entry.text.startswith("You said: still here?") for entry in app.chat.chat_log.entries),
                what="the reply")


@pytest.mark.parametrize("option", [{"chat": "0123456789abcd"}, {"new": True}])
async def test_tui_chat_and_new_say_they_are_not_available(tmp_path, option):
    with SeedServer() as server:
        settings = make_settings(tmp_path, None, EDGECHAT_REMOTE_URL=server.url)
        app = EdgechatApp(settings, "alice", cursor_blink=False, **option)
        async with app.run_test(size=SIZE) as pilot:
            await _connected(pilot)
            flag = "--new" if "new" in option else "--chat"
            await wait_until(pilot, lambda: any(
                entry.kind == "warning" and entry.text.startswith(f"{flag} {NOT_AVAILABLE}")
                for entry in app.chat.chat_log.entries), what="the warning")
            assert app.chat.header.title is None
