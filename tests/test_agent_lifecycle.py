"""A turn's life, owned by the Agent base for every backend: closing after Done, closing and cancelling
mid-stream, a failed save of a stopped reply. Real history files, the local agent against the loopback
Workers AI."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading

import pytest

from edgechat_tui.backends.local.agent import LocalAgent
from edgechat_tui.core.errors import EdgechatError, StorageError, UsageError
from edgechat_tui.core.messages import Done, TextDelta
from edgechat_tui.storage.library import Library
from tests.fakes.workers_ai import CutStream, ErrorReply, FakeWorkersAI, Reply
from tests.histories import library_dir, stored_messages
from tests.test_local_agent import make_settings

SLOW = "one two three four five six seven eight nine ten eleven twelve"


@pytest.fixture
def fake():
    with FakeWorkersAI() as server:
        yield server


def stored(tmp_path):
    return stored_messages(tmp_path / "data", "alice")


class SignallingLibrary(Library):
    """A real library that says when a save starts (so a test can wait for it instead of sleeping)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, warn=lambda _text: None, **kwargs)
        self.saving = threading.Event()

    def append(self, chat_id, make, **kwargs):
        self.saving.set()
        return super().append(chat_id, make, **kwargs)

    def append_first(self, chat_id, make):
        self.saving.set()
        return super().append_first(chat_id, make)


