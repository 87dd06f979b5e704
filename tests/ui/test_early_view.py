"""The conversation on screen at once: the newest messages, read before Textual loaded, drawn at start.

The real app, the real ``LocalAgent`` and store, real files. To see the early view before the
store's view, the test holds the profile's lock as another edgechat process would: the store waits
for it (in its thread), the early read takes no lock.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

from edgechat_tui.core.messages import Message
from edgechat_tui.storage import tail as tail_module
from edgechat_tui.storage.format import encode_header, encode_turn
from edgechat_tui.storage.tail import EarlyTail, current_conversation
from edgechat_tui.ui.app import EdgechatApp
from edgechat_tui.ui.early import EARLY_MESSAGES
from edgechat_tui.ui.widgets.chat_log import INITIAL_WINDOW
from edgechat_tui.ui.widgets.messages import AssistantMessage, UserMessage
from tests.ui.conftest import SIZE, screen_text, send, wait_ready, wait_until, write_history

TURNS = 300


class HeldLock:
    """The profile's lock, held exclusively (as another process saving a turn holds it)."""

    def __init__(self, data_dir: Path, user: str = "alice") -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(data_dir / f"{user}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def early_app(settings, user: str = "alice") -> EdgechatApp:
    early = EarlyTail(current_conversation(settings.data_dir, user), user, EARLY_MESSAGES)
    early.wait(10)
    return EdgechatApp(settings, user, cursor_blink=False, early=early)


def turn_bytes(question: str, answer: str, model: str = "@cf/meta/llama-3.3-70b-instruct-fp8-fast") -> bytes:
    return encode_turn(Message("user", question, time="2025-01-01T10:00:00.000Z"),
                       Message("assistant", answer, time="2025-01-01T10:00:01.000Z", model=model))


def test_the_early_read_looks_for_the_panes_first_window():
    assert EARLY_MESSAGES == INITIAL_WINDOW


async def test_the_newest_messages_are_drawn_before_the_store_loads_and_kept(settings, fake):
    write_history(settings.data_dir, "alice", TURNS)
    lock = HeldLock(settings.data_dir)
    try:
        app = early_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            log = app.chat.chat_log
            await wait_until(pilot, lambda: "answer 299" in screen_text(app), what="the early view")
            assert log.early and not app.session.ready
            assert app.chat.status.state != "ready"
            assert "question 299" in screen_text(app)
            assert "earlier messages: loading" in str(log._earlier.render())  # above the view
            # Only what fills the screen is mounted before the first frame, and it does fill it.
            early_entries = list(log.entries)
            assert 2 <= len(early_entries) < INITIAL_WINDOW
            assert log.virtual_size.height >= log.size.height
            assert [e.text for e in early_entries][-2:] == ["question 299", "**answer 299**\n\n- item 299"]
            early_widgets = [e.widget for e in early_entries]
            # Typing works; sending waits for the store's view, and the text stays.
            await send(pilot, "hello")
            assert app.chat.prompt.text == "hello"
            assert fake.requests == []
            lock.release()
            await wait_ready(pilot)
            assert not log.early
            assert len(log.entries) == 2 * TURNS
            assert log.window == (2 * TURNS - INITIAL_WINDOW, 2 * TURNS)
            kept = [e.widget for e in log.entries[-len(early_widgets):]]
            assert all(a is b for a, b in zip(kept, early_widgets, strict=True))
            assert all(w is not None and w in log.children for w in kept)
            users = [w.text for w in app.query(UserMessage)]
            assert len(users) == len(set(users)) == INITIAL_WINDOW // 2  # nothing twice
            assert len(app.query(AssistantMessage)) == INITIAL_WINDOW // 2
            assert f"{2 * TURNS - INITIAL_WINDOW:,} earlier messages" in str(log._earlier.render())
            assert "answer 299" in screen_text(app)
            # And now it sends.
            await pilot.press("enter")
            await wait_until(pilot, lambda: len(fake.requests) == 1, what="the request")
    finally:
        lock.release()


async def test_turns_added_elsewhere_meanwhile_follow_the_early_view_once(settings, fake):
    path = write_history(settings.data_dir, "alice", TURNS)
    lock = HeldLock(settings.data_dir)
    try:
        app = early_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            log = app.chat.chat_log
            await wait_until(pilot, lambda: "answer 299" in screen_text(app), what="the early view")
            early_widgets = [e.widget for e in log.entries]
            with open(path, "ab") as out:  # another process saves a turn while holding the lock
                out.write(turn_bytes("added elsewhere", "a reply from elsewhere"))
            lock.release()
            await wait_ready(pilot)
            assert len(log.entries) == 2 * TURNS + 2
            assert [e.text for e in log.entries[-2:]] == ["added elsewhere", "a reply from elsewhere"]
            kept = [e.widget for e in log.entries[-2 - len(early_widgets):-2]]
            assert all(a is b for a, b in zip(kept, early_widgets, strict=True))
            assert [w.text for w in app.query(UserMessage)].count("added elsewhere") == 1
            assert [w.text for w in app.query(UserMessage)].count("question 299") == 1
            assert "a reply from elsewhere" in screen_text(app)
    finally:
        lock.release()


async def test_a_conversation_replaced_meanwhile_replaces_the_early_view(settings, fake):
    path = write_history(settings.data_dir, "alice", TURNS)
    lock = HeldLock(settings.data_dir)
    try:
        app = early_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            log = app.chat.chat_log
            await wait_until(pilot, lambda: "answer 299" in screen_text(app), what="the early view")
            early_widgets = [e.widget for e in log.entries]
            # Another process reset the conversation and saved a first turn of the new one.
            os.rename(path, path.with_name("alice.20250101T000000Z.archived"))
            path.write_bytes(encode_header("alice") + turn_bytes("a new start", "fresh"))
            lock.release()
            await wait_ready(pilot)
            assert [e.text for e in log.entries] == ["a new start", "fresh"]
            assert not any(w in log.children for w in early_widgets)
            assert "answer 299" not in screen_text(app) and "fresh" in screen_text(app)
            assert not log._earlier.has_class("-shown")
    finally:
        lock.release()


async def test_a_torn_tail_is_not_shown_early_and_the_store_warns_after(settings, fake):
    path = write_history(settings.data_dir, "alice", 20)
    with open(path, "ab") as out:
        out.write(turn_bytes("half written", "never complete")[:-30])  # a write under way, or cut
    lock = HeldLock(settings.data_dir)
    try:
        app = early_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            log = app.chat.chat_log
            await wait_until(pilot, lambda: "answer 19" in screen_text(app), what="the early view")
            assert "half written" not in screen_text(app)
            early_widgets = [e.widget for e in log.entries]
            lock.release()
            await wait_ready(pilot)
            assert "half written" not in screen_text(app)
            await wait_until(pilot, lambda: "incomplete" in screen_text(app), what="the store's warning")
            assert log.entries[-1].kind == "warning"
            kept = [e.widget for e in log.entries[-1 - len(early_widgets):-1]]
            assert all(a is b for a, b in zip(kept, early_widgets, strict=True))
    finally:
        lock.release()


async def test_damage_shows_the_turns_the_store_keeps_early_and_after(settings, fake):
    path = write_history(settings.data_dir, "alice", 10)
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(6, b"{damaged line\n")
    path.write_bytes(b"".join(lines))
    lock = HeldLock(settings.data_dir)
    try:
        app = early_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            log = app.chat.chat_log
            await wait_until(pilot, lambda: "answer 9" in screen_text(app), what="the early view")
            assert [e.text for e in log.entries][-2:] == ["question 9", "**answer 9**\n\n- item 9"]
            early_widgets = [e.widget for e in log.entries]
            lock.release()
            await wait_ready(pilot)
            kept = [e.widget for e in log.entries[-1 - len(early_widgets):-1]]
            assert all(a is b for a, b in zip(kept, early_widgets, strict=True))
            await _check_damage_view(app)
    finally:
        lock.release()
    assert any(p.name.startswith("alice.corrupt-") for p in settings.data_dir.iterdir())


async def _check_damage_view(app) -> None:
    log = app.chat.chat_log
    assert len(log.entries) == 21  # 20 messages and the warning about the damage
    assert log.entries[-1].kind == "warning" and "damaged" in log.entries[-1].text
    users = [w.text for w in app.query(UserMessage)]
    assert len(users) == len(set(users))


async def test_a_newer_schema_shows_nothing_early_and_the_stores_error_after(settings, fake):
    path = settings.data_dir / "alice.jsonl"
    settings.data_dir.mkdir(parents=True)
    path.write_bytes(b'{"edgechat": "history", "schema": 9, "user": "alice"}\n'
                     + turn_bytes("from the future", "do not show"))
    lock = HeldLock(settings.data_dir)
    try:
        app = early_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert not app.chat.chat_log.early
            assert "from the future" not in screen_text(app)
            lock.release()
            await wait_until(pilot, lambda: "newer edgechat" in screen_text(app), what="the error")
            assert "from the future" not in screen_text(app)
    finally:
        lock.release()
    assert path.read_bytes().startswith(b'{"edgechat": "history", "schema": 9')


async def test_untrusted_text_in_the_early_view_is_shown_as_text(settings, fake):
    hostile_model = "evil\x1b]0;TITLE\x07[b]model[/b]"
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "alice.jsonl").write_bytes(
        encode_header("alice")
        + turn_bytes("ask [@click=app.quit]quit[/] \x1b[2J",
                     "reply [b]bold[/b] \x1b[31mred\x1b[0m \x9b31m end", model=hostile_model))
    lock = HeldLock(settings.data_dir)
    try:
        app = early_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "end" in screen_text(app), what="the early view")
            assert app.chat.chat_log.early
            text = screen_text(app)
            assert "[@click=app.quit]quit[/]" in text
            assert "[b]bold[/b]" in text and "[b]model[/b]" in text
            assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text
            assert "TITLE" not in text
            await pilot.click(UserMessage)
            assert app.is_running  # the [@click] did nothing
    finally:
        lock.release()


