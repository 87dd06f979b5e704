"""The local agent refuses a turn whose caller has not seen the whole stored conversation, and its
history stamp changes exactly when the history does."""

from __future__ import annotations

import pytest

from edgechat_tui.backends.local.agent import LocalAgent
from edgechat_tui.core.errors import HistoryChanged
from edgechat_tui.core.messages import Done
from tests.test_local_agent import fake, make_settings  # noqa: F401 - the loopback fake fixture


async def turn(agent, text, seen):
    return [event async for event in agent.send(text, seen=seen)]


@pytest.mark.parametrize("seen", [0, 1, 3, 4])
async def test_a_send_with_another_count_than_stored_sends_and_stores_nothing(tmp_path, fake, seen):  # noqa: F811
    agent = LocalAgent(make_settings(tmp_path, fake), "alice")
    assert isinstance((await turn(agent, "first", 0))[-1], Done)
    requests = len(fake.run_requests)
    with pytest.raises(HistoryChanged) as caught:
        await turn(agent, "second", seen)
    assert f"{seen} were shown" in caught.value.message
    assert len(fake.run_requests) == requests  # nothing went to the model
    assert len(await LocalAgent(make_settings(tmp_path, fake), "alice").history()) == 2  # nothing stored
    # With the count right, the turn goes; without one, as before.
    assert (await turn(agent, "second", 2))[-1].message_count == 4
    assert (await turn(agent, "third", None))[-1].message_count == 6
    await agent.aclose()


async def test_another_writer_makes_the_count_differ(tmp_path, fake):  # noqa: F811
    agent = LocalAgent(make_settings(tmp_path, fake), "alice")
    await turn(agent, "first", 0)
    other = LocalAgent(make_settings(tmp_path, fake), "alice")  # another edgechat for the profile
    await turn(other, "My name is Bob.", None)
    await other.aclose()
    with pytest.raises(HistoryChanged):
        await turn(agent, "What is my name?", 2)
    assert len(await agent.history()) == 4
    events = await turn(agent, "What is my name?", 4)
    sent = [m["content"] for m in fake.run_requests[-1].body["messages"] if m["role"] == "user"]
    assert sent == ["first", "My name is Bob.", "What is my name?"]
    assert events[-1].message_count == 6
    await agent.aclose()


async def test_the_stamp_changes_when_the_history_does_and_only_then(tmp_path, fake):  # noqa: F811
    # No automatic title: it is written a moment after the first reply, a change of the file at a
    # time the test does not choose.
    agent = LocalAgent(make_settings(tmp_path, fake, auto_title=False), "alice")
    empty = await agent.history_stamp()
    assert empty == await agent.history_stamp()
    await turn(agent, "first", None)
    after_turn = await agent.history_stamp()
    assert after_turn != empty
    assert after_turn == await agent.history_stamp()
    await agent.history()  # reading changes nothing
    assert after_turn == await agent.history_stamp()
    other = LocalAgent(make_settings(tmp_path, fake), "alice")
    await turn(other, "elsewhere", None)
    await other.aclose()
    assert await agent.history_stamp() != after_turn
    await agent.aclose()
