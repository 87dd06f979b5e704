"""Turns another edgechat adds to the profile show in the pane, before the next message is sent;
and the line where the context sent to the model begins."""

from __future__ import annotations

import asyncio
import os
import sys

from textual import events

from edgechat_tui.ui import history_watch
from tests.ui.conftest import (
    SIZE,
    make_app,
    make_settings,
    screen_text,
    send,
    wait_ready,
    wait_until,
    write_history,
)

BOB = "My name is Bob."


def shown(app) -> list[str]:
    return [entry.text for entry in app.chat.chat_log.entries if entry.is_message]


async def add_turn_elsewhere(settings, text: str = BOB, *, reset: bool = False) -> list[str]:
    """Another edgechat's agent for the same profile (its own store, lock and offsets) adds a turn,
    through the agent interface whatever the history's layout on disk. Returns the two messages."""
    from edgechat_tui.backends.local.agent import LocalAgent

    other = LocalAgent(settings, "alice")
    try:
        if reset:
            await other.reset()
        done = [event async for event in other.send(text)][-1]
        return [text, done.message.content]
    finally:
        await other.aclose()


def no_background_watch(monkeypatch) -> None:
    """Only the send (or the window regaining focus) can pick up what was added elsewhere."""
    monkeypatch.setattr(history_watch, "POLL_SECONDS", 3600)


async def test_a_turn_another_process_adds_shows_in_the_background(settings, fake, tmp_path):
    write_history(settings.data_dir, "alice", 3)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        # A real second edgechat: the one-shot mode, in its own process, for the same profile.
        env = dict(os.environ, EDGECHAT_DATA_DIR=str(settings.data_dir),
                   CLOUDFLARE_ACCOUNT_ID=fake.account_id, CLOUDFLARE_API_TOKEN=fake.token,
                   EDGECHAT_API_BASE=fake.api_base,
                   EDGECHAT_CONFIG=str(tmp_path / "other-config.toml"))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edgechat_tui", "--user", "alice", "-m", BOB, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, stderr = await process.communicate()
        assert process.returncode == 0, stderr
        await wait_until(pilot, lambda: BOB in shown(app), what="the other process's turn in the pane")
        assert shown(app)[-2:] == [BOB, f"You said: {BOB} (you have said 4 things; first: question 0)"]
        await wait_until(pilot, lambda: BOB in screen_text(app), what="it on screen (following the end)")
        await wait_until(pilot, lambda: "8 of 8 messages" in app.chat.status.plain, what="the context")
        # The next message goes with it, and its reply is below it.
        await send(pilot, "What is my name?")
        await wait_ready(pilot)
        sent = [m["content"] for m in fake.run_requests[-1].body["messages"] if m["role"] == "user"]
        assert sent[-2:] == [BOB, "What is my name?"]
        assert shown(app)[-4:-1] == [BOB, shown(app)[-3], "What is my name?"]


async def test_a_title_set_by_another_process_shows_in_the_header(settings, fake, tmp_path):
    from tests.ui.library_helpers import write_conversation

    chat = write_conversation(settings.data_dir, "alice", 2, day=1, title="Old title")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        assert app.chat.header.title == "Old title"
        env = dict(os.environ, EDGECHAT_DATA_DIR=str(settings.data_dir),
                   EDGECHAT_CONFIG=str(tmp_path / "other-config.toml"))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edgechat_tui", "chats", "rename", chat, "New title", "--user", "alice",
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, stderr = await process.communicate()
        assert process.returncode == 0, stderr
        await wait_until(pilot, lambda: app.chat.header.title == "New title", what="the new title")
        assert "New title" in screen_text(app)


async def test_a_turn_added_just_before_a_send_is_shown_above_the_question_before_it_goes(
        settings, fake, monkeypatch):
    no_background_watch(monkeypatch)
    write_history(settings.data_dir, "alice", 3)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        added = await add_turn_elsewhere(settings)
        requests = len(fake.run_requests)
        assert BOB not in shown(app)
        await send(pilot, "What is my name?")
        await wait_until(pilot, lambda: shown(app)[-1:] != ["What is my name?"] and app.chat.turn is None,
                         what="the reply")
        await wait_ready(pilot)
        # The question went once, with Bob's turn before it, and the pane shows that order.
        assert len(fake.run_requests) == requests + 1
        sent = [m["content"] for m in fake.run_requests[-1].body["messages"] if m["role"] == "user"]
        assert sent[-2:] == [BOB, "What is my name?"]
        assert shown(app)[-4:-1] == [*added, "What is my name?"]
        assert app.chat.history_watch.syncs == 1
        # And stored in the same order.
        assert [m.content for m in await app.agent.history()][-4:-1] == [*added, "What is my name?"]


