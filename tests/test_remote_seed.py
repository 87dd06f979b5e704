"""RemoteAgent against a server that implements the seed contract exactly and nothing more.

Each test talks HTTP over a loopback socket to :class:`tests.fakes.seed_server.SeedServer` and counts,
at the server, how many chat requests arrived: a message must never be sent twice unless it certainly
did not reach the server.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.errors import (
    ConnectionFailed,
    EmptyMessage,
    NotFound,
    NotSupported,
    ProtocolError,
    RequestTimeout,
    ServerError,
    UsageError,
)
from edgechat_tui.core.messages import Done, Event, Retrying, TextDelta
from tests.fakes.seed_server import Scripted, SeedServer


@pytest.fixture
def seed() -> Iterator[SeedServer]:
    with SeedServer() as server:
        yield server


async def turn(agent: RemoteAgent, text: str) -> list[Event]:
    return [event async for event in agent.send(text)]


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Poll ``condition`` (a server-side fact that comes true in its own thread) for a while."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the conversation -------------------------------------------------------------------------------


async def test_the_whole_reply_arrives_in_one_piece_then_done(seed: SeedServer) -> None:
    async with RemoteAgent(seed.url, "alice") as agent:
        events = await turn(agent, "hello")
    assert len(events) == 2
    delta, done = events
    assert isinstance(delta, TextDelta) and isinstance(done, Done)
    assert delta.text == done.message.content == "You said: hello. This is the first thing you said. " \
                                                  "I remember 1 messages."
    assert done.message.role == "assistant" and done.message_count == 2 and not done.stopped


async def test_the_agent_remembers_across_turns(seed: SeedServer) -> None:
    async with RemoteAgent(seed.url, "alice") as agent:
        await turn(agent, "my name is Ada")
        events = await turn(agent, "what is my name?")
    done = events[-1]
    assert isinstance(done, Done)
    assert "Before that you said: my name is Ada." in done.message.content
    assert done.message_count == 4
    assert [m["role"] for m in seed.messages("alice")] == ["user", "assistant"] * 2


async def test_users_are_kept_apart(seed: SeedServer) -> None:
    async with RemoteAgent(seed.url, "alice") as alice, RemoteAgent(seed.url, "bob") as bob:
        await turn(alice, "alice's secret")
        bob_events = await turn(bob, "hi, I am bob")
        alice_events = await turn(alice, "me again")
    bob_done, alice_done = bob_events[-1], alice_events[-1]
    assert isinstance(bob_done, Done) and isinstance(alice_done, Done)
    assert "alice's secret" not in bob_done.message.content and bob_done.message_count == 2
    assert "alice's secret" in alice_done.message.content and alice_done.message_count == 4
    assert [m["content"] for m in seed.messages("bob") if m["role"] == "user"] == ["hi, I am bob"]


async def test_the_request_is_the_seed_contract(seed: SeedServer) -> None:
    async with RemoteAgent(seed.url, "alice") as agent:
        await turn(agent, "hello")
    (request,) = seed.requests
    assert (request.method, request.path) == ("POST", "/api/chat")
    assert request.json() == {"message": "hello", "userId": "alice"}
    assert request.headers["content-type"] == "application/json"
    accept = request.headers["accept"]
    assert "text/event-stream" in accept and "application/json" in accept
    assert "authorization" not in request.headers


@pytest.mark.parametrize("prefix", ["team", "a/b/c"])
@pytest.mark.parametrize("slash", ["", "/"])
async def test_a_path_prefix_is_kept(prefix: str, slash: str) -> None:
    with SeedServer(prefix=prefix) as server:
        async with RemoteAgent(server.url + slash, "alice") as agent:
            assert "reachable" in await agent.check()
            events = await turn(agent, "hi")
        assert isinstance(events[-1], Done) and events[-1].message_count == 2
        assert [r.path for r in server.requests] == ["/", "/api/chat"]


async def test_unicode_goes_both_ways(seed: SeedServer) -> None:
    async with RemoteAgent(seed.url, "alice") as agent:
        events = await turn(agent, "héllo 🌍 «ok»")
    assert "héllo 🌍 «ok»" in events[0].text  # type: ignore[union-attr]


# --- what the seed does not offer ---------------------------------------------------------------------


async def test_the_health_check_recognises_a_seed(seed: SeedServer) -> None:
    async with RemoteAgent(seed.url, "alice") as agent:
        status = await agent.check()
        info = agent.info
    assert "Cloudflare AI Chat Worker" in status and "seed" in status
    assert (info.streams, info.shares_history, info.can_reset, info.model) == (False, False, False, None)
    (request,) = seed.requests
    assert (request.method, request.path) == ("GET", "/")


async def test_no_history_endpoint_means_none_and_the_session_turns_stay(seed: SeedServer) -> None:
    async with RemoteAgent(seed.url, "alice") as agent:
        await turn(agent, "one")
        await turn(agent, "two")
        assert await agent.history() is None
    session = seed.messages("alice")  # the session's turns are the server's: none kept or lost
    assert [(m["role"], m["content"]) for m in session[::2]] == [("user", "one"), ("user", "two")]
    assert all(m["role"] == "assistant" for m in session[1::2])
    assert seed.count("/api/history", "GET") == 0  # not even tried: the health said there is none


async def test_no_reset_endpoint_means_clear_is_not_available(seed: SeedServer) -> None:
    async with RemoteAgent(seed.url, "alice") as agent:
        await turn(agent, "one")
        with pytest.raises(NotSupported) as caught:
            await agent.reset()
    assert "(edgechat reset, /clear) is not available on this agent" in str(caught.value)
    assert len(seed.messages("alice")) == 2


async def test_an_empty_message_is_not_sent(seed: SeedServer) -> None:
    async with RemoteAgent(seed.url, "alice") as agent:
        with pytest.raises(EmptyMessage):
            await turn(agent, "  \n ")
    assert seed.requests == []


# --- failures ---------------------------------------------------------------------------------------


async def test_the_seeds_model_failure_shows_its_details_and_is_sent_once(seed: SeedServer) -> None:
    seed.script(Scripted.model_failure("3040: Capacity temporarily exceeded, please try again."))
    async with RemoteAgent(seed.url, "alice", retry_delay=0.01) as agent:
        with pytest.raises(ServerError) as caught:
            await turn(agent, "hello")
        assert seed.count() == 1
        assert "AI request failed: 3040: Capacity temporarily exceeded" in caught.value.message
        # The seed kept the failed message (its defect): the next count is odd, and that is shown as is.
        events = await turn(agent, "again")
    assert isinstance(events[-1], Done) and events[-1].message_count == 3


async def test_an_html_error_page_is_reported_by_its_title_and_sent_once(seed: SeedServer) -> None:
    seed.script(Scripted.html(502, "502 Bad Gateway"))
    async with RemoteAgent(seed.url, "alice", retry_delay=0.01) as agent:
        with pytest.raises(ServerError) as caught:
            await turn(agent, "hello")
    assert "502" in caught.value.message and "'502 Bad Gateway'" in caught.value.message
    assert "<" not in str(caught.value)
    assert seed.count() == 1


async def test_a_200_that_is_not_json(seed: SeedServer) -> None:
    seed.script(Scripted.text(200, "OK, thanks!"))
    async with RemoteAgent(seed.url, "alice") as agent:
        with pytest.raises(ProtocolError) as caught:
            await turn(agent, "hello")
    assert "not JSON" in caught.value.message and "OK, thanks!" in caught.value.message
    assert seed.count() == 1


async def test_a_200_html_page_is_not_an_agent(seed: SeedServer) -> None:
    seed.script(Scripted.html(200, "Welcome to my blog"))
    async with RemoteAgent(seed.url, "alice") as agent:
        with pytest.raises(ProtocolError) as caught:
            await turn(agent, "hello")
    assert "'Welcome to my blog'" in caught.value.message and "--remote" in (caught.value.hint or "")


async def test_json_without_a_reply(seed: SeedServer) -> None:
    seed.script(Scripted.json(200, {"reply": "hi"}))
    async with RemoteAgent(seed.url, "alice") as agent:
        with pytest.raises(ProtocolError, match="no reply"):
            await turn(agent, "hello")


async def test_a_wrong_path_is_a_404_that_shows_the_url_tried(seed: SeedServer) -> None:
    url = seed.url + "/wrong/place"
    async with RemoteAgent(url, "alice", token="tok-secret-9") as agent:
        with pytest.raises(NotFound) as caught:
            await turn(agent, "hello")
        with pytest.raises(NotFound) as health:
            await agent.check()
    assert f"{url}/api/chat" in caught.value.message and "tok-secret-9" not in str(caught.value)
    assert f"{url}/" in health.value.message
    assert seed.count("/wrong/place/api/chat") == 1


async def test_a_health_check_that_is_a_web_page(seed: SeedServer) -> None:
    seed.script(Scripted.html(200, "My homepage", route="/", method="GET"))
    async with RemoteAgent(seed.url, "alice") as agent:
        with pytest.raises(ProtocolError) as caught:
            await agent.check()
    assert "does not answer as an agent" in caught.value.message and "'My homepage'" in caught.value.message


async def test_a_health_check_that_is_json_but_not_an_agent(seed: SeedServer) -> None:
    seed.script(Scripted.json(200, {"hello": "world"}, route="/", method="GET"))
    async with RemoteAgent(seed.url, "alice") as agent:
        with pytest.raises(ProtocolError, match="does not answer as an agent"):
            await agent.check()


async def test_a_truncated_answer_says_the_agent_may_have_stored_it(seed: SeedServer) -> None:
    seed.script(Scripted(truncate=True))
    async with RemoteAgent(seed.url, "alice", retry_delay=0.01) as agent:
        with pytest.raises(ConnectionFailed) as caught:
            await turn(agent, "hello")
    assert getattr(caught.value, "kept_partial", None) is None  # nothing was shown: nothing kept
    assert "may have stored" in (caught.value.hint or "")
    assert seed.count() == 1
    assert len(seed.messages("alice")) == 2  # it did: the answer was lost, not the turn


async def test_a_connection_dropped_before_the_answer_is_not_sent_again(seed: SeedServer) -> None:
    seed.script(Scripted(drop=True, process=True))
    async with RemoteAgent(seed.url, "alice", retry_delay=0.01) as agent:
        with pytest.raises(ConnectionFailed) as caught:
            await turn(agent, "hello")
    assert caught.value.reached_server is True
    assert "may still have stored" in (caught.value.hint or "")
    assert seed.count() == 1


async def test_a_timeout_says_the_agent_may_still_have_answered(seed: SeedServer) -> None:
    seed.script(Scripted(delay=1.5))
    async with RemoteAgent(seed.url, "alice", timeout=0.3, retry_delay=0.01) as agent:
        with pytest.raises(RequestTimeout) as caught:
            await turn(agent, "hello")
    assert "0.3 s" in caught.value.message and caught.value.may_have_answered
    assert "may still have stored" in (caught.value.hint or "")
    assert "remote_timeout" in (caught.value.hint or "")
    assert seed.count() == 1
    # And it did: the slow model finished after we gave up.
    assert wait_until(lambda: len(seed.messages("alice")) == 2)


async def test_a_huge_answer_is_refused_not_buffered(seed: SeedServer) -> None:
    seed.script(Scripted(size=50 * 1024 * 1024, process=True))
    async with RemoteAgent(seed.url, "alice") as agent:
        with pytest.raises(ProtocolError, match="larger than 8 MB"):
            await turn(agent, "hello")
    assert seed.count() == 1


async def test_a_huge_answer_without_a_length_is_cut_at_the_cap(seed: SeedServer) -> None:
    import tracemalloc

    seed.script(Scripted(size=50 * 1024 * 1024, chunked=True, process=True))
    tracemalloc.start()
    try:
        async with RemoteAgent(seed.url, "alice") as agent:
            with pytest.raises(ProtocolError, match="larger than 8 MB"):
                await turn(agent, "hello")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 24 * 1024 * 1024  # never the 50 MB, nor a copy of it


async def test_a_refused_connection_is_retried_then_reported(seed: SeedServer) -> None:
    url = f"http://127.0.0.1:{closed_port()}/team"
    events: list[Event] = []
    async with RemoteAgent(url, "alice", retry_delay=0.01) as agent:
        with pytest.raises(ConnectionFailed) as caught:
            async for event in agent.send("hello"):
                events.append(event)
    assert caught.value.reached_server is False and caught.value.code == "refused"
    assert "refused" in caught.value.message and "not sent" in (caught.value.hint or "")
    retries = [(e.attempt, e.max_attempts) for e in events if isinstance(e, Retrying)]
    assert retries == [(1, 4), (2, 4), (3, 4)]
    assert all(isinstance(e, Retrying) and e.wait > 0 for e in events)


async def test_a_refused_connection_that_comes_back_succeeds(seed: SeedServer) -> None:
    port = closed_port()
    events: list[Event] = []

    async def start_later() -> SeedServer:
        await asyncio.sleep(0.05)
        return SeedServer(port=port).start()

    async with RemoteAgent(f"http://127.0.0.1:{port}", "alice", retry_delay=0.2) as agent:
        starting = asyncio.create_task(start_later())
        async for event in agent.send("hello"):
            events.append(event)
    server = await starting
    try:
        assert isinstance(events[0], Retrying) and isinstance(events[-1], Done)
        assert server.count() == 1
    finally:
        server.close()


async def test_a_name_that_does_not_resolve() -> None:
    events: list[Event] = []
    async with RemoteAgent("http://edgechat-no-such-agent.invalid/team", "alice", retry_delay=0.01) as agent:
        with pytest.raises(ConnectionFailed) as caught:
            async for event in agent.send("hello"):
                events.append(event)
        with pytest.raises(ConnectionFailed) as health:
            await agent.check()
    assert caught.value.reached_server is False and "not sent" in (caught.value.hint or "")
    assert "'edgechat-no-such-agent.invalid'" in caught.value.message
    if caught.value.code == "dns":  # the resolver said the name does not exist: no point in asking again
        assert "does not resolve" in caught.value.message and events == []
    else:  # a resolver that cannot answer at all (no network) fails temporarily: worth a few tries
        assert caught.value.code == "dns_temporary" and len(events) == 3
    assert health.value.code == caught.value.code


async def test_a_second_message_while_one_is_coming_is_refused(seed: SeedServer) -> None:
    seed.script(Scripted(delay=0.5))
    async with RemoteAgent(seed.url, "alice") as agent:
        first = agent.send("one")
        pending = asyncio.ensure_future(first.__anext__())
        await asyncio.sleep(0.05)
        with pytest.raises(UsageError, match="still coming"):
            await turn(agent, "two")
        assert isinstance(await pending, TextDelta)
        await first.aclose()
    assert seed.count() == 1


async def test_stopping_while_waiting_keeps_nothing_and_frees_the_agent(seed: SeedServer) -> None:
    seed.script(Scripted(delay=1.0))
    async with RemoteAgent(seed.url, "alice") as agent:
        task = asyncio.create_task(turn(agent, "hello"))
        assert await asyncio.to_thread(wait_until, lambda: seed.count() == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The agent is free again; the next turn works (the slow one may land first on the server).
        events = await turn(agent, "next")
    assert isinstance(events[-1], Done)