async def test_an_empty_conversation_shows_its_empty_state_early(settings, fake):
    lock = HeldLock(settings.data_dir)
    try:
        app = early_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "No messages yet" in screen_text(app), what="the empty state")
            lock.release()
            await wait_ready(pilot)
            assert "No messages yet" in screen_text(app)
    finally:
        lock.release()


async def test_a_tail_read_after_the_first_frame_is_drawn_then_taken_over(settings, fake, monkeypatch):
    write_history(settings.data_dir, "alice", TURNS)
    go = threading.Event()
    real = tail_module.read_tail

    def slow(*args, **kwargs):
        go.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(tail_module, "read_tail", slow)
    lock = HeldLock(settings.data_dir)
    try:
        early = EarlyTail(current_conversation(settings.data_dir, "alice"), "alice", EARLY_MESSAGES)
        app = EdgechatApp(settings, "alice", cursor_blink=False, early=early)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert "answer 299" not in screen_text(app)
            go.set()
            await wait_until(pilot, lambda: "answer 299" in screen_text(app), what="the late early view")
            early_widgets = [e.widget for e in app.chat.chat_log.entries]
            lock.release()
            await wait_ready(pilot)
            kept = [e.widget for e in app.chat.chat_log.entries[-len(early_widgets):]]
            assert all(a is b for a, b in zip(kept, early_widgets, strict=True))
    finally:
        go.set()
        lock.release()