async def test_regaining_focus_shows_what_was_added_elsewhere(settings, fake, monkeypatch):
    no_background_watch(monkeypatch)
    write_history(settings.data_dir, "alice", 3)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        app.post_message(events.AppBlur())
        await pilot.pause()
        added = await add_turn_elsewhere(settings)
        await pilot.pause(0.1)
        assert BOB not in shown(app)
        app.post_message(events.AppFocus())
        await wait_until(pilot, lambda: BOB in shown(app), what="the turn, on focus")
        assert shown(app)[-2:] == added


async def test_a_reset_elsewhere_leaves_this_pane_on_its_own_conversation(settings, fake):
    # With the conversation library, each process has its own open conversation: another one
    # archiving it and starting a new one changes the file this pane watches, not what it shows.
    write_history(settings.data_dir, "alice", 3)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        before = shown(app)
        assert len(before) == 6
        await add_turn_elsewhere(settings, reset=True)
        stamp = await app.agent.history_stamp()
        await wait_until(pilot, lambda: app.chat.history_watch._stamp == stamp, what="the watch to look")
        assert shown(app) == before and app.chat.history_watch.syncs == 0


async def test_turns_added_while_an_older_window_is_shown_leave_the_view_where_it_is(settings, fake):
    write_history(settings.data_dir, "alice", 300)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        await pilot.press("ctrl+home")
        await wait_until(pilot, lambda: log.window[0] == 0 and not log.busy, what="the start")
        before = screen_text(app)
        await add_turn_elsewhere(settings)
        await wait_until(pilot, lambda: BOB in shown(app), what="the turn")
        await pilot.pause()
        assert log.window[0] == 0 and log.scroll_y == 0
        assert "question 0" in screen_text(app)
        assert before.splitlines()[1:20] == screen_text(app).splitlines()[1:20]
        assert f"{len(log.entries) - log.window[1]:,} later messages" in str(log._later.render())


# --- the context marker -----------------------------------------------------------------------


def long_turns(count: int) -> list[tuple[str, str]]:
    return [(f"question {i} " + "words " * 40, f"answer {i} " + "more words " * 40) for i in range(count)]


async def test_the_marker_stands_where_the_context_sent_begins(tmp_path, fake):
    # A small window: only the newest few messages fit beside the reply.
    settings = make_settings(tmp_path, fake, EDGECHAT_MAX_TOKENS="21000")
    write_history(settings.data_dir, "alice", long_turns(20))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        marker = log.context_marker

        async def check() -> int:
            info = await app.agent.context_preview("")
            assert 0 < info.messages_sent < info.messages_total
            first = info.messages_total - info.messages_sent
            await wait_until(pilot, lambda: marker.has_class("-shown") and marker.earlier == first,
                             what="the marker in its place")
            messages = [entry for entry in log.entries if entry.is_message]
            children = list(log.children)
            assert children[children.index(marker) + 1] is messages[first].widget
            assert f"the {first:,} messages above are no longer sent" in str(marker.render())
            return first

        first = await check()
        # Messages above the marker were not in the last request; those below were.
        await send(pilot, "one more")
        await wait_ready(pilot)
        sent = [m["content"] for m in fake.run_requests[-1].body["messages"] if m["role"] != "system"]
        messages = [entry.text for entry in log.entries if entry.is_message]
        assert sent[:-1] == messages[first:-2]
        # After the turn the marker moves with the context of the next request.
        assert await check() >= first


async def test_no_marker_when_the_whole_conversation_is_sent(settings, fake):
    write_history(settings.data_dir, "alice", 5)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await wait_until(pilot, lambda: "10 of 10 messages" in app.chat.status.plain, what="the context")
        assert not app.chat.chat_log.context_marker.has_class("-shown")
