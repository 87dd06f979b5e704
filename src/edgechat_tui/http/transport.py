"""The one map from transport failures (httpx's exceptions, the reply deadline) to the errors users read.

Both backends call :func:`transport_error`, so the same failure gives the same class, message,
``code`` and flags in local and remote mode; only the host named differs. The messages say what
happened and where; whether the request may have been processed is in the flags
(``reached_server``, ``may_have_answered``), and a backend may give a hint that says what that
means for it (a remote agent may have stored the turn).

| failure | error | code |
|---|---|---|
| connect timeout | ConnectionFailed, reached_server False | connect_timeout |
| name does not resolve / resolver failed | ConnectionFailed, reached_server False | dns / dns_temporary |
| connection refused | ConnectionFailed, reached_server False | refused |
| TLS handshake failed | ConnectionFailed, reached_server False | tls |
| other connect failure | ConnectionFailed, reached_server False | unreachable |
| no pooled connection free in time | RequestTimeout, may_have_answered False | timeout |
| read or write timeout | RequestTimeout | timeout |
| the reply deadline passed | RequestTimeout | reply_timeout |
| connection lost, or not HTTP (protocol error) | ConnectionFailed, reached_server True | lost |
| a body that does not decode | ProtocolError | decoding |
| a URL httpx cannot use | ConfigError | |
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

import httpx

from edgechat_tui.core.errors import (
    BackendError,
    ConfigError,
    ConnectionFailed,
    EdgechatError,
    ProtocolError,
    RequestTimeout,
)
from edgechat_tui.http.deadline import DeadlineExceeded
from edgechat_tui.http.text import NO_SECRETS, Redactor, shown

_NETWORK_HINT = "check the address and your network"


@dataclass(frozen=True, slots=True)
class Where:
    """What a transport error may say about the request: the host, the timeouts, how far it got."""

    host: str  # host[:port], as shown to the user
    connect_timeout: float
    read_timeout: float
    answered: bool = False  # the answer's status line arrived: the request reached the server
    text_so_far: bool = False  # reply text was shown before the failure
    redactor: Redactor = NO_SECRETS


def connect_failure(exc: BaseException) -> str:
    """Why a connection failed, read from the cause chain: "dns" (no such name), "dns_temporary" (the
    resolver failed), "refused", "tls" or "unreachable"."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return "dns_temporary" if current.errno == socket.EAI_AGAIN else "dns"
        if isinstance(current, ConnectionRefusedError):
            return "refused"
        if isinstance(current, ssl.SSLError):
            return "tls"
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    text = str(exc).lower()
    if ("name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text
            or "name resolution" in text):
        return "dns"
    if "refused" in text:
        return "refused"
    if "ssl" in text or "certificate" in text:
        return "tls"
    return "unreachable"


def _root(exc: BaseException) -> str:
    """The innermost cause's text: the useful part of a chained transport error."""
    while (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return str(exc) or type(exc).__name__


def transport_error(exc: httpx.HTTPError | DeadlineExceeded, where: Where) -> EdgechatError:
    """The typed error for a failure of the connection itself (there is no HTTP answer to map)."""
    host = shown(where.host, 80, where.redactor)
    why = shown(_root(exc), 160, where.redactor).rstrip(".")
    if isinstance(exc, DeadlineExceeded):
        return RequestTimeout(
            f"No complete reply from {host} within {exc.seconds:g} s"
            + ("; the reply is incomplete." if where.text_so_far else "."),
            hint="the reply_timeout setting limits how long a reply may take (0 for no limit)",
            code="reply_timeout")
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectionFailed(f"Could not connect to {host} within {where.connect_timeout:g} s.",
                                hint=_NETWORK_HINT, code="connect_timeout", reached_server=False)
    if isinstance(exc, httpx.ConnectError):
        reason = connect_failure(exc)
        name = shown(where.host.rsplit(":", 1)[0] if where.host.count(":") == 1 else where.host, 80,
                     where.redactor)
        messages = {
            "dns": f"The host name {name!r} does not resolve.",
            "dns_temporary": f"The host name {name!r} could not be resolved just now.",
            "refused": f"{host} refused the connection: nothing is listening there.",
            "tls": f"A secure connection to {host} failed: {why}.",
        }
        return ConnectionFailed(messages.get(reason, f"Could not connect to {host}: {why}."),
                                hint=_NETWORK_HINT, code=reason, reached_server=False)
    if isinstance(exc, httpx.PoolTimeout):
        return RequestTimeout(f"No connection to {host} became free within {where.connect_timeout:g} s.",
                              hint="try again", code="timeout", may_have_answered=False)
    if isinstance(exc, httpx.TimeoutException):
        if where.text_so_far:
            return RequestTimeout(
                f"{host} stopped sending for {where.read_timeout:g} s in the middle of the reply.",
                hint="try again", code="timeout")
        return RequestTimeout(f"No answer from {host} within {where.read_timeout:g} s.",
                              hint="try again; the service may be busy", code="timeout")
    if isinstance(exc, httpx.DecodingError):
        return ProtocolError(f"The answer from {host} could not be decoded: {why}.", hint="try again",
                             code="decoding")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return ConfigError(f"The URL for {host} cannot be used: {why}.", hint="check the address")
    if isinstance(exc, httpx.TooManyRedirects):
        return BackendError(f"{host} redirects in a loop.", hint="check the address")
    if isinstance(exc, httpx.TransportError):
        if not where.answered:
            message = f"The connection to {host} was lost before an answer came."
        elif where.text_so_far:
            message = f"The connection to {host} was lost in the middle of the reply."
        else:
            message = f"The connection to {host} was lost while the answer arrived."
        return ConnectionFailed(message, hint="check your network connection and try again", code="lost",
                                reached_server=True)
    return ProtocolError(f"The request to {host} failed: {why}.", hint="try again")


__all__ = ["Where", "connect_failure", "transport_error"]