async def test_a_tail_read_after_the_stores_view_is_not_shown(settings, fake, monkeypatch):
    write_history(settings.data_dir, "alice", TURNS)
    go = threading.Event()
    real = tail_module.read_tail

    def slow(*args, **kwargs):
        go.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(tail_module, "read_tail", slow)
    early = EarlyTail(current_conversation(settings.data_dir, "alice"), "alice", EARLY_MESSAGES)
    app = EdgechatApp(settings, "alice", cursor_blink=False, early=early)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            go.set()
            early.wait(10)
            await pilot.pause()
            log = app.chat.chat_log
            assert not log.early and len(log.entries) == 2 * TURNS
            users = [w.text for w in app.query(UserMessage)]
            assert len(users) == len(set(users)) == INITIAL_WINDOW // 2
    finally:
        go.set()


SHAPES = {  # a history's turns, and text of its newest reply that must be on screen
    "one-liners": ([(f"q{i}", f"a{i}") for i in range(60)], "a59"),
    "paragraphs": ([(f"question {i}", "\n\n".join(f"paragraph {j} of answer {i}" for j in range(4)))
                    for i in range(30)], "paragraph 3 of answer 29"),
    "wrapping lines": ([("w" * 450, "x " * 400 + "the end") for _ in range(10)], "the end"),
    "one tall reply": ([("first", "short"), ("tell me more", "\n".join(f"- point {j}" for j in range(80)))],
                       "point 79"),
    "code and tables": ([(f"code {i}", f"```python\nx = {i}\n```\n\n| a | b |\n|---|---|\n| {i} | end{i} |\n")
                         for i in range(20)], "end19"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_the_early_view_fills_the_screen_whatever_the_messages(settings, fake, shape):
    turns, newest = SHAPES[shape]
    write_history(settings.data_dir, "alice", turns)
    lock = HeldLock(settings.data_dir)
    try:
        app = early_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            log = app.chat.chat_log
            await wait_until(pilot, lambda: log.early and len(log.entries) > 0, what="the early view")
            await pilot.pause()
            assert log.virtual_size.height >= log.size.height  # no empty rows above the messages
            assert len(log.entries) <= INITIAL_WINDOW
            assert newest in screen_text(app)
    finally:
        lock.release()


async def test_garbage_collection_is_back_on_from_the_first_frame(settings, fake):
    """The CLI turns the collector off for start-up; the app turns it on with its first frame."""
    import gc

    gc.disable()
    try:
        app = early_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, gc.isenabled, what="the collector")
            await wait_ready(pilot)
    finally:
        gc.enable()


async def test_a_notice_shown_during_the_early_view_goes_when_the_store_takes_over(settings, fake):
    write_history(settings.data_dir, "alice", TURNS)
    lock = HeldLock(settings.data_dir)
    try:
        app = early_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            log = app.chat.chat_log
            await wait_until(pilot, lambda: "answer 299" in screen_text(app), what="the early view")
            await app.chat.say("a notice said while loading")
            await wait_until(pilot, lambda: "a notice said while loading" in screen_text(app))
            early_widgets = [e.widget for e in log.entries if e.kind != "info"]
            lock.release()
            await wait_ready(pilot)
            assert "a notice said while loading" not in screen_text(app)
            assert all(e.kind != "info" for e in log.entries)
            mounted = [w for w in log.children if isinstance(w, UserMessage | AssistantMessage)]
            assert len(mounted) == INITIAL_WINDOW
            kept = [e.widget for e in log.entries[-len(early_widgets):]]
            assert all(a is b for a, b in zip(kept, early_widgets, strict=True))
    finally:
        lock.release()
