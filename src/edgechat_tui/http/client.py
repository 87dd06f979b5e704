"""The one place an HTTP client is made: TLS, timeouts, limits, the user agent, no redirects.

:class:`HttpClient` wraps one pooled ``httpx.AsyncClient``, made on first use (so building an agent
opens nothing), and tracks its state: once closed it refuses every request with
:class:`ClientClosed` instead of quietly building a new pool.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from edgechat_tui import __version__
from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.http.body import ACCEPT_ENCODING

USER_AGENT = f"edgechat/{__version__}"
#: The pool's limits: httpx's defaults, stated so that both backends surely share them.
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


class ClientClosed(EdgechatError):
    """A request on a client that was closed: the agent was shut down and cannot be used again."""


@functools.cache
def _verifying_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~0.15 s: one context serves every client of the process.
    return httpx.create_ssl_context()


def tls_context(url: str) -> ssl.SSLContext:
    """The TLS settings for requests to ``url``: httpx's verifying defaults, built once per process.

    A plain-http URL (a loopback server, a local proxy) gets a strict context with no trust anchors:
    no TLS happens there, and should it ever (a redirect is never followed), verification fails closed.
    """
    if urlsplit(url).scheme.lower() == "http":
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return _verifying_context()


def timeouts(*, connect: float, read: float) -> httpx.Timeout:
    """Connect (and wait for a free pooled connection) within ``connect``; ``read`` between bytes."""
    return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)


class HttpClient:
    """A pooled client for one service at ``base_url``. ``headers`` go with every request."""

    def __init__(self, base_url: str, *, timeout: httpx.Timeout, headers: Mapping[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url
        self.timeout = timeout
        # httpx's Headers: their repr masks the Authorization value, so vars() shows no token.
        self._headers = httpx.Headers({"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING})
        self._headers.update(headers or {})
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._client else "unused"
        return f"HttpClient({self.base_url!r}, {state})"

    @property
    def headers(self) -> httpx.Headers:
        """What goes with every request (a repr of them masks the token)."""
        return self._headers

    @property
    def closed(self) -> bool:
        return self._closed

    def _http(self) -> httpx.AsyncClient:
        if self._closed:
            raise ClientClosed("This connection was closed and cannot be used again.",
                               hint="start edgechat again")
        if self._client is None:
            # The headers (the token among them) live only in httpx's Headers, whose repr masks them.
            self._client = httpx.AsyncClient(
                transport=self._transport,
                verify=tls_context(self.base_url) if self._transport is None else True,
                timeout=self.timeout,
                limits=LIMITS,
                headers=self._headers,
                follow_redirects=False,  # a redirect could carry the token elsewhere, or send a POST twice
            )
        return self._client

    def build_request(self, method: str, url: str, **kw: Any) -> httpx.Request:
        return self._http().build_request(method, url, **kw)

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; the answer's body is left unread (read it with :mod:`.body`)."""
        return await self._http().send(request, stream=True)

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str, **kw: Any) -> AsyncIterator[httpx.Response]:
        """Send a request and yield its answer, closed (its connection dropped if unread) at the end."""
        response = await self.send(self.build_request(method, url, **kw))
        try:
            yield response
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        """Close the pool. Idempotent; any request after it raises ClientClosed."""
        self._closed = True
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


__all__ = ["LIMITS", "USER_AGENT", "ClientClosed", "HttpClient", "timeouts", "tls_context"]
