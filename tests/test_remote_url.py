"""RemoteAgent before any request: the URL, the user id, the token's safety, and how answers map to errors."""

from __future__ import annotations

import httpx
import pytest

from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.backends.remote.capabilities import Capabilities
from edgechat_tui.backends.remote.endpoint import is_loopback, parse_endpoint
from edgechat_tui.backends.remote.errors import error_from_answer
from edgechat_tui.core.errors import (
    AuthError,
    BackendError,
    BadRequest,
    ContextTooLong,
    InvalidUserId,
    NotFound,
    QuotaExceeded,
    RateLimited,
    ServerError,
    UsageError,
)

TOKEN = "tok-Zq8-very-secret-4711"


@pytest.mark.parametrize(
    ("given", "chat_url", "shown"),
    [
        ("https://agent.example.com", "https://agent.example.com/api/chat", "agent.example.com"),
        ("https://agent.example.com/", "https://agent.example.com/api/chat", "agent.example.com"),
        ("https://host/team", "https://host/team/api/chat", "host/team"),
        ("https://host/team///", "https://host/team/api/chat", "host/team"),
        ("http://127.0.0.1:8787/a/b/", "http://127.0.0.1:8787/a/b/api/chat", "127.0.0.1:8787/a/b"),
        ("  HTTPS://Host.Example:8443/x  ", "https://host.example:8443/x/api/chat", "host.example:8443/x"),
        ("http://[::1]:9000", "http://[::1]:9000/api/chat", "[::1]:9000"),
    ],
)
def test_a_url_keeps_its_prefix_and_loses_its_trailing_slash(given: str, chat_url: str, shown: str) -> None:
    endpoint = parse_endpoint(given)
    assert endpoint.url("/api/chat") == chat_url
    assert endpoint.shown == shown
    assert endpoint.url("/") == chat_url.removesuffix("api/chat")


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("ftp://host/", "'ftp:'"),
        ("ws://host/", "'ws:'"),
        ("file:///etc/passwd", "'file:'"),
        ("agent.example.com", "http:// or https://"),
        ("", "empty"),
        ("https://", "no host"),
        ("https://host/?x=1", "query"),
        ("https://host/#frag", "fragment"),
        ("https://host:99999/", "port"),
    ],
)
def test_a_url_that_cannot_be_an_agent_is_a_usage_error(given: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        RemoteAgent(given, "alice")
    assert says in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_password_in_the_url_is_refused_without_being_repeated() -> None:
    with pytest.raises(UsageError) as caught:
        RemoteAgent(f"https://bob:{TOKEN}@host/", "alice")
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    assert "remote_token" in str(caught.value)


@pytest.mark.parametrize("user", ["", "a/b", "../etc", ".hidden", "con", "x" * 65, "a b"])
def test_the_user_id_is_checked(user: str) -> None:
    with pytest.raises(InvalidUserId):
        RemoteAgent("https://host", user)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("app.localhost", True), ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True),
     ("[::1]", True), ("::ffff:127.0.0.1", True), ("10.0.0.1", False), ("example.com", False),
     ("localhost.example.com", False), ("0.0.0.0", False)],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://agent.example.com", True),
        ("http://192.168.1.20:8787/team", True),
        ("https://agent.example.com", False),
        ("http://127.0.0.1:8787", False),
        ("http://localhost:8787", False),
        ("http://[::1]:8787", False),
    ],
)
def test_a_token_over_plain_http_to_another_host_is_warned_about(url: str, warned: bool) -> None:
    warnings: list[str] = []
    RemoteAgent(url, "alice", token=TOKEN, warn=warnings.append)
    assert bool(warnings) is warned
    for warning in warnings:
        assert "https" in warning and TOKEN not in warning


def test_no_token_no_warning() -> None:
    warnings: list[str] = []
    RemoteAgent("http://agent.example.com", "alice", warn=warnings.append)
    assert warnings == []


@pytest.mark.parametrize("token", ["two words", "line\nbreak", "tab\there", "   "])
def test_a_token_a_header_cannot_carry_is_refused_without_being_shown(token: str) -> None:
    with pytest.raises(UsageError) as caught:
        RemoteAgent("https://host", "alice", token=token)
    assert token.strip() not in str(caught.value) or not token.strip()


def test_the_repr_never_shows_the_token() -> None:
    agent = RemoteAgent("https://host/team", "alice", token=TOKEN)
    assert TOKEN not in repr(agent) and TOKEN not in str(agent)
    assert "token=set" in repr(agent)
    assert TOKEN not in repr(vars(agent))  # nor for a debugger, or a traceback that shows locals


def test_before_the_health_check_the_agent_is_assumed_to_be_a_seed() -> None:
    info = RemoteAgent("https://host/team/", "alice").info
    assert (info.mode, info.user, info.host, info.model) == ("remote", "alice", "host/team", None)
    assert (info.streams, info.shares_history, info.can_reset) == (False, False, False)


def test_capabilities_are_read_leniently() -> None:
    caps = Capabilities.from_health({"status": "ok", "protocol": 1, "capabilities": ["stream", 3, "future"],
                                     "auth": "yes", "model": "\x1b[31m@cf/x\x1b[0m"})
    assert caps.names == {"stream", "future"}
    assert caps.auth is False  # only a real true counts
    assert caps.model == "@cf/x"  # server text is sanitised
    assert Capabilities.from_health({"status": "ok", "protocol": True}).protocol is None


