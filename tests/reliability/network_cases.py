"""Network faults for each backend, as data: what the server does, and what edgechat must make of it.

The three backends are the local agent talking to Workers AI (:class:`FakeWorkersAI`), the seed
contract (:class:`SeedServer`) and our protocol (:class:`AgentServer`), each a real HTTP server on
loopback. A case scripts a fault on the server and names the outcome: success, or a typed error
(with words its message must contain). :func:`run_case` sends one message through the real agent
and checks, besides the outcome:

- *stored*: a failed turn leaves the local history byte for byte as it was (and a remote agent's
  session keeps nothing of it); a successful one is stored once;
- *sends*: the message reached the server no more often than the case allows (a retry only where
  the request certainly was not processed), and never again once reply text had arrived;
- *clear*: the error is an EdgechatError whose message is one short line of plain text, without
  markup, control characters or a token.

The tests run every case once; the soak runs them again and again.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgechat_tui.backends.local.agent import LocalAgent
from edgechat_tui.backends.local.workers_ai import WorkersAIClient
from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.config.settings import load_settings
from edgechat_tui.core.errors import (
    AuthError,
    BackendError,
    BadRequest,
    ConnectionFailed,
    ContextTooLong,
    NotFound,
    ProtocolError,
    QuotaExceeded,
    RateLimited,
    RequestTimeout,
    ServerError,
)
from edgechat_tui.core.messages import Done, Message, Retrying, TextDelta
from tests.fakes.agent_server import AgentServer, ScriptedStream, error_answer, sse_event
from tests.fakes.seed_server import Scripted, SeedServer
from tests.fakes.workers_ai import (
    CutStream,
    Disconnect,
    ErrorReply,
    FakeWorkersAI,
    Garbage,
    HugeBody,
    NoDone,
    Reply,
    Stall,
    capacity_error,
    invalid_utf8,
)
from tests.reliability.harness import ACCOUNT, REMOTE_TOKEN, TOKEN, free_port, snapshot, unclear_reasons

#: Retries allowed in these cases (the setting's default is 3; fewer keeps the suite fast).
MAX_RETRIES = 2
ATTEMPTS = MAX_RETRIES + 1
MB = 1024 * 1024
SSE = "text/event-stream"
#: A reply holding escape sequences and markup (for the error texts and the security tests).
HOSTILE = ("\x1b]0;PWNED-TITLE\x07 \x1b[2J\x1b[31mred\x1b[0m \x9b6n \x9d0;PWNED-C1\x9c "
           "[bold red]markup[/] [@click=app.quit]click[/]")


@dataclass(frozen=True)
class NetCase:
    """One fault. ``script`` queues it on the server; ``expect`` is None for success, else the error types.

    ``sends`` is the range of chat requests that may reach the server. ``timeout`` is the read timeout
    (seconds without data). ``server`` holds options for the server's constructor; ``agent`` for the
    agent's (a wrong token, say). ``prior_turn`` stores a turn first, so the history is not empty.
    """

    backend: str
    name: str
    script: Callable[[Any], None] | None = None
    expect: tuple[type[BaseException], ...] | None = None
    words: tuple[str, ...] = ()
    sends: tuple[int, int] = (1, 1)
    timeout: float = 5.0
    refused: bool = False
    server: dict[str, Any] = field(default_factory=dict)
    agent: dict[str, Any] = field(default_factory=dict)
    prior_turn: bool = False

    @property
    def id(self) -> str:
        return f"{self.backend}:{self.name}"


@dataclass
class Outcome:
    """What running a case found: each list empty when all is well."""

    case: NetCase
    error: BaseException | None = None
    sends: int = 0
    seconds: float = 0.0
    waits: list[float] = field(default_factory=list)
    wrongly_stored: list[str] = field(default_factory=list)
    duplicate_sends: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.wrongly_stored or self.duplicate_sends or self.unclear)

    def __str__(self) -> str:
        error = f"{type(self.error).__name__}: {self.error}" if self.error else "no error"
        return (f"{self.case.id}: {error}; {self.sends} sends; stored wrongly {self.wrongly_stored}; "
                f"duplicate sends {self.duplicate_sends}; unclear {self.unclear}")


# --- the cases ------------------------------------------------------------------------------------

def queue(*replies: Any) -> Callable[[FakeWorkersAI], None]:
    """A script that queues ``replies`` on the fake Workers AI."""
    return lambda fake: fake.enqueue(*replies)


def script(*answers: Scripted) -> Callable[[SeedServer], None]:
    """A script that queues ``answers`` on a seed or agent server."""
    return lambda server: server.script(*answers)


STATUSES = (401, 403, 404, 413, 429, 500, 502, 503)
BODIES = ("json", "empty", "html")


def _html(status: int, title: str) -> str:
    return (f"<!DOCTYPE html>\n<html><head><title>{status} {title}</title><style>body{{color:red}}</style>"
            f"</head><body><h1>{title}</h1><script>alert(1)</script></body></html>\n")


_TITLES = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 413: "Payload Too Large",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable"}


# Workers AI's code and wording for each status, in its JSON envelope.
_CLOUDFLARE_ERRORS = {
    401: (10000, "Authentication error"),
    403: (10000, "Authentication error"),
    404: (7000, "No route for that URI"),
    413: (5021, "The estimated number of input and maximum output tokens (30000) exceeded this model context "
                "window limit (24000)."),
    429: (3040, "Capacity temporarily exceeded, please try again."),
    500: (3043, "Internal server error"),
    502: (None, "Bad gateway"),
    503: (None, "Service unavailable"),
}
_LOCAL_EXPECT: dict[int, tuple] = {401: (AuthError,), 403: (AuthError,), 404: (NotFound, ProtocolError),
                                   413: (ContextTooLong,), 429: (RateLimited,), 500: (ServerError,),
                                   502: (ServerError,), 503: (ServerError,)}
_LOCAL_WORDS = {401: ("token",), 403: ("token",), 413: ("context",), 500: ("500",), 502: ("502",),
                503: ("503",)}
# Our protocol's code for each status (403 has none: a proxy's refusal).
_AGENT_CODES = {401: "unauthorized", 404: "not_found", 413: "context_too_long", 429: "rate_limited",
                500: "internal", 502: "model_unavailable", 503: "internal"}
_REMOTE_EXPECT: dict[int, tuple] = {401: (AuthError,), 403: (AuthError,), 404: (NotFound,),
                                    413: (ContextTooLong,), 429: (RateLimited,), 500: (ServerError,),
                                    502: (ServerError,), 503: (ServerError,)}
_REMOTE_WORDS = {401: ("token",), 403: ("token",), 404: ("404",), 413: ("too long",), 500: ("500",),
                 502: ("502",), 503: ("503",)}
StatusCase = tuple[Callable[[Any], None], tuple, tuple, tuple[int, int]]


def _workers_ai_status(status: int, body: str) -> StatusCase:
    """The fault, the error types, the words and the sends for one status and body kind (Workers AI).

    429 and 5xx are retried (the model call stores nothing), so the fault is queued for every attempt.
    """
    if body == "json":
        reply = ErrorReply(status, *_CLOUDFLARE_ERRORS[status])
    elif body == "empty":
        reply = ErrorReply(status, body=b"", content_type="text/plain")
    else:
        page = _html(status, _TITLES[status])
        reply = ErrorReply(status, body=page, content_type="text/html; charset=UTF-8")
    count = ATTEMPTS if status in (429, 500, 502, 503) else 1
    return queue(*[reply] * count), _LOCAL_EXPECT[status], _LOCAL_WORDS.get(status, ()), (count, count)


def _remote_status(status: int, body: str, backend: str) -> StatusCase:
    """The same for a remote agent: the seed's JSON, ours (with a code), no body, an HTML page.

    Only 429 (without a code other than rate_limited) and 503 say the turn was not processed: only
    those are sent again.
    """
    code = _AGENT_CODES.get(status)
    if body == "json" and backend == "agent" and code:
        answer = error_answer(code, status=status)
    elif body == "json":
        answer = Scripted.json(status, {"error": _TITLES[status], "details": f"status {status}"})
    elif body == "empty":
        answer = Scripted(status=status, body=b"", content_type=None)
    else:
        answer = Scripted.text(status, _html(status, _TITLES[status]), "text/html; charset=utf-8")
    count = ATTEMPTS if status in (429, 503) else 1
    return script(*[answer] * count), _REMOTE_EXPECT[status], _REMOTE_WORDS.get(status, ()), (count, count)


def _http_date(seconds_ahead: float) -> str:
    """An HTTP date ``seconds_ahead`` from now: made when the fault is scripted, not when cases are listed."""
    return email.utils.formatdate(time.time() + seconds_ahead, usegmt=True)


def workers_ai_cases() -> list[NetCase]:
    b = "workers-ai"
    twice = (2, 2)
    every = (ATTEMPTS, ATTEMPTS)
    error_event = b'data: {"errors":[{"code":3040,"message":"Capacity temporarily exceeded"}]}\n\n'
    bad_json = b'{"result":{"response":"caf\xc3\x28"},"success":true}'
    bad_error = b'{"errors":[{"code":3043,"message":"bad \xff\xfe"}]}'
    portal = _html(200, "Sign in to the network")
    quota = "you have used up your daily free allocation of 10,000 neurons"
    cases = [
        NetCase(b, "refused", expect=(ConnectionFailed,), words=("connect",), sends=(0, 0), refused=True),
        NetCase(b, "closed-without-answer", queue(*[Disconnect()] * ATTEMPTS), (ConnectionFailed,),
                sends=every),
        NetCase(b, "reset-before-text-then-ok", queue(CutStream(after_chunks=0)), sends=twice),
        NetCase(b, "reset-mid-stream", queue(CutStream(after_chunks=3)), (ConnectionFailed,)),
        NetCase(b, "reset-inside-an-event", queue(CutStream(after_chunks=2, partial=b'data: {"resp')),
                (ConnectionFailed,)),
        NetCase(b, "slow-drip", queue(Reply("a slow but steady reply " * 3, chunk_size=2, delay=0.01)),
                timeout=2.0),
        NetCase(b, "stall-mid-stream", queue(Stall(seconds=30, after_chunks=2)), (RequestTimeout,),
                timeout=0.4),
        NetCase(b, "stall-before-answer", queue(*[Stall(seconds=30, before_headers=True)] * ATTEMPTS),
                (RequestTimeout,), timeout=0.4, sends=every),
        NetCase(b, "retry-after-seconds", queue(capacity_error(retry_after=2)), sends=twice),
        NetCase(b, "retry-after-http-date",
                lambda f: f.enqueue(ErrorReply(503, None, "Service unavailable", retry_after=_http_date(3))),
                sends=twice),
        NetCase(b, "retry-after-an-hour", queue(capacity_error(retry_after=3600)), sends=twice),
        NetCase(b, "quota-not-retried", queue(ErrorReply(429, 4006, quota)), (QuotaExceeded,), ("daily",)),
        NetCase(b, "context-too-long-trimmed-once", queue(*[ErrorReply(413, 5021, "too long")] * 2),
                (ContextTooLong,), sends=twice, prior_turn=True),
        NetCase(b, "malformed-sse", queue(Garbage()), (ProtocolError,)),
        NetCase(b, "sse-event-not-an-object", queue(Garbage(raw=b"data: [1, 2, 3]\n\n")), (ProtocolError,)),
        NetCase(b, "sse-line-without-end", queue(Garbage(raw=b"data: " + b"x" * (5 * MB))), (ProtocolError,)),
        NetCase(b, "no-done", queue(NoDone()), (ProtocolError,), ("complete",)),
        NetCase(b, "error-event-after-text", queue(Garbage(raw=error_event, after_chunks=2)),
                (RateLimited, ProtocolError)),
        NetCase(b, "50MB-error-page", queue(*[HugeBody()] * ATTEMPTS), (ServerError,), sends=every),
        NetCase(b, "50MB-json-answer", queue(HugeBody(status=200, content_type="application/json")),
                (ProtocolError,)),
        NetCase(b, "50MB-streamed-answer",
                queue(Reply("x" * (50 * MB), chunk_size=512 * 1024, usage=None, padding=False)),
                (ProtocolError,), timeout=20.0),
        NetCase(b, "invalid-utf8-in-stream", queue(invalid_utf8()), (ProtocolError,)),
        NetCase(b, "invalid-utf8-in-json-answer",
                queue(ErrorReply(200, body=bad_json, content_type="application/json")), (ProtocolError,)),
        NetCase(b, "invalid-utf8-in-error",
                queue(*[ErrorReply(500, body=bad_error, content_type="application/json")] * ATTEMPTS),
                (ServerError,), sends=every),
        NetCase(b, "html-instead-of-answer", queue(ErrorReply(200, body=portal, content_type="text/html")),
                (ProtocolError,)),
        NetCase(b, "escape-sequences-in-error", queue(ErrorReply(400, 5006, HOSTILE)), (BadRequest,)),
        NetCase(b, "token-echoed-in-error", queue(ErrorReply(401, 10000, f"Bad token {TOKEN}")),
                (AuthError,)),
    ]
    for status in STATUSES:
        for body in BODIES:
            fault, expect, words, sends = _workers_ai_status(status, body)
            cases.append(NetCase(b, f"{status}-{body}", fault, expect, words, sends))
    cases += [NetCase(b, f"{status}-once-then-ok", queue(ErrorReply(status, None, "try again")), sends=twice)
              for status in (429, 500, 502, 503)]
    return cases


def _remote_common(b: str) -> list[NetCase]:
    bad_utf8 = b'{"message":"caf\xc3\x28","messageCount":2}'
    elsewhere = {"Location": "http://127.0.0.1:9/api/chat"}
    return [
        NetCase(b, "refused", expect=(ConnectionFailed,), words=("refused",), sends=(0, 0), refused=True),
        NetCase(b, "closed-without-answer", script(Scripted(drop=True)), (ConnectionFailed,), ("may",)),
        NetCase(b, "reset-mid-body", script(Scripted(truncate=True)), (ConnectionFailed,)),
        NetCase(b, "slow-answer", script(Scripted(delay=0.3)), timeout=3.0),
        NetCase(b, "stall-past-timeout", script(Scripted(delay=30)), (RequestTimeout,), ("may",),
                timeout=0.4),
        NetCase(b, "retry-after-seconds",
                script(Scripted.json(429, {"error": "busy"}, headers={"Retry-After": "1"})), sends=(2, 2)),
        NetCase(b, "retry-after-http-date",
                lambda s: s.script(Scripted.json(503, {"error": "restarting"},
                                                 headers={"Retry-After": _http_date(1)})),
                sends=(2, 2)),
        NetCase(b, "retry-after-an-hour",
                script(Scripted.json(429, {"error": "busy"}, headers={"Retry-After": "3600"})),
                (RateLimited,)),
        NetCase(b, "json-not-json", script(Scripted.text(200, "not json at all", "application/json")),
                (ProtocolError,)),
        NetCase(b, "json-without-message", script(Scripted.json(200, {"reply": "x"})), (ProtocolError,)),
        NetCase(b, "malformed-sse",
                script(Scripted(200, body=b"event: delta\ndata: {oops\n\n", content_type=SSE)),
                (ProtocolError,)),
        NetCase(b, "sse-without-done",
                script(Scripted(200, body=sse_event("delta", {"text": "Hi"}), content_type=SSE)),
                (ProtocolError,)),
        NetCase(b, "50MB-answer", script(Scripted(size=50 * MB)), (ProtocolError,)),
        NetCase(b, "50MB-answer-chunked", script(Scripted(size=50 * MB, chunked=True)), (ProtocolError,)),
        NetCase(b, "50MB-error-page", script(Scripted(status=500, size=50 * MB, content_type="text/html")),
                (ServerError,)),
        NetCase(b, "invalid-utf8-in-answer", script(Scripted(200, body=bad_utf8)), (ProtocolError,)),
        NetCase(b, "html-instead-of-answer", script(Scripted.html(200, "Sign in to the network")),
                (ProtocolError,)),
        NetCase(b, "escape-sequences-in-error",
                script(Scripted.json(500, {"error": HOSTILE, "details": HOSTILE})),
                (ServerError,)),
        NetCase(b, "token-echoed-in-error", script(Scripted.json(400, {"error": f"bad {REMOTE_TOKEN}"})),
                (BadRequest,)),
        NetCase(b, "redirect-not-followed", script(Scripted(302, body=b"", headers=elsewhere)),
                (BackendError,),
                ("redirect",)),
    ]


def seed_cases() -> list[NetCase]:
    b = "seed"
    cases = [*_remote_common(b),
             NetCase(b, "model-failure", script(Scripted.model_failure()), (ServerError,), ("3040",))]
    for status in STATUSES:
        for body in BODIES:
            fault, expect, words, sends = _remote_status(status, body, b)
            cases.append(NetCase(b, f"{status}-{body}", fault, expect, words, sends))
        text = Scripted.text(status, f"{_TITLES[status]}\n")
        _, expect, words, sends = _remote_status(status, "empty", b)
        cases.append(NetCase(b, f"{status}-text", script(*[text] * sends[1]), expect, words, sends))
    return cases


def agent_cases() -> list[NetCase]:
    b = "agent"
    ten_mb = ("x" * 500_000 + " ") * 20
    failed = {"error": "The model failed", "code": "model_unavailable"}
    busy = {"error": "busy", "code": "rate_limited", "retryAfter": 0}
    cases = [
        *_remote_common(b),
        NetCase(b, "wrong-token", expect=(AuthError,), words=("token",), agent={"token": "not-the-token"}),
        NetCase(b, "no-token", expect=(AuthError,), words=("token",), agent={"token": None}),
        NetCase(b, "stream-cut-mid-reply", script(ScriptedStream(cut_after=2)), (ConnectionFailed,),
                ("lost",)),
        NetCase(b, "stream-cut-before-text", script(ScriptedStream(cut_after=0)), (ConnectionFailed,)),
        NetCase(b, "stream-ends-without-done", script(ScriptedStream(end_after=2)), (ProtocolError,)),
        NetCase(b, "stream-stall-past-timeout", script(ScriptedStream(stall_after=1, stall=30)),
                (RequestTimeout,), timeout=0.4),
        NetCase(b, "stream-slow-drip", server={"delta_delay": 0.05, "keepalive": True}, timeout=2.0),
        NetCase(b, "stream-garbage", script(ScriptedStream(garbage=b"event: delta\ndata: {oops\n\n",
                                                          garbage_after=1)), (ProtocolError,)),
        NetCase(b, "stream-invalid-utf8", script(ScriptedStream(
            garbage=b'event: delta\ndata: {"text":"caf\xc3\x28"}\n\n', garbage_after=1)), (ProtocolError,)),
        NetCase(b, "stream-error-event", script(ScriptedStream(error_event=failed, error_after=1)),
                (ServerError,), ("model",)),
        NetCase(b, "stream-rate-limited-then-ok", script(ScriptedStream(error_event=busy, error_after=0)),
                sends=(2, 2)),
        NetCase(b, "stream-50MB-delta", script(ScriptedStream(huge_delta=50 * MB)), (ProtocolError,),
                timeout=20.0),
        NetCase(b, "stream-10MB-reply", script(ScriptedStream(reply=ten_mb)), (ProtocolError,), timeout=20.0),
        NetCase(b, "stream-escapes-in-error-event", script(ScriptedStream(
            error_event={"error": HOSTILE, "code": "internal", "details": HOSTILE}, error_after=0)),
                (ServerError,)),
        NetCase(b, "stream-token-in-error-event", script(ScriptedStream(
            error_event={"error": f"token {REMOTE_TOKEN} refused", "code": "internal"}, error_after=0)),
                (ServerError,)),
        NetCase(b, "json-answer-without-stream", server={"capabilities": ()}),
        NetCase(b, "quota-not-retried", script(error_answer("quota_exceeded")), (QuotaExceeded,)),
    ]
    for status in STATUSES:
        for body in BODIES:
            fault, expect, words, sends = _remote_status(status, body, b)
            cases.append(NetCase(b, f"{status}-{body}", fault, expect, words, sends))
    return cases


def all_cases() -> list[NetCase]:
    return workers_ai_cases() + seed_cases() + agent_cases()


# --- running a case -------------------------------------------------------------------------------

USER = "net"


async def _drain(agent: Any, text: str) -> tuple[list[Any], BaseException | None]:
    events: list[Any] = []
    try:
        async for event in agent.send(text):
            events.append(event)
    except Exception as exc:  # the point is to see what comes out
        return events, exc
    return events, None


def _judge_sends(outcome: Outcome, events: list[Any]) -> None:
    low, high = outcome.case.sends
    if outcome.sends > high:
        outcome.duplicate_sends.append(f"{outcome.sends} sends, at most {high} allowed")
    if outcome.sends < low:
        outcome.unclear.append(f"{outcome.sends} sends, at least {low} expected (the fault did not happen)")
    text_seen = False
    for event in events:
        if isinstance(event, TextDelta) and event.text:
            text_seen = True
        elif isinstance(event, Retrying) and text_seen:
            outcome.duplicate_sends.append("sent again after reply text had arrived")


def _judge_result(outcome: Outcome, events: list[Any], error: BaseException | None) -> bool:
    """Record an unclear or wrong outcome; True when the turn succeeded."""
    case = outcome.case
    done = [e for e in events if isinstance(e, Done)]
    if case.expect is None:
        if error is not None or len(done) != 1:
            outcome.unclear.append(f"expected success, got {type(error).__name__ if error else 'no Done'}: "
                                   f"{error}")
            return False
        return True
    outcome.unclear.extend(unclear_reasons(error, case.expect, case.words))
    if done:
        outcome.unclear.append("a Done event although the turn failed")
    return False


async def run_case(case: NetCase, workdir: Path) -> Outcome:
    """Run ``case`` against a fresh server of its backend, with a fresh data dir under ``workdir``."""
    runner = _run_workers_ai if case.backend == "workers-ai" else _run_remote
    started = time.monotonic()
    outcome = await runner(case, workdir)
    outcome.seconds = time.monotonic() - started
    return outcome


async def _run_workers_ai(case: NetCase, workdir: Path) -> Outcome:
    outcome = Outcome(case)
    data_dir = workdir / "data"
    with FakeWorkersAI(token=TOKEN, account_id=ACCOUNT) as fake:
        api_base = f"http://127.0.0.1:{free_port()}/client/v4" if case.refused else fake.api_base
        env = {"CLOUDFLARE_ACCOUNT_ID": ACCOUNT, "CLOUDFLARE_API_TOKEN": TOKEN, "EDGECHAT_API_BASE": api_base,
               "EDGECHAT_DATA_DIR": str(data_dir), "EDGECHAT_READ_TIMEOUT": str(case.timeout),
               "EDGECHAT_MAX_RETRIES": str(MAX_RETRIES)}
        settings = load_settings(config_path=workdir / "config.toml", env=env)

        async def no_wait(seconds: float) -> None:
            outcome.waits.append(seconds)  # the wait is checked, not slept: the suite stays fast

        client = WorkersAIClient(account_id=ACCOUNT, api_token=TOKEN, api_base=api_base, connect_timeout=2.0,
                                 read_timeout=case.timeout, max_retries=MAX_RETRIES, sleep=no_wait)
        agent = LocalAgent(settings, USER, client=client)
        try:
            if case.prior_turn:
                _, prior_error = await _drain(agent, "an earlier turn")
                assert prior_error is None, prior_error
                await agent.wait_for_titles()  # the earlier turn's title lands before the snapshot
            before = snapshot(data_dir)
            stored_before = len(await agent.history())
            sent_before = len(fake.run_requests)
            if case.script is not None:
                case.script(fake)
            events, error = await _drain(agent, "hello there")
            outcome.error = error
            outcome.sends = len(fake.run_requests) - sent_before
        finally:
            await agent.aclose()
    _judge_sends(outcome, events)
    succeeded = _judge_result(outcome, events, error)
    _judge_retry_after(outcome)
    if succeeded:
        stored, _ = _stored(data_dir)
        if stored != stored_before + 2:
            outcome.wrongly_stored.append(f"a successful turn stored {stored - stored_before} messages")
    elif _shown(events):
        # A failure after text arrived keeps what was shown, marked stopped, as Esc keeps it.
        from tests.reliability.harness import read_history

        messages, _ = read_history(data_dir, USER)
        _judge_kept_partial(outcome, events, error, messages[stored_before:])
    elif snapshot(data_dir) != before:
        outcome.wrongly_stored.append("the failed turn changed the history files")
    return outcome


def _shown(events: list[Any]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def _judge_kept_partial(outcome: Outcome, events: list[Any], error: BaseException | None,
                        kept: list[Message]) -> None:
    """What was shown before the failure is kept once, marked stopped, and the error says it was kept."""
    shown = _shown(events)
    if [m.role for m in kept] != ["user", "assistant"] or not kept[1].stopped or kept[1].content != shown:
        outcome.wrongly_stored.append(f"the text shown was not kept once, marked stopped: {kept!r:.200}")
    partial = getattr(error, "kept_partial", None)
    if partial is None or partial.message.content != shown:
        outcome.unclear.append("the error does not say that the text shown was kept")


def _judge_retry_after(outcome: Outcome) -> None:
    """The waits a Retry-After asked for were honoured (and capped), not guessed."""
    name = outcome.case.name
    if name == "retry-after-seconds" and outcome.waits[:1] != [2.0]:
        outcome.unclear.append(f"Retry-After: 2 gave waits {outcome.waits}")
    if name == "retry-after-http-date" and not (outcome.waits and 1.0 <= outcome.waits[0] <= 3.5):
        outcome.unclear.append(f"a Retry-After date 3 s ahead gave waits {outcome.waits}")
    if name == "retry-after-an-hour" and outcome.waits[:1] != [60.0]:
        outcome.unclear.append(f"Retry-After: 3600 gave waits {outcome.waits} (the cap is 60 s)")


def _stored(data_dir: Path) -> tuple[int, list[str]]:
    from tests.reliability.harness import read_history

    messages, warnings = read_history(data_dir, USER)
    return len(messages), warnings


async def _run_remote(case: NetCase, workdir: Path) -> Outcome:
    outcome = Outcome(case)
    local_files = workdir / "data"
    server_class = SeedServer if case.backend == "seed" else AgentServer
    options = dict(case.server)
    if server_class is AgentServer:
        options.setdefault("token", REMOTE_TOKEN)
    with server_class(**options) as server:
        url = f"http://127.0.0.1:{free_port()}" if case.refused else server.url
        agent_options = {"token": REMOTE_TOKEN, **case.agent}
        agent = RemoteAgent(url, USER, timeout=case.timeout, connect_timeout=2.0, max_retries=MAX_RETRIES,
                            retry_delay=0.01, **agent_options)
        try:
            if case.script is not None:
                case.script(server)
            events, error = await _drain(agent, "hello there")
            outcome.error = error
            outcome.sends = server.count("/api/chat")
        finally:
            await agent.aclose()
    _judge_sends(outcome, events)
    succeeded = _judge_result(outcome, events, error)  # one Done for a success, none for a failure
    if not succeeded and _shown(events):
        # What was shown is kept, marked stopped, and the error says so (the server keeps its own copy).
        partial = getattr(error, "kept_partial", None)
        if partial is None or partial.message.content != _shown(events) or not partial.message.stopped:
            outcome.unclear.append("the error does not say that the text shown was kept")
    if local_files.exists():
        outcome.wrongly_stored.append("a remote turn wrote local files")
    return outcome


def run_case_sync(case: NetCase, workdir: Path) -> Outcome:
    return asyncio.run(run_case(case, workdir))


# --- the same faults through the command line -----------------------------------------------------

#: Cases also run through ``edgechat -m`` in a real process (a sample: each costs a process start).
CLI_CASES = (
    "workers-ai:refused", "workers-ai:401-json", "workers-ai:500-html", "workers-ai:reset-mid-stream",
    "workers-ai:stall-mid-stream", "workers-ai:no-done", "workers-ai:invalid-utf8-in-stream",
    "workers-ai:escape-sequences-in-error", "workers-ai:token-echoed-in-error", "workers-ai:50MB-error-page",
    "seed:401-json", "seed:502-html", "seed:closed-without-answer", "seed:stall-past-timeout",
    "seed:json-not-json", "seed:50MB-answer", "seed:escape-sequences-in-error", "seed:token-echoed-in-error",
    "seed:model-failure", "agent:wrong-token", "agent:stream-cut-mid-reply", "agent:stream-ends-without-done",
    "agent:stream-invalid-utf8", "agent:stream-escapes-in-error-event", "agent:stream-token-in-error-event",
    "agent:413-json",
)


def cli_cases() -> list[NetCase]:
    by_id = {case.id: case for case in all_cases()}
    return [by_id[name] for name in CLI_CASES]


def run_cli_case(case: NetCase, space: Any) -> Outcome:
    """Run ``case`` through ``edgechat -m`` (no retries): one clear error line, exit 1, stdout safe,
    nothing stored locally, the message sent once."""
    from tests.reliability.harness import cli_unclear_reasons, run_edgechat, terminal_hazards

    outcome = Outcome(case)
    before = snapshot(space.data_dir)
    if case.backend == "workers-ai":
        with FakeWorkersAI(token=TOKEN, account_id=ACCOUNT) as fake:
            api_base = f"http://127.0.0.1:{free_port()}/client/v4" if case.refused else fake.api_base
            env = space.local_env(api_base, EDGECHAT_MAX_RETRIES="0", EDGECHAT_READ_TIMEOUT=str(case.timeout),
                                  EDGECHAT_CONNECT_TIMEOUT="2")
            if case.script is not None:
                case.script(fake)
            run = run_edgechat(["--user", USER, "-m", "hello there"], env)
            outcome.sends = len(fake.run_requests)
    else:
        server_class = SeedServer if case.backend == "seed" else AgentServer
        options = dict(case.server)
        if server_class is AgentServer:
            options.setdefault("token", REMOTE_TOKEN)
        with server_class(**options) as server:
            url = f"http://127.0.0.1:{free_port()}" if case.refused else server.url
            token = case.agent.get("token", REMOTE_TOKEN)
            env = space.remote_env(url, token=token, EDGECHAT_REMOTE_TIMEOUT=str(case.timeout))
            if case.script is not None:
                case.script(server)
            run = run_edgechat(["--user", USER, "-m", "hello there"], env)
            outcome.sends = server.count("/api/chat")
    outcome.unclear.extend(cli_unclear_reasons(run, exit_code=1, words=case.words))
    hazards = terminal_hazards(run.stdout)
    if hazards:
        outcome.unclear.append(f"stdout could drive the terminal: {hazards[:2]}")
    if outcome.sends > (0 if case.refused else 1):
        outcome.duplicate_sends.append(f"{outcome.sends} sends without retries configured")
    if case.backend == "workers-ai" and run.stdout.strip():
        # Text was shown before the failure: it is kept, marked stopped, as Esc keeps it.
        from tests.reliability.harness import read_history

        messages, _ = read_history(space.data_dir, USER)
        if [m.role for m in messages] != ["user", "assistant"] or not messages[1].stopped \
                or not messages[1].content or messages[1].content[:20] not in run.out:
            outcome.wrongly_stored.append(f"the text shown was not kept, marked stopped: {messages!r:.200}")
    elif snapshot(space.data_dir) != before:
        outcome.wrongly_stored.append("the failed turn changed the local history files")
    return outcome
