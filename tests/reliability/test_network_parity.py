"""The same transport failure gives the same error in local and remote mode: class, text, code, flags.

Every failure is real, on loopback: a refused port, a port whose accept queue is full (connect
timeout), a server that never answers (read timeout), https to a plain-HTTP server (TLS), a name
that does not resolve, bytes that are not HTTP, a body or stream cut by a reset, a stream that
stalls after text, and a stream of keep-alive comments past the reply deadline. The Workers AI
client and the remote agent each meet it; their errors must match (the host named aside).
A pool timeout cannot be made through either public surface, so the one map is checked directly.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import httpx
import pytest

from edgechat_tui.backends.local.workers_ai import WorkersAIClient
from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.errors import ConnectionFailed, EdgechatError, RequestTimeout
from edgechat_tui.http.transport import Where, transport_error
from tests.fakes.raw_server import RawServer, backlogged_port, closed_port

TIMEOUT = 0.5


@contextlib.contextmanager
def failure(name: str) -> Iterator[str]:
    """The base URL (scheme and host) at which ``name`` happens."""
    if name == "refused":
        yield f"http://127.0.0.1:{closed_port()}"
    elif name == "connect-timeout":
        with backlogged_port() as port:
            yield f"http://127.0.0.1:{port}"
    elif name == "dns":
        yield "http://edgechat-no-such-host.invalid"
    else:
        mode = {"read-timeout": "silent", "tls": "not-tls", "protocol-error": "garbage",
                "reset-mid-body": "cut-body", "reset-mid-stream": "cut-stream",
                "stall-after-text": "stall-stream", "reply-deadline": "trickle"}[name]
        with RawServer(mode) as server:
            yield server.url.replace("http://", "https://") if name == "tls" else server.url


async def _local(base: str, reply_timeout: float | None) -> tuple[EdgechatError, str]:
    client = WorkersAIClient(account_id="a" * 32, api_token="tok-local-Zq8-secret",
                             api_base=f"{base}/client/v4",
                             connect_timeout=TIMEOUT, read_timeout=TIMEOUT, reply_timeout=reply_timeout,
                             max_retries=0)
    text = ""
    try:
        async with client:
            async for event in client.chat([{"role": "user", "content": "hi"}], model="@cf/meta/x",
                                           max_tokens=10, temperature=None, session_id=None):
                text += getattr(event, "text", "")
    except EdgechatError as error:
        return error, text
    raise AssertionError("no error in local mode")


async def _remote(base: str, reply_timeout: float | None) -> tuple[EdgechatError, str]:
    text = ""
    try:
        async with RemoteAgent(base, "alice", token="tok-remote-Zq8-secret", timeout=TIMEOUT,
                               connect_timeout=TIMEOUT, reply_timeout=reply_timeout, max_retries=0) as agent:
            async for event in agent.send("hi"):
                text += getattr(event, "text", "")
    except EdgechatError as error:
        return error, text
    raise AssertionError("no error in remote mode")


def _face(error: EdgechatError, base: str) -> tuple:
    host = re.sub(r"^https?://", "", base)
    name = host.split(":")[0]
    message = error.message.replace(host, "HOST").replace(f"'{name}'", "'NAME'")
    return (type(error).__name__, message, error.code, getattr(error, "reached_server", None),
            getattr(error, "may_have_answered", None))


CASES = {
    # name: (error class, code, words in the message)
    "refused": (ConnectionFailed, "refused", "refused"),
    "connect-timeout": (ConnectionFailed, "connect_timeout", "within 0.5 s"),
    "read-timeout": (RequestTimeout, "timeout", "no answer"),
    "tls": (ConnectionFailed, "tls", "secure connection"),
    "dns": (ConnectionFailed, None, "resolve"),
    "protocol-error": (ConnectionFailed, "lost", "lost"),
    "reset-mid-body": (ConnectionFailed, "lost", "lost"),
    "reset-mid-stream": (ConnectionFailed, "lost", "middle of the reply"),
    "stall-after-text": (RequestTimeout, "timeout", "middle of the reply"),
    "reply-deadline": (RequestTimeout, "reply_timeout", "within 1 s"),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_a_transport_failure_reads_the_same_in_local_and_remote_mode(name: str) -> None:
    expected, code, words = CASES[name]
    reply_timeout = 1.0 if name == "reply-deadline" else None
    with failure(name) as base:
        local, local_text = await _local(base, reply_timeout)
        remote, remote_text = await _remote(base, reply_timeout)
    assert _face(local, base) == _face(remote, base), (str(local), str(remote))
    assert isinstance(local, expected), str(local)
    if code is not None:
        assert local.code == code
    else:
        assert local.code in ("dns", "dns_temporary")
    assert words in local.message.lower()
    assert local_text == remote_text == ("Hello" if name in ("reset-mid-stream", "stall-after-text") else "")
    for error in (local, remote):
        assert "tok-" not in str(error) and "\n" not in error.message


@pytest.mark.parametrize("exc", [
    httpx.PoolTimeout("no connection free"), httpx.WriteTimeout("write"), httpx.ReadError("reset"),
    httpx.WriteError("broken pipe"), httpx.RemoteProtocolError("bad"), httpx.DecodingError("bad gzip"),
    httpx.ProxyError("proxy"), httpx.UnsupportedProtocol("ftp"),
], ids=lambda exc: type(exc).__name__)
def test_the_one_map_types_every_transport_failure(exc: httpx.HTTPError) -> None:
    error = transport_error(exc, Where(host="127.0.0.1:9", connect_timeout=1, read_timeout=2))
    assert isinstance(error, EdgechatError) and error.message and "\n" not in error.message
    if isinstance(exc, httpx.PoolTimeout):
        assert isinstance(error, RequestTimeout) and error.may_have_answered is False


async def test_a_closed_client_refuses_requests_in_both_modes() -> None:
    """Closed means closed: no silent new connection pool, the same clear error in both modes."""
    from edgechat_tui.http.client import ClientClosed

    with RawServer("silent") as server:
        client = WorkersAIClient(account_id="a" * 32, api_token="t", api_base=f"{server.url}/client/v4")
        await client.aclose()
        with pytest.raises(ClientClosed) as local:
            async for _ in client.chat([{"role": "user", "content": "hi"}], model="@cf/meta/x", max_tokens=5,
                                       temperature=None, session_id=None):
                pass
        agent = RemoteAgent(server.url, "alice")
        await agent.aclose()
        with pytest.raises(ClientClosed) as remote:
            async for _ in agent.send("hi"):
                pass
        with pytest.raises(ClientClosed):
            await agent.check()
        assert server.requests == 0
    assert local.value.message == remote.value.message
