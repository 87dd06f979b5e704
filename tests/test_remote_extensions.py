"""RemoteAgent against an agent endpoint with the extensions of docs/protocol.md.

Streaming, history, reset and auth, each present and absent; errors with stable codes; faults inside a
stream; retries only where the protocol says the turn was not processed; stopping a reply halfway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Iterator

import pytest

from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.errors import (
    AuthError,
    BadRequest,
    ConnectionFailed,
    ContextTooLong,
    EdgechatError,
    NotFound,
    NotSupported,
    ProtocolError,
    QuotaExceeded,
    RateLimited,
    RequestTimeout,
    ServerError,
)
from edgechat_tui.core.messages import Done, Event, Retrying, TextDelta
from tests.fakes.agent_server import DEFAULT_MODEL, AgentServer, ScriptedStream, error_answer
from tests.fakes.seed_server import Scripted

TOKEN = "tok-Zq8-very-secret-4711"


@pytest.fixture
def agent_server() -> Iterator[AgentServer]:
    with AgentServer() as server:
        yield server


async def turn(agent: RemoteAgent, text: str) -> list[Event]:
    return [event async for event in agent.send(text)]


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# --- capabilities and streaming -----------------------------------------------------------------------


async def test_the_health_check_learns_the_capabilities(agent_server: AgentServer) -> None:
    async with RemoteAgent(agent_server.url, "alice") as agent:
        status = await agent.check()
        info = agent.info
    assert "edgechat agent" in status and "protocol 1" in status
    assert (info.streams, info.shares_history, info.can_reset) == (True, True, True)
    assert info.model == DEFAULT_MODEL and info.mode == "remote"


async def test_a_streamed_reply_arrives_in_pieces(agent_server: AgentServer) -> None:
    async with RemoteAgent(agent_server.url, "alice") as agent:
        await agent.check()
        events = await turn(agent, "hello")
    deltas = [e for e in events if isinstance(e, TextDelta)]
    done = events[-1]
    assert len(deltas) > 3 and isinstance(done, Done)
    assert text_of(events) == done.message.content
    assert done.message.content.startswith("You said: hello.")
    assert done.message_count == 2 and done.message.model == DEFAULT_MODEL
    assert done.usage is not None and done.usage.completion_tokens == len(deltas)


async def test_memory_and_isolation_over_streams(agent_server: AgentServer) -> None:
    async with RemoteAgent(agent_server.url, "alice") as alice, RemoteAgent(agent_server.url, "bob") as bob:
        await turn(alice, "alice one")
        bob_done = (await turn(bob, "bob one"))[-1]
        alice_done = (await turn(alice, "alice two"))[-1]
    assert isinstance(alice_done, Done) and isinstance(bob_done, Done)
    assert "Before that you said: alice one." in alice_done.message.content and alice_done.message_count == 4
    assert "alice" not in bob_done.message.content and bob_done.message_count == 2


async def test_the_content_type_decides_not_what_was_asked(agent_server: AgentServer) -> None:
    with AgentServer(capabilities=("history", "reset")) as json_only:
        async with RemoteAgent(json_only.url, "alice") as agent:
            await agent.check()
            events = await turn(agent, "hello")
            assert agent.info.streams is False
    assert "text/event-stream" in json_only.requests[-1].headers["accept"]
    assert [type(e) for e in events] == [TextDelta, Done]


async def test_streaming_is_learnt_from_the_answer_without_a_health_check(agent_server: AgentServer) -> None:
    async with RemoteAgent(agent_server.url, "alice") as agent:
        assert agent.info.streams is False  # assumed a seed until told otherwise
        events = await turn(agent, "hello")
        assert agent.info.streams is True
    assert len(events) > 3


async def test_keep_alive_comments_are_ignored() -> None:
    with AgentServer(keepalive=True) as server:
        async with RemoteAgent(server.url, "alice") as agent:
            events = await turn(agent, "hello")
    done = events[-1]
    assert isinstance(done, Done) and text_of(events) == done.message.content


async def test_unknown_events_are_ignored(agent_server: AgentServer) -> None:
    agent_server.script(ScriptedStream(garbage=b'event: progress\ndata: {"stage": "thinking"}\n\n'
                                               b"event: progress\ndata: not even json\n\n", garbage_after=1))
    async with RemoteAgent(agent_server.url, "alice") as agent:
        events = await turn(agent, "hello")
    assert isinstance(events[-1], Done) and text_of(events) == events[-1].message.content


# --- history and reset --------------------------------------------------------------------------------


async def test_history_lets_a_restarted_client_show_the_conversation(agent_server: AgentServer) -> None:
    async with RemoteAgent(agent_server.url, "alice") as agent:
        await turn(agent, "first")
        await turn(agent, "second")
    async with RemoteAgent(agent_server.url, "alice") as restarted:
        history = await restarted.history()
    assert history is not None
    assert [(m.role, m.content) for m in history[::2]] == [("user", "first"), ("user", "second")]
    assert history[3].content.startswith("You said: second.")
    assert all(m.time for m in history)
    (request,) = [r for r in agent_server.requests if r.path == "/api/history"]
    assert request.query == {"userId": ["alice"]}


async def test_history_of_a_new_user_is_empty(agent_server: AgentServer) -> None:
    async with RemoteAgent(agent_server.url, "nobody-yet") as agent:
        assert await agent.history() == []


async def test_history_absent_means_none(agent_server: AgentServer) -> None:
    with AgentServer(capabilities=("stream", "reset")) as server:
        async with RemoteAgent(server.url, "alice") as agent:
            events = await turn(agent, "hello")
            assert await agent.history() is None
            assert isinstance(events[-1], Done) and len(server.messages("alice")) == 2
        assert server.count("/api/history", "GET") == 0


async def test_reset_archives_and_starts_over(agent_server: AgentServer) -> None:
    async with RemoteAgent(agent_server.url, "alice") as agent:
        await turn(agent, "first")
        archived = await agent.reset()
        assert agent_server.messages("alice") == []
        assert await agent.history() == []
        done = (await turn(agent, "after reset"))[-1]
    assert archived is not None and agent_server.archives[archived][0]["content"] == "first"
    assert isinstance(done, Done) and done.message_count == 2
    assert "This is the first thing you said." in done.message.content


async def test_reset_absent_is_not_supported() -> None:
    with AgentServer(capabilities=("stream", "history")) as server:
        async with RemoteAgent(server.url, "alice") as agent:
            with pytest.raises(NotSupported, match=r"\(edgechat reset, /clear\) is not available on this"):
                await agent.reset()
            assert agent.info.can_reset is False
        assert server.count("/api/reset") == 0


async def test_a_prefix_reaches_every_route() -> None:
    with AgentServer(prefix="/team/x", token=TOKEN) as server:
        async with RemoteAgent(server.url + "/", "alice", token=TOKEN) as agent:
            await agent.check()
            await turn(agent, "hi")
            assert len(await agent.history() or []) == 2
            await agent.reset()
        assert [r.path for r in server.requests] == ["/", "/api/chat", "/api/history", "/api/reset"]


# --- auth ---------------------------------------------------------------------------------------------


async def test_a_token_goes_to_every_route_but_the_health_check() -> None:
    with AgentServer(token=TOKEN) as server:
        async with RemoteAgent(server.url, "alice", token=TOKEN) as agent:
            status = await agent.check()
            await turn(agent, "hi")
            await agent.history()
            await agent.reset()
        assert "needs a token" not in status
        by_path = {r.path: r.headers.get("authorization") for r in server.requests}
    assert by_path == {"/": None, "/api/chat": f"Bearer {TOKEN}", "/api/history": f"Bearer {TOKEN}",
                       "/api/reset": f"Bearer {TOKEN}"}


async def test_no_token_for_an_agent_that_needs_one() -> None:
    with AgentServer(token=TOKEN) as server:
        async with RemoteAgent(server.url, "alice") as agent:
            status = await agent.check()
            with pytest.raises(AuthError) as caught:
                await turn(agent, "hi")
            with pytest.raises(AuthError):
                await agent.history()
        assert server.count() == 1
    assert "needs a token" in status
    assert "needs a token" in caught.value.message and "remote_token" in (caught.value.hint or "")
    assert caught.value.status == 401 and caught.value.code == "unauthorized"


async def test_a_wrong_token() -> None:
    with AgentServer(token=TOKEN) as server:
        async with RemoteAgent(server.url, "alice", token="not-the-token") as agent:
            with pytest.raises(AuthError) as caught:
                await turn(agent, "hi")
        assert server.count() == 1
    assert "refused the token" in caught.value.message and "remote_token" in (caught.value.hint or "")


async def test_the_token_is_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    """Every failure a user can meet, with a token configured: no message, repr, traceback or log has it."""
    caplog.set_level(logging.DEBUG)
    failures: list[BaseException] = []
    with AgentServer(token=TOKEN) as server:
        scripts = [
            error_answer("unauthorized"), error_answer("not_found"), error_answer("bad_request"),
            error_answer("context_too_long"), error_answer("quota_exceeded"), error_answer("internal"),
            error_answer("model_unavailable"), Scripted.html(502), Scripted.text(200, f"echo Bearer {TOKEN}"),
            Scripted.json(500, {"error": f"bad header Bearer {TOKEN}"}),
            ScriptedStream(cut_after=1), ScriptedStream(end_after=1), Scripted(drop=True),
            ScriptedStream(garbage=b"event: delta\ndata: {\n\n"), Scripted(truncate=True),
        ]
        async with RemoteAgent(server.url, "alice", token=TOKEN, timeout=0.3) as agent:
            for script in scripts:
                server.script(script)
                try:
                    await turn(agent, "hi")
                except EdgechatError as error:
                    failures.append(error)
            server.script(ScriptedStream(stall_after=1, stall=1.0))
            with pytest.raises(RequestTimeout) as timeout:
                await turn(agent, "hi")
            failures.append(timeout.value)
            shown_agent = repr(agent) + str(agent.info) + repr(vars(agent))
        async with RemoteAgent(server.url + "/nowhere", "alice", token=TOKEN) as lost:
            with pytest.raises(NotFound) as not_found:
                await turn(lost, "hi")
            failures.append(not_found.value)
    assert len(failures) == len(scripts) + 2  # each script is a failure, plus the timeout and the 404
    for failure in failures:
        text = "".join(traceback.format_exception(failure)) + repr(failure) + str(failure)
        assert TOKEN not in text, text
    assert TOKEN not in shown_agent
    assert TOKEN not in caplog.text


# --- errors with stable codes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error_type", "says"),
    [
        ("bad_request", BadRequest, "rejected"),
        ("unauthorized", AuthError, "token"),
        ("not_found", NotFound, "No agent endpoint"),
        ("context_too_long", ContextTooLong, "too long"),
        ("quota_exceeded", QuotaExceeded, "used up"),
        ("model_unavailable", ServerError, "model failed"),
        ("internal", ServerError, "failed to answer"),
    ],
)
async def test_each_code_is_a_typed_error_and_is_not_retried(
    agent_server: AgentServer, code: str, error_type: type[EdgechatError], says: str
) -> None:
    agent_server.script(error_answer(code, "Something: went \x1b[31mwrong\x1b[0m", details="detail text"))
    async with RemoteAgent(agent_server.url, "alice", retry_delay=0.01) as agent:
        with pytest.raises(error_type) as caught:
            await turn(agent, "hi")
    assert says in caught.value.message
    assert "\x1b" not in str(caught.value)
    if code not in ("not_found", "unauthorized"):
        assert "Something: went wrong: detail text" in caught.value.message
    assert agent_server.count() == 1


async def test_rate_limited_is_retried_after_the_time_asked(agent_server: AgentServer) -> None:
    agent_server.script(error_answer("rate_limited", "Capacity temporarily exceeded", retry_after=1))
    async with RemoteAgent(agent_server.url, "alice", retry_delay=0.01) as agent:
        events = await turn(agent, "hello")
    retrying = [e for e in events if isinstance(e, Retrying)]
    assert len(retrying) == 1 and retrying[0].wait >= 1.0
    assert "busy" in retrying[0].reason and "Capacity temporarily exceeded" in retrying[0].reason
    assert isinstance(events[-1], Done) and events[-1].message_count == 2
    assert agent_server.count() == 2


async def test_rate_limited_gives_up_after_three_retries(agent_server: AgentServer) -> None:
    agent_server.script(*[error_answer("rate_limited", retry_after=0) for _ in range(5)])
    events: list[Event] = []
    async with RemoteAgent(agent_server.url, "alice", retry_delay=0.01) as agent:
        with pytest.raises(RateLimited) as caught:
            async for event in agent.send("hello"):
                events.append(event)
    assert [e.attempt for e in events if isinstance(e, Retrying)] == [1, 2, 3]
    assert agent_server.count() == 4
    assert caught.value.retry_after == 0


async def test_a_long_retry_after_is_reported_not_waited_for(agent_server: AgentServer) -> None:
    agent_server.script(error_answer("rate_limited", retry_after=3600))
    async with RemoteAgent(agent_server.url, "alice", retry_delay=0.01) as agent:
        with pytest.raises(RateLimited) as caught:
            await turn(agent, "hello")
    assert caught.value.retry_after == 3600 and "3600 s" in (caught.value.hint or "")
    assert agent_server.count() == 1


async def test_503_is_retried_500_is_not(agent_server: AgentServer) -> None:
    agent_server.script(Scripted.json(503, {"error": "overloaded"}, headers={"Retry-After": "0"}))
    async with RemoteAgent(agent_server.url, "alice", retry_delay=0.01) as agent:
        events = await turn(agent, "hello")
        assert isinstance(events[0], Retrying) and isinstance(events[-1], Done)
        assert agent_server.count() == 2
        agent_server.script(Scripted.json(500, {"error": "boom"}))
        with pytest.raises(ServerError):
            await turn(agent, "again")
    assert agent_server.count() == 3


async def test_an_html_503_from_a_proxy_is_retried(agent_server: AgentServer) -> None:
    agent_server.script(Scripted.html(503, "503 Service Temporarily Unavailable"))
    async with RemoteAgent(agent_server.url, "alice", retry_delay=0.01) as agent:
        events = await turn(agent, "hello")
    assert "503 Service Temporarily Unavailable" in events[0].reason  # type: ignore[union-attr]
    assert isinstance(events[-1], Done)


async def test_an_invalid_user_id_at_the_server_is_a_bad_request(agent_server: AgentServer) -> None:
    # The client checks ids first; a server with stricter rules still answers in words.
    agent_server.script(error_answer("bad_request", "Invalid userId"))
    async with RemoteAgent(agent_server.url, "alice") as agent:
        with pytest.raises(BadRequest, match="Invalid userId"):
            await turn(agent, "hi")


# --- faults inside a stream ---------------------------------------------------------------------------


async def test_a_cut_stream_keeps_the_text_and_is_not_sent_again(agent_server: AgentServer) -> None:
    agent_server.script(ScriptedStream(cut_after=3, store=True))
    events: list[Event] = []
    async with RemoteAgent(agent_server.url, "alice", retry_delay=0.01) as agent:
        with pytest.raises(ConnectionFailed) as caught:
            async for event in agent.send("hello"):
                events.append(event)
        assert not any(isinstance(e, Done) for e in events)
    assert len(events) == 3 and text_of(events) == "You said: hello. "
    # What was shown is kept, marked stopped, as Esc keeps it; the error says so.
    kept = caught.value.kept_partial
    assert kept.stopped and kept.message.role == "assistant" and kept.message.stopped
    assert kept.message.content == text_of(events)
    assert "lost in the middle" in caught.value.message and "may have stored" in (caught.value.hint or "")
    assert agent_server.count() == 1


async def test_a_stream_that_ends_without_done(agent_server: AgentServer) -> None:
    agent_server.script(ScriptedStream(end_after=2))
    async with RemoteAgent(agent_server.url, "alice", retry_delay=0.01) as agent:
        with pytest.raises(ProtocolError) as caught:
            await turn(agent, "hello")
    assert "ended before the agent said it was done" in caught.value.message
    assert "may have stored" in (caught.value.hint or "")
    assert agent_server.count() == 1


async def test_a_stream_that_ends_before_any_text(agent_server: AgentServer) -> None:
    agent_server.script(ScriptedStream(end_after=0))
    async with RemoteAgent(agent_server.url, "alice", retry_delay=0.01) as agent:
        with pytest.raises(ProtocolError, match="ended without a reply"):
            await turn(agent, "hello")
    assert agent_server.count() == 1  # not retried: the server may have stored the turn


async def test_a_stalled_stream_times_out_and_says_so(agent_server: AgentServer) -> None:
    agent_server.script(ScriptedStream(stall_after=2, stall=2.0))
    events: list[Event] = []
    async with RemoteAgent(agent_server.url, "alice", timeout=0.3, retry_delay=0.01) as agent:
        with pytest.raises(RequestTimeout) as caught:
            async for event in agent.send("hello"):
                events.append(event)
    assert len(events) == 2
    assert "stopped sending for 0.3 s" in caught.value.message
    assert "may still have" in (caught.value.hint or "")
    assert agent_server.count() == 1


async def test_a_slow_start_times_out(agent_server: AgentServer) -> None:
    agent_server.script(ScriptedStream(delay=2.0))
    async with RemoteAgent(agent_server.url, "alice", timeout=0.3, retry_delay=0.01) as agent:
        with pytest.raises(RequestTimeout, match=r"No answer from 127\.0\.0\.1:\d+ within 0\.3 s"):
            await turn(agent, "hello")
    assert agent_server.count() == 1


@pytest.mark.parametrize(
    ("garbage", "says"),
    [
        (b"event: delta\ndata: {not json\n\n", "not JSON"),
        (b"event: delta\ndata: [1, 2]\n\n", "not JSON"),
        (b'event: delta\ndata: {"content": "x"}\n\n', "without text"),
        (b"event: delta\ndata: \xff\xfe\n\n", "malformed"),
    ],
)
async def test_garbage_in_a_stream(agent_server: AgentServer, garbage: bytes, says: str) -> None:
    agent_server.script(ScriptedStream(garbage=garbage, garbage_after=1))
    async with RemoteAgent(agent_server.url, "alice", retry_delay=0.01) as agent:
        with pytest.raises(ProtocolError, match=says):
            await turn(agent, "hello")
    assert agent_server.count() == 1


async def test_an_event_larger_than_the_cap(agent_server: AgentServer) -> None:
    agent_server.script(ScriptedStream(huge_delta=3 * 1024 * 1024))
    async with RemoteAgent(agent_server.url, "alice") as agent:
        with pytest.raises(ProtocolError, match="malformed"):
            await turn(agent, "hello")


async def test_an_error_event_mid_stream_is_typed_and_not_retried(agent_server: AgentServer) -> None:
    agent_server.script(ScriptedStream(error_event={"error": "The model failed", "code": "model_unavailable",
                                                    "details": "5007: gone"}, error_after=2))
    events: list[Event] = []
    async with RemoteAgent(agent_server.url, "alice", retry_delay=0.01) as agent:
        with pytest.raises(ServerError) as caught:
            async for event in agent.send("hello"):
                events.append(event)
    assert len(events) == 2 and "The model failed: 5007: gone" in caught.value.message
    assert caught.value.code == "model_unavailable"
    assert agent_server.count() == 1


async def test_a_rate_limited_event_after_text_is_not_retried(agent_server: AgentServer) -> None:
    agent_server.script(ScriptedStream(error_event={"error": "busy", "code": "rate_limited", "retryAfter": 0},
                                       error_after=1))
    async with RemoteAgent(agent_server.url, "alice", retry_delay=0.01) as agent:
        with pytest.raises(RateLimited):
            await turn(agent, "hello")
    assert agent_server.count() == 1


async def test_a_rate_limited_event_before_any_text_is_retried(agent_server: AgentServer) -> None:
    agent_server.script(ScriptedStream(error_event={"error": "busy", "code": "rate_limited", "retryAfter": 0},
                                       error_after=0))
    async with RemoteAgent(agent_server.url, "alice", retry_delay=0.01) as agent:
        events = await turn(agent, "hello")
    assert isinstance(events[0], Retrying) and isinstance(events[-1], Done)
    assert agent_server.count() == 2


# --- stopping a reply ---------------------------------------------------------------------------------


async def test_stopping_a_reply_closes_the_connection_and_keeps_the_part_shown() -> None:
    long_reply = " ".join(f"word{i}" for i in range(400))
    with AgentServer(delta_delay=0.02) as server:
        server.script(ScriptedStream(reply=long_reply))
        async with RemoteAgent(server.url, "alice") as agent:
            await agent.check()
            seen: list[str] = []
            third = asyncio.Event()

            async def consume() -> None:
                async for event in agent.send("tell me a long story"):
                    if isinstance(event, TextDelta):
                        seen.append(event.text)
                        if len(seen) == 3:
                            third.set()

            task = asyncio.create_task(consume())
            await third.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The server sees the connection go away, long before the reply would have ended.
            assert await asyncio.to_thread(server.disconnected.wait, 10)
            events = await turn(agent, "next")  # the agent is free for the next message
    assert "".join(seen).startswith("word0 word1 word2")
    stored = server.messages("alice")
    assert stored[1]["stopped"] is True and len(stored[1]["content"]) < len(long_reply)
    assert isinstance(events[-1], Done)


async def test_breaking_out_of_the_loop_also_stops(agent_server: AgentServer) -> None:
    agent_server.delta_delay = 0.02
    agent_server.script(ScriptedStream(reply=" ".join(["many words"] * 300)))
    async with RemoteAgent(agent_server.url, "alice") as agent:
        async with contextlib.aclosing(agent.send("hello")) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    break
        assert await asyncio.to_thread(agent_server.disconnected.wait, 10)
        agent_server.delta_delay = 0.0
        assert isinstance((await turn(agent, "again"))[-1], Done)  # the turn ended: the agent is free
