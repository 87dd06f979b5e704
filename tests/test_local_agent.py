"""The local agent end to end: real history files, the real client, Workers AI served on loopback."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from edgechat_tui.backends.local.agent import LocalAgent, session_affinity_id
from edgechat_tui.backends.local.workers_ai import WorkersAIClient
from edgechat_tui.config.settings import load_settings
from edgechat_tui.core.errors import AuthError, ContextTooLong, MessageTooLong, MissingCredentials
from edgechat_tui.core.messages import Done, Retrying, TextDelta
from tests.fakes.workers_ai import ErrorReply, FakeWorkersAI, Reply
from tests.histories import stored_messages


@pytest.fixture
def fake():
    with FakeWorkersAI() as server:
        yield server


def make_settings(tmp_path, fake, **flags):
    env = {
        "CLOUDFLARE_ACCOUNT_ID": fake.account_id,
        "CLOUDFLARE_API_TOKEN": fake.token,
        "EDGECHAT_API_BASE": fake.api_base,
        "EDGECHAT_DATA_DIR": str(tmp_path / "data"),
    }
    return load_settings(config_path=tmp_path / "config.toml", env=env, flags=flags)


async def run(agent, text):
    events = [event async for event in agent.send(text)]
    assert isinstance(events[-1], Done)
    return events


def reply_text(events):
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_a_turn_streams_saves_and_counts(tmp_path, fake):
    agent = LocalAgent(make_settings(tmp_path, fake), "alice")
    events = await run(agent, "hello")
    done = events[-1]
    assert reply_text(events) == done.message.content == "You said: hello"
    assert done.message_count == 2 and done.message.model == agent.info.model
    assert done.usage is not None and done.context.messages_sent == 0
    stored = stored_messages(tmp_path / "data", "alice")
    assert [(m.role, m.content) for m in stored] == [("user", "hello"), ("assistant", "You said: hello")]
    assert (await run(agent, "again"))[-1].message_count == 4
    await agent.aclose()


async def test_the_request_is_what_the_api_expects(tmp_path, fake):
    agent = LocalAgent(make_settings(tmp_path, fake), "alice")
    await run(agent, "hello")
    request = fake.run_requests[-1]
    assert request.body["max_tokens"] == 2048 and request.body["stream"] is True
    assert request.body["messages"][0]["role"] == "system"
    assert request.headers["x-session-affinity"] == session_affinity_id(fake.account_id, "alice")
    assert "alice" not in request.headers["x-session-affinity"]
    await agent.aclose()


async def test_memory_survives_a_restart_and_users_are_separate(tmp_path, fake):
    settings = make_settings(tmp_path, fake)
    first = LocalAgent(settings, "alice")
    await run(first, "my name is Alice")
    await first.aclose()
    again = LocalAgent(settings, "alice")
    events = await run(again, "what is my name?")
    assert "first: my name is Alice" in reply_text(events)
    bob = LocalAgent(settings, "bob")
    events = await run(bob, "who am I?")
    assert "Alice" not in reply_text(events)
    assert events[-1].message_count == 2
    await again.aclose()
    await bob.aclose()


async def test_a_failed_turn_stores_nothing(tmp_path, fake):
    agent = LocalAgent(make_settings(tmp_path, fake), "alice")
    await run(agent, "one")
    fake.enqueue(ErrorReply(status=401, code=10000, message="Authentication error"))
    with pytest.raises(AuthError):
        await run(agent, "two")
    events = await run(agent, "three")
    assert events[-1].message_count == 4  # the seed says 5 here: its failed message lingers
    assert [m.content for m in await agent.history()][::2] == ["one", "three"]
    await agent.aclose()


async def test_retries_are_reported_and_then_succeed(tmp_path, fake):
    settings = make_settings(tmp_path, fake)
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    client = WorkersAIClient(account_id=fake.account_id, api_token=fake.token, api_base=fake.api_base,
                             sleep=no_sleep)
    agent = LocalAgent(settings, "alice", client=client)
    fake.enqueue(ErrorReply(status=429, code=3040, retry_after=2), ErrorReply(status=503, code=None))
    events = await run(agent, "hi")
    retries = [e for e in events if isinstance(e, Retrying)]
    assert [r.attempt for r in retries] == [1, 2] and waits and waits[0] >= 2
    assert events[-1].message_count == 2
    await agent.aclose()


async def test_context_is_trimmed_to_the_window(tmp_path, fake):
    settings = make_settings(tmp_path, fake, context_window=4000)
    fake.context_window = 4000
    agent = LocalAgent(settings.with_values(max_tokens=500), "alice")
    for i in range(40):
        await run(agent, f"message {i} " + "lorem ipsum " * 30)
    events = await run(agent, "last")
    assert events[-1].context.messages_sent < events[-1].context.messages_total
    sent = fake.run_requests[-1].body["messages"]
    assert sent[-1]["content"] == "last" and sent[1]["role"] == "user"
    assert len(await agent.history()) == 82  # all of it is still on disk
    await agent.aclose()


async def test_context_too_long_despite_the_estimate_trims_harder_once(tmp_path, fake):
    # The agent believes the window is 20,000 tokens, the service enforces 6,000.
    settings = make_settings(tmp_path, fake, context_window=20_000).with_values(max_tokens=500)
    agent = LocalAgent(settings, "alice")
    for i in range(30):
        await run(agent, f"m{i} " + "word " * 400)
    fake.context_window = 6000
    requests_before = len(fake.run_requests)
    events = await run(agent, "fits after trimming")
    assert len(fake.run_requests) - requests_before >= 2
    assert events[-1].message_count == 62
    fake.context_window = 100
    with pytest.raises(ContextTooLong):
        await run(agent, "cannot fit")
    await agent.aclose()


async def test_a_message_too_large_is_refused_before_sending(tmp_path, fake):
    agent = LocalAgent(make_settings(tmp_path, fake), "alice")
    with pytest.raises(MessageTooLong):
        await run(agent, "x" * 200_000)
    assert fake.run_requests == []
    await agent.aclose()


async def test_stopping_keeps_the_partial_reply_marked_stopped(tmp_path, fake):
    agent = LocalAgent(make_settings(tmp_path, fake), "alice")
    fake.enqueue(Reply("one two three four five six seven eight nine ten", chunk_size=4, delay=0.2))
    seen: list[str] = []

    async def consume():
        async with contextlib.aclosing(agent.send("count")) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    seen.append(event.text)

    task = asyncio.create_task(consume())
    while len(seen) < 2:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stored = stored_messages(tmp_path / "data", "alice")
    assert stored[-1].stopped and stored[-1].content.startswith("".join(seen))
    assert len(stored[-1].content) < len("one two three four five six seven eight nine ten")
    assert len(stored) == 2  # the turn, kept once
    await agent.aclose()


async def test_two_agents_for_one_user_see_each_others_turns(tmp_path, fake):
    settings = make_settings(tmp_path, fake)
    a, b = LocalAgent(settings, "alice"), LocalAgent(settings, "alice")
    await run(a, "from a")
    await run(b, "from b")
    events = await run(a, "and a again")
    assert events[-1].message_count == 6
    assert "you have said 3 things; first: from a" in reply_text(events)
    await a.aclose()
    await b.aclose()


def test_no_credentials_is_a_clear_error(tmp_path):
    settings = load_settings(config_path=tmp_path / "c.toml", env={})
    with pytest.raises(MissingCredentials) as info:
        LocalAgent(settings, "alice")
    assert "CLOUDFLARE_API_TOKEN" in str(info.value)