# --- answers to errors ----------------------------------------------------------------------------------

URL = "https://host/team/api/chat"


def _error(status: int, body: bytes | str = b"", content_type: str = "application/json", *,
           headers: dict[str, str] | None = None, has_token: bool = False) -> Exception:
    raw = body.encode() if isinstance(body, str) else body
    all_headers = httpx.Headers({"content-type": content_type, **(headers or {})})
    return error_from_answer(status, all_headers, raw, URL, has_token=has_token)


def test_the_seeds_model_failure_shows_its_details() -> None:
    error = _error(500, '{"error":"Failed to process message","details":"AI request failed: 3040: Capacity'
                        ' temporarily exceeded, please try again."}')
    assert isinstance(error, ServerError) and error.status == 500
    assert "Failed to process message: AI request failed: 3040: Capacity temporarily" in error.message


def test_the_seeds_internal_error() -> None:
    error = _error(500, '{"error":"Internal server error"}')
    assert isinstance(error, ServerError) and "Internal server error" in error.message


def test_an_html_error_page_shows_its_title_not_its_markup() -> None:
    page = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>oops</h1></body></html>"
    error = _error(502, page, "text/html")
    assert isinstance(error, ServerError)
    assert "HTML page titled '502 Bad Gateway'" in error.message
    assert "<" not in error.message and "oops" not in error.message


def test_an_html_page_is_recognised_without_its_content_type() -> None:
    error = _error(405, "<html><head><title>Method &amp; Not Allowed</title>", "application/octet-stream")
    assert isinstance(error, BackendError) and "Method & Not Allowed" in error.message
    assert error.hint and "--remote" in error.hint


def test_server_text_is_sanitised_and_shortened() -> None:
    evil = '{"error":"\\u001b]0;pwned\\u0007bad\\u001b[2J thing","details":"' + "d" * 5000 + '"}'
    error = _error(500, evil)
    assert "\x1b" not in str(error) and "pwned" not in str(error) and "\x07" not in str(error)
    assert "bad thing" in error.message
    assert len(error.message) < 700


def test_plain_text_and_empty_bodies() -> None:
    assert "upstream connect error" in _error(503, "upstream connect error", "text/plain").message
    empty = _error(504, b"", "")
    assert isinstance(empty, ServerError) and "504" in empty.message


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_say_what_to_do_with_and_without_a_token(status: int) -> None:
    without = _error(status, '{"error":"Missing or invalid bearer token","code":"unauthorized"}')
    with_token = _error(status, "", "text/plain", has_token=True)
    assert isinstance(without, AuthError) and isinstance(with_token, AuthError)
    assert "needs a token" in without.message and "remote_token" in (without.hint or "")
    assert "refused the token" in with_token.message and "remote_token" in (with_token.hint or "")


def test_404_shows_the_url_it_tried() -> None:
    error = _error(404, "Not Found", "text/plain;charset=UTF-8")
    assert isinstance(error, NotFound) and URL in error.message
    assert "--remote" in (error.hint or "")


def test_404_after_a_url_that_already_held_api_chat() -> None:
    error = error_from_answer(404, httpx.Headers(), b"Not Found", "https://h/api/chat/api/chat")
    assert "leave /api/chat out" in (error.hint or "")


def test_413_says_to_shorten() -> None:
    error = _error(413, '{"error":"too long","code":"context_too_long"}')
    assert isinstance(error, ContextTooLong) and "shorten" in (error.hint or "")
    page = "<html><title>413 Request Entity Too Large</title>"
    assert isinstance(_error(413, page, "text/html"), ContextTooLong)


def test_429_carries_retry_after_from_the_header_or_the_body() -> None:
    from_header = _error(429, '{"error":"busy","code":"rate_limited"}', headers={"Retry-After": "7"})
    from_body = _error(429, '{"error":"busy","code":"rate_limited","retryAfter":4}')
    dated = _error(429, "", "text/plain", headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert isinstance(from_header, RateLimited) and from_header.retry_after == 7
    assert "7 s" in (from_header.hint or "")
    assert isinstance(from_body, RateLimited) and from_body.retry_after == 4
    assert isinstance(dated, RateLimited) and dated.retry_after == 0  # a date in the past: now


def test_quota_exceeded_is_not_rate_limited() -> None:
    error = _error(429, '{"error":"daily allocation used","code":"quota_exceeded"}')
    assert isinstance(error, QuotaExceeded) and not isinstance(error, RateLimited)


def test_the_code_wins_over_the_status() -> None:
    assert isinstance(_error(500, '{"error":"x","code":"bad_request"}'), BadRequest)
    model = _error(502, '{"error":"The model failed","code":"model_unavailable","details":"5007: no model"}')
    assert isinstance(model, ServerError) and model.code == "model_unavailable"
    assert "5007: no model" in model.message


def test_a_redirect_says_where_to() -> None:
    error = _error(301, "", "text/html", headers={"Location": "https://host/team/"})
    assert "redirects to https://host/team/" in error.message


def test_a_503_is_a_server_error_worth_retrying() -> None:
    error = _error(503, '{"error":"overloaded"}', headers={"Retry-After": "2"})
    assert isinstance(error, ServerError) and error.retry_after == 2
