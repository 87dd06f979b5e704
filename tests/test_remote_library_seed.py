"""A server without the conversation library: the seed's Worker (tests/fakes/seed_server.py), and an agent
with extensions but not ``conversations`` (protocol 2). edgechat keeps working there as one conversation
and says, before sending anything, what it cannot do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.errors import EmptyMessage, NotSupported
from edgechat_tui.core.messages import Done, Event, TextDelta
from tests.fakes.agent_server import AgentServer
from tests.fakes.seed_server import SeedServer

PROTOCOL_2 = ("stream", "history", "reset", "history-pages", "idempotency")


async def run(events: AsyncIterator[Event]) -> tuple[str, Done]:
    shown, done = [], None
    async for event in events:
        if isinstance(event, TextDelta):
            shown.append(event.text)
        elif isinstance(event, Done):
            done = event
    assert done is not None
    return "".join(shown), done


LIBRARY_TURNS = {
    "regenerate": lambda agent: agent.regenerate(),
    "regenerate one": lambda agent: agent.regenerate("3"),
    "edit": lambda agent: agent.edit("changed my mind"),
    "continue": lambda agent: agent.continue_reply(),
}


@pytest.mark.parametrize("which", LIBRARY_TURNS)
@pytest.mark.parametrize("server_kind", ["seed", "protocol-2"])
async def test_library_turns_say_what_is_not_available_and_send_nothing(server_kind, which):
    server = SeedServer() if server_kind == "seed" else AgentServer(capabilities=PROTOCOL_2)
    with server:
        async with RemoteAgent(server.url, "alice") as agent:
            # Not even the health check first: the agent learns what the server offers by itself.
            with pytest.raises(NotSupported) as caught:
                await run(LIBRARY_TURNS[which](agent))
            assert agent.conversations is None
            message = str(caught.value)
            assert "one conversation per user" in message and "127.0.0.1" in message
            assert caught.value.hint and "goes on" in caught.value.hint
            _, done = await run(agent.send("still here"))  # the agent is not left busy
        assert [r.path for r in server.requests] == ["/", "/api/chat"]
    assert done.conversation_id is None and done.message_id is None and not done.truncated


async def test_the_seed_path_keeps_working_as_one_conversation():
    with SeedServer() as server:
        async with RemoteAgent(server.url, "alice") as agent:
            await agent.check()
            assert agent.conversations is None
            _, first = await run(agent.send("my name is Ada"))
            _, second = await run(agent.send("what is my name?"))
            assert await agent.history() is None  # the seed does not share its history
            with pytest.raises(NotSupported):
                await agent.reset()
            with pytest.raises(EmptyMessage):
                await run(agent.edit("   "))  # an empty message is still refused as such
    assert (first.message_count, second.message_count) == (2, 4)
    assert "Before that you said: my name is Ada." in second.message.content
    for request in server.requests:
        if request.path == "/api/chat":
            assert set(request.json()) == {"message", "userId"}  # no conversationId for a seed


async def test_an_agent_without_the_library_shows_its_one_conversation():
    with AgentServer(capabilities=PROTOCOL_2) as server:
        async with RemoteAgent(server.url, "alice") as agent:
            await agent.check()
            assert agent.conversations is None and agent.info.shares_history
            await run(agent.send("first"))
            await run(agent.send("second"))
            history = await agent.history()
            assert [m.content for m in history if m.role == "user"] == ["first", "second"]
            await agent.reset()
            assert await agent.history() == []
            _, after = await run(agent.send("after the reset"))
    assert after.message_count == 2 and after.conversation_id is None
    assert all("conversationId" not in r.query for r in server.requests)
    assert all("conversationId" not in r.json() for r in server.requests if r.path == "/api/chat")
