"""What servers send: compressed bombs and JSON nested too deep, on every path that reads a server body.

Both come from the loopback fakes, as real HTTP answers: a body of 590 bytes, gzip inside gzip
(``Content-Encoding: gzip, gzip``), that decodes to 256 MiB; and JSON nested 100,000 deep. Each is
sent as an error body, a whole JSON answer, an SSE stream and a token check's answer by Workers AI
(local mode), and as an
error body, a chat answer, an SSE stream, a health answer and a history answer by an agent
endpoint. Caps count decoded bytes, so the memory peak stays small (measured with tracemalloc); every
parse fails as a clear typed error, never a RecursionError.
"""

from __future__ import annotations

import functools
import gzip
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable

import pytest

from edgechat_tui.backends.local.workers_ai import WorkersAIClient
from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.errors import EdgechatError, ProtocolError
from tests.fakes.agent_server import AgentServer
from tests.fakes.seed_server import Scripted
from tests.fakes.workers_ai import ErrorReply, FakeWorkersAI
from tests.reliability.harness import ACCOUNT, REMOTE_TOKEN, TOKEN, unclear_reasons

MiB = 1024 * 1024
#: A peak above this means a body was held whole (the bomb is 256 MiB; the largest cap is 16 MiB).
PEAK_LIMIT = 48 * MiB
DEEP = b"[" * 100_000 + b"]" * 100_000