def hold_profile_lock(data_dir):
    """Take the profile's lock as another process's save would."""
    folder = library_dir(data_dir, "alice")
    folder.mkdir(parents=True, exist_ok=True)
    holder = os.open(folder / "profile.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)
    return holder


async def test_closing_the_stream_after_done_saves_nothing_more(tmp_path, fake) -> None:
    agent = LocalAgent(make_settings(tmp_path, fake), "alice")
    async with contextlib.aclosing(agent.send("hello")) as events:
        async for event in events:
            if isinstance(event, Done):
                break  # the caller stops listening at Done: aclosing closes the stream here
    # A second turn lets anything the closing scheduled run (a finaliser of an inner generator, say).
    assert (await anext_done(agent, "next")).message_count == 4
    history = stored(tmp_path)
    assert [(m.role, m.stopped) for m in history] == [("user", False), ("assistant", False)] * 2
    await agent.aclose()


async def test_closing_the_stream_mid_reply_keeps_the_part_shown_once(tmp_path, fake) -> None:
    fake.enqueue(Reply(SLOW, chunk_size=4, delay=0.05))
    agent = LocalAgent(make_settings(tmp_path, fake), "alice")
    seen: list[str] = []
    events = agent.send("count")
    async for event in events:
        if isinstance(event, TextDelta):
            seen.append(event.text)
            if len(seen) == 2:
                break
    await events.aclose()
    history = stored(tmp_path)
    assert len(history) == 2 and history[1].stopped and history[1].content == "".join(seen)
    assert (await anext_done(agent, "next")).message_count == 4  # the guard is free again
    await agent.aclose()


async def anext_done(agent, text):
    return [event async for event in agent.send(text)][-1]


async def test_a_cancelled_turn_is_saved_before_the_next_one_may_start(tmp_path, fake) -> None:
    fake.enqueue(Reply(SLOW, chunk_size=4, delay=0.05))
    settings = make_settings(tmp_path, fake)
    store = SignallingLibrary(settings.data_dir, "alice")
    agent = LocalAgent(settings, "alice", library=store)
    seen = asyncio.Event()

    async def consume() -> None:
        async for event in agent.send("count"):
            if isinstance(event, TextDelta):
                seen.set()

    task = asyncio.create_task(consume())
    await seen.wait()
    holder = hold_profile_lock(settings.data_dir)  # another process's save: the stopped save must wait
    try:
        task.cancel()
        assert await asyncio.to_thread(store.saving.wait, 10), "the stopped reply was never saved"
        with pytest.raises(UsageError, match="still coming"):
            await anext_done(agent, "too soon")  # the stopped turn is not saved yet: the guard holds
        task.cancel()  # a second Esc while it saves does not abandon the save
    finally:
        os.close(holder)
    with pytest.raises(asyncio.CancelledError):
        await task
    history = stored(tmp_path)
    assert len(history) == 2 and history[1].stopped and history[1].content
    assert (await anext_done(agent, "next")).message_count == 4
    await agent.aclose()


async def test_a_storage_error_while_saving_a_stopped_reply_never_replaces_the_cancellation(
        tmp_path, fake) -> None:
    fake.enqueue(Reply(SLOW, chunk_size=4, delay=0.05))
    warnings: list[str] = []
    settings = make_settings(tmp_path, fake)
    agent = LocalAgent(settings, "alice", warn=warnings.append)
    seen = asyncio.Event()

    async def consume() -> None:
        async for event in agent.send("count"):
            if isinstance(event, TextDelta):
                seen.set()

    task = asyncio.create_task(consume())
    await seen.wait()
    settings.data_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.data_dir.write_text("a file where the history folder should be")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert any("could not be saved" in w and "is a file, not a folder" in w for w in warnings), warnings
    settings.data_dir.unlink()
    assert (await anext_done(agent, "next")).message_count == 2  # nothing was kept; the guard is free
    await agent.aclose()


async def test_stopped_while_the_complete_turn_is_being_saved_keeps_it_once(tmp_path, fake) -> None:
    settings = make_settings(tmp_path, fake)
    store = SignallingLibrary(settings.data_dir, "alice")
    agent = LocalAgent(settings, "alice", library=store)
    holder = hold_profile_lock(settings.data_dir)  # no conversation yet: only the save needs the lock
    task = asyncio.create_task(anext_done(agent, "hello"))
    try:
        assert await asyncio.to_thread(store.saving.wait, 10)
        task.cancel()  # the whole reply is in; its save waits for the lock
    finally:
        os.close(holder)
    with pytest.raises(asyncio.CancelledError):
        await task
    history = stored(tmp_path)
    assert [(m.role, m.stopped) for m in history] == [("user", False), ("assistant", False)]
    await agent.aclose()


# --- a failure after some text arrived ---------------------------------------------------------------


async def test_a_connection_dropped_mid_reply_keeps_what_was_shown(tmp_path, fake) -> None:
    fake.enqueue(CutStream(after_chunks=3))
    agent = LocalAgent(make_settings(tmp_path, fake), "alice")
    shown: list[str] = []
    with pytest.raises(EdgechatError) as raised:
        async for event in agent.send("hello"):
            if isinstance(event, TextDelta):
                shown.append(event.text)
    assert shown, "the fault did not happen after some text"
    kept = raised.value.kept_partial
    assert kept.stopped and kept.message.stopped and kept.message.content == "".join(shown)
    assert kept.message_count == 2
    history = stored(tmp_path)
    assert [(m.role, m.stopped) for m in history] == [("user", False), ("assistant", True)]
    assert history[1].content == "".join(shown)
    await agent.aclose()


async def test_a_failure_before_any_text_keeps_nothing(tmp_path, fake) -> None:
    fake.enqueue(ErrorReply(status=401, code=10000, message="Authentication error"))
    agent = LocalAgent(make_settings(tmp_path, fake), "alice")
    with pytest.raises(EdgechatError) as raised:
        await anext_done(agent, "hello")
    assert getattr(raised.value, "kept_partial", None) is None
    assert stored(tmp_path) == []
    await agent.aclose()


async def test_a_failed_save_of_the_complete_turn_keeps_no_partial(tmp_path, fake) -> None:
    settings = make_settings(tmp_path, fake)
    agent = LocalAgent(settings, "alice")
    settings.data_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.data_dir.write_text("a file where the history folder should be")
    with pytest.raises(StorageError) as raised:
        await anext_done(agent, "hello")
    assert getattr(raised.value, "kept_partial", None) is None
    settings.data_dir.unlink()
    assert (await anext_done(agent, "again")).message_count == 2  # the failed turn left nothing behind
    await agent.aclose()