@functools.cache
def bomb() -> bytes:
    """256 MiB of zeros, gzipped, gzipped again: 590 bytes on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * MiB
    once = b"".join([packer.compress(block) for _ in range(256)] + [packer.flush()])
    return gzip.compress(once, 9)


BOMB_HEADERS = {"Content-Encoding": "gzip, gzip"}


def _body(kind: str, sse_prefix: bytes = b"data: ") -> tuple[bytes, dict[str, str]]:
    if kind == "bomb":
        return bomb(), BOMB_HEADERS
    return sse_prefix + DEEP + b"\n\n" if sse_prefix else DEEP, {}


async def _measure(call: Callable[[], Awaitable[object]]) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    try:
        try:
            await call()
        except Exception as exc:  # the point is to see what comes out
            return exc, tracemalloc.get_traced_memory()[1]
        return None, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _check(error: BaseException | None, peak: int, expected: tuple[type[BaseException], ...]) -> None:
    assert isinstance(error, EdgechatError), f"{type(error).__name__}: {str(error)[:200]}"
    assert not unclear_reasons(error, expected), unclear_reasons(error, expected)
    assert peak < PEAK_LIMIT, f"peak {peak / MiB:.0f} MiB"


LOCAL_PATHS = {
    # path: (status, content type, SSE data prefix for the deep case, expected error)
    "error-body": (500, "application/json", b"", (EdgechatError,)),
    "json-answer": (200, "application/json", b"", (ProtocolError,)),
    "sse-stream": (200, "text/event-stream", b"data: ", (ProtocolError,)),
}


@pytest.mark.parametrize("kind", ["bomb", "deep"])
@pytest.mark.parametrize("path", list(LOCAL_PATHS))
async def test_workers_ai_bodies_are_capped_decoded_and_parsed_safely(path: str, kind: str) -> None:
    status, content_type, prefix, expected = LOCAL_PATHS[path]
    body, headers = _body(kind, prefix)
    with FakeWorkersAI(token=TOKEN, account_id=ACCOUNT) as fake:
        fake.enqueue(ErrorReply(status, body=body, content_type=content_type, headers=headers))
        client = WorkersAIClient(account_id=ACCOUNT, api_token=TOKEN, api_base=fake.api_base, max_retries=0)

        async def chat() -> None:
            async with client:
                async for _event in client.chat([{"role": "user", "content": "hi"}], model=fake_model(),
                                                max_tokens=10, temperature=None, session_id=None,
                                                stream=content_type == "text/event-stream"):
                    pass

        error, peak = await _measure(chat)
    _check(error, peak, expected)


@pytest.mark.parametrize("kind", ["bomb", "deep"])
@pytest.mark.parametrize("status", [200, 500])
async def test_the_token_check_is_capped_decoded_and_parsed_safely(status: int, kind: str) -> None:
    body, headers = _body(kind, b"")
    with FakeWorkersAI(token=TOKEN, account_id=ACCOUNT) as fake:
        fake.verify_reply = ErrorReply(status, body=body, content_type="application/json", headers=headers)
        client = WorkersAIClient(account_id=ACCOUNT, api_token=TOKEN, api_base=fake.api_base, max_retries=0)

        async def verify() -> None:
            async with client:
                await client.verify_token()

        error, peak = await _measure(verify)
    _check(error, peak, (EdgechatError,) if status != 200 else (ProtocolError,))


def fake_model() -> str:
    from tests.fakes.workers_ai import DEFAULT_MODEL

    return DEFAULT_MODEL


REMOTE_PATHS = {
    # path: (route, method, status, content type, SSE prefix for the deep case, expected error)
    "error-body": ("/api/chat", "POST", 500, "application/json", b"", (EdgechatError,)),
    "chat-answer": ("/api/chat", "POST", 200, "application/json", b"", (ProtocolError,)),
    "sse-stream": ("/api/chat", "POST", 200, "text/event-stream", b"event: delta\ndata: ", (ProtocolError,)),
    "health": ("/", "GET", 200, "application/json", b"", (ProtocolError,)),
    "history": ("/api/history", "GET", 200, "application/json", b"", (ProtocolError,)),
}


@pytest.mark.parametrize("kind", ["bomb", "deep"])
@pytest.mark.parametrize("path", list(REMOTE_PATHS))
async def test_agent_bodies_are_capped_decoded_and_parsed_safely(path: str, kind: str) -> None:
    route, method, status, content_type, prefix, expected = REMOTE_PATHS[path]
    body, headers = _body(kind, prefix)
    with AgentServer(token=REMOTE_TOKEN) as server:
        server.script(Scripted(status=status, body=body, content_type=content_type, headers=headers,
                               route=route, method=method))
        agent = RemoteAgent(server.url, "alice", token=REMOTE_TOKEN, max_retries=0)

        async def call() -> None:
            async with agent:
                if path == "health":
                    await agent.check()
                elif path == "history":
                    await agent.history()
                else:
                    async for _event in agent.send("hi"):
                        pass

        error, peak = await _measure(call)
    _check(error, peak, expected)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw", "gzip, deflate", "x-gzip",
                                      "identity"])
async def test_every_declared_encoding_is_read_and_capped(encoding: str) -> None:
    """A normal answer in each encoding is read; the same answer padded to 64 MiB is refused, small."""
    import json

    def encode(data: bytes, coding: str) -> bytes:
        if coding in ("gzip", "x-gzip"):
            return gzip.compress(data)
        if coding == "deflate":
            return zlib.compress(data)
        if coding == "deflate-raw":
            packer = zlib.compressobj(6, zlib.DEFLATED, -15)
            return packer.compress(data) + packer.flush()
        return data

    def encoded(data: bytes) -> bytes:
        for coding in [c.strip() for c in encoding.split(",")]:
            data = encode(data, coding)
        return data

    declared = encoding.replace("deflate-raw", "deflate")
    small = json.dumps({"message": "Hello", "messageCount": 2}).encode()
    padded = json.dumps({"message": "x" * (64 * MiB), "messageCount": 2}).encode()
    with AgentServer(token=REMOTE_TOKEN) as server:
        server.script(Scripted(200, body=encoded(small), headers={"Content-Encoding": declared}),
                      Scripted(200, body=encoded(padded), headers={"Content-Encoding": declared}))
        async with RemoteAgent(server.url, "alice", token=REMOTE_TOKEN, max_retries=0) as agent:
            events = [event async for event in agent.send("hi")]
            assert getattr(events[0], "text", None) == "Hello"
            if encoding != "identity":
                error, peak = await _measure(lambda: _drain(agent))
                _check(error, peak, (ProtocolError,))


async def _drain(agent: RemoteAgent) -> None:
    async for _event in agent.send("again"):
        pass


async def test_an_encoding_edgechat_does_not_read_is_a_clear_error() -> None:
    with AgentServer(token=REMOTE_TOKEN) as server:
        server.script(Scripted(200, body=b"\x1b]0;x\x07", headers={"Content-Encoding": "br"}))
        async with RemoteAgent(server.url, "alice", token=REMOTE_TOKEN, max_retries=0) as agent:
            error, _peak = await _measure(lambda: _drain(agent))
    assert isinstance(error, ProtocolError) and "br" in error.message
    assert not unclear_reasons(error, (ProtocolError,))
