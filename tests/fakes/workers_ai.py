"""A loopback HTTP server that speaks the Workers AI REST API, for tests, benchmarks and subprocess tests.

It is a real server on ``127.0.0.1`` (port 0 picks a free one) run in a background thread, so the code
under test goes through real sockets, real HTTP and real SSE framing. It answers as the service does
(``shared/reference/cloudflare.md`` sections 1 and 3):

- ``POST /client/v4/accounts/{account_id}/ai/run/{model id with slashes}``: checks the bearer token
  (401, code 10000), the account id (400, 7003 + 7000), the model (400, 5007; 404, 3042 for a malformed
  id), the input (400, 5006) and the context window (413, 5021 with the service's wording; the estimate
  counts ``max_tokens``, as the service does), then answers with the next queued reply or, when the
  queue is empty, a deterministic echo of the conversation so memory across turns can be tested.
  ``stream: true`` answers in SSE: ``data: {"response": ...}`` events with padding ``"p"`` fields, a
  final usage event and ``data: [DONE]``.
- ``GET /client/v4/user/tokens/verify`` and ``GET /client/v4/accounts/{id}/tokens/verify``.
- ``GET /client/v4/accounts/{id}/ai/models/search`` (``task``, ``search``, ``page``, ``per_page``): the
  model catalog, paged as the service pages it (:mod:`tests.fakes.model_catalog`), from
  :attr:`FakeWorkersAI.catalog`; :attr:`FakeWorkersAI.catalog_reply` answers instead when set.

In a test::

    with FakeWorkersAI() as fake:
        client = WorkersAIClient(account_id=fake.account_id, api_token=fake.token, api_base=fake.api_base)
        fake.enqueue(ErrorReply(429, 3040, "Capacity temporarily exceeded, please try again.", retry_after=2))
        fake.enqueue(Reply("Hello there", chunk_size=3))
        ...
        assert fake.run_requests[-1].body["max_tokens"] == 2048

As a process (for subprocess tests and ``bench/`` scripts)::

    python -m tests.fakes.workers_ai --port 0        # prints its api_base on the first line, then serves

and the queue can be filled over HTTP: ``POST {api_base}/_fake/enqueue`` with
``{"type": "ErrorReply", "args": {"status": 429, "code": 3040}}`` (any reply class below), and
``GET {api_base}/_fake/requests`` returns what was received. These control paths need no token.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import secrets
import select
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from tests.fakes.model_catalog import default_catalog, search_page

# --- What the fake knows about models -------------------------------------------------------------

#: Context windows of the models the fake accepts (cloudflare.md section 2).
MODEL_WINDOWS: dict[str, int] = {
    "@cf/meta/llama-3.3-70b-instruct-fp8-fast": 24_000,
    "@cf/meta/llama-3.1-8b-instruct-fast": 128_000,
    "@cf/meta/llama-3.1-8b-instruct-fp8": 32_000,
    "@cf/meta/llama-4-scout-17b-16e-instruct": 131_000,
    "@cf/mistralai/mistral-small-3.1-24b-instruct": 128_000,
    "@cf/qwen/qwen3-30b-a3b-fp8": 32_768,
}
DEFAULT_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
# A well-formed model id: @cf/author/name or @hf/author/name. Anything else is "invalid model name".
_MODEL_SHAPE = re.compile(r"@(cf|hf)/[A-Za-z0-9._-]+/[A-Za-z0-9._:-]+")
_ROLES = {"system", "user", "assistant", "tool"}
_API_PREFIX = "/client/v4"


#: The library's title call: this model, at most this many tokens, and a system prompt asking for a title.
TITLE_MODEL = "@cf/meta/llama-3.1-8b-instruct-fast"


def is_title_request(body: Any) -> bool:
    if not isinstance(body, dict) or body.get("max_tokens") != 24:
        return False
    messages = body.get("messages")
    return (isinstance(messages, list) and len(messages) == 2 and isinstance(messages[0], dict)
            and messages[0].get("role") == "system"
            and "title for this conversation" in str(messages[0].get("content", "")))


def estimate_tokens(body: dict[str, Any]) -> int:
    """The fake's count of input tokens plus ``max_tokens``, as the service checks it against the window.

    About four characters per token plus a few tokens per message for the chat template. The agent's
    own estimate must be at least this conservative for its trimming to work against the fake.
    """
    messages = body.get("messages") or []
    chars = sum(len(m.get("content", "")) for m in messages if isinstance(m, dict))
    max_tokens = body.get("max_tokens", 256)
    return math.ceil(chars / 4) + 4 * len(messages) + 3 + (max_tokens if isinstance(max_tokens, int) else 256)


# --- Replies a test can queue ---------------------------------------------------------------------


@dataclass
class Reply:
    """A successful answer with ``text``.

    Streamed in pieces of ``chunk_size`` characters (None: word by word, spaces leading, as the
    service does), ``delay`` seconds apart, the first after ``first_delay``. ``usage``: "auto" (counts
    derived from the request), None (no usage reported) or a dict sent as is. ``style``:
    "response" (``{"response": "..."}``), "choices" (OpenAI-style ``choices[0].delta.content``) or
    "number" (pieces that are integers sent as JSON numbers, as some Llama 4 replies are).
    ``padding`` adds the ``"p"`` field the service pads events with.
    """

    text: str
    chunk_size: int | None = None
    delay: float = 0.0
    first_delay: float = 0.0
    usage: dict[str, Any] | str | None = "auto"
    style: str = "response"
    padding: bool = True
    #: Why the model stopped: None says nothing in the native style ("stop" in the OpenAI style);
    #: "length" is a reply cut at ``max_tokens`` (then said in either style, and usage counts
    #: ``max_tokens`` completion tokens).
    finish_reason: str | None = None
    #: Pauses the test controls: before the piece at each index the stream waits until that event
    #: is set (or the client goes away), so a test can see the reply at a known point, not a moment.
    holds: dict[int, threading.Event] = field(default_factory=dict, repr=False)


@dataclass
class ErrorReply:
    """An error in the Cloudflare envelope, or ``body`` (str or bytes) sent verbatim instead.

    ``retry_after`` becomes a ``Retry-After`` header (seconds, or an HTTP date as a string).
    """

    status: int = 429
    code: int | None = 3040
    message: str = "Capacity temporarily exceeded, please try again."
    retry_after: float | str | None = None
    body: str | bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class CutStream:
    """Start a streamed reply, then drop the connection after ``after_chunks`` events.

    The HTTP body is cut too (no closing chunk), as when a proxy or the network fails. ``partial`` is
    written first, e.g. ``b'data: {"resp'`` to cut inside an event. Without streaming: a body shorter
    than its Content-Length.
    """

    text: str = "This reply will be cut off before it is complete."
    after_chunks: int = 3
    partial: bytes = b""


@dataclass
class NoDone:
    """A streamed reply whose HTTP body ends cleanly but without ``data: [DONE]``."""

    text: str = "This reply never says it is done."
    usage: bool = True


@dataclass
class Garbage:
    """A streamed reply with ``raw`` bytes written verbatim after ``after_chunks`` events, then [DONE].

    The default is an event whose data is not JSON. Without streaming, ``raw`` is the whole body.
    """

    raw: bytes = b"data: {this is not json\n\n"
    after_chunks: int = 1
    text: str = "Some text before the garbage and after it."
    content_type: str | None = None


@dataclass
class Stall:
    """Send ``after_chunks`` events, then nothing for ``seconds``, then the rest of the reply.

    ``before_headers=True`` stalls before the response starts (a service that accepted the request
    and never answers). The stall ends early when the client disconnects.
    """

    seconds: float = 30.0
    after_chunks: int = 1
    before_headers: bool = False
    text: str = "A reply that pauses for a long time in the middle."


@dataclass
class HugeBody:
    """An error answer with a ``size``-byte body, sent in pieces (the server never holds it whole)."""

    size: int = 50 * 1024 * 1024
    status: int = 500
    content_type: str = "text/html"


@dataclass
class Disconnect:
    """Read the request, then close the connection without answering."""


def invalid_utf8(after_chunks: int = 1) -> Garbage:
    """A streamed reply carrying bytes that are not UTF-8 inside an event's JSON."""
    return Garbage(raw=b'data: {"response":"caf\xc3\x28 \xff"}\n\n', after_chunks=after_chunks)


def html_error_page(status: int = 502) -> ErrorReply:
    """What a proxy in front of the service answers when it fails: an HTML page, not JSON."""
    page = (
        "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
        "<body><h1>Bad gateway</h1><p>Error code 502</p><p>cloudflare</p></body></html>\n"
    )
    return ErrorReply(status=status, code=None, body=page, content_type="text/html; charset=UTF-8")


def capacity_error(retry_after: float | str | None = None) -> ErrorReply:
    """429, code 3040: the model is out of capacity for now."""
    return ErrorReply(429, 3040, "Capacity temporarily exceeded, please try again.", retry_after=retry_after)


def quota_error() -> ErrorReply:
    """429, code 4006: the daily free allocation is used up."""
    return ErrorReply(
        429,
        4006,
        "you have used up your daily free allocation of 10,000 neurons, please upgrade to Cloudflare's "
        "Workers Paid plan if you would like to continue usage.",
    )


def server_error(status: int = 500, retry_after: float | str | None = None) -> ErrorReply:
    """A 5xx in the Cloudflare envelope."""
    code = 3043 if status == 500 else None
    return ErrorReply(status, code, "Internal server error", retry_after=retry_after)


ReplyKind = Reply | ErrorReply | CutStream | NoDone | Garbage | Stall | HugeBody | Disconnect
_REPLY_TYPES: dict[str, type] = {
    cls.__name__: cls for cls in (Reply, ErrorReply, CutStream, NoDone, Garbage, Stall, HugeBody, Disconnect)
}


def reply_from_json(spec: dict[str, Any]) -> ReplyKind:
    """Build a reply from ``{"type": "Reply", "args": {...}}`` (the control endpoint's form).

    Bytes fields (``raw``, ``partial``, ``body``) are given as strings and encoded with latin-1, so
    any byte value can be sent.
    """
    cls = _REPLY_TYPES[spec["type"]]
    args = dict(spec.get("args") or {})
    for key in ("raw", "partial"):
        if isinstance(args.get(key), str):
            args[key] = args[key].encode("latin-1")
    return cls(**args)


# --- What the fake received -----------------------------------------------------------------------


@dataclass
class ReceivedRequest:
    """One request as the fake saw it. ``headers`` has lower-case names; ``body`` is the parsed JSON."""

    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes
    body: Any = None
    account_id: str | None = None
    model: str | None = None
    #: Set when the client closed the connection before the answer was complete.
    closed_early: threading.Event = field(default_factory=threading.Event, repr=False)
    #: Set when the fake has finished with the request (answered, cut, or seen the client go).
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
            "account_id": self.account_id,
            "model": self.model,
            "closed_early": self.closed_early.is_set(),
        }


class _ClientGone(Exception):
    """The client closed the connection, or the fake is stopping."""


# --- The server -----------------------------------------------------------------------------------


class FakeWorkersAI:
    """The Workers AI REST API on a loopback port. Use as a context manager, or ``start()``/``stop()``.

    ``context_window`` overrides every model's window (to test trimming with small numbers);
    ``models`` are the model ids it knows (default: :data:`MODEL_WINDOWS`).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        account_id: str | None = None,
        token: str | None = None,
        context_window: int | None = None,
        models: dict[str, int] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.account_id = account_id or secrets.token_hex(16)
        # Distinctive, so a test can search any output for it.
        self.token = token or f"fake-token-{secrets.token_urlsafe(24)}"
        self.context_window = context_window
        self.models: dict[str, int] = dict(MODEL_WINDOWS if models is None else models)
        #: "active", "disabled" or "expired": what token verification reports for the right token.
        self.token_status = "active"
        #: When False, the right token gets 403 (a token without the Workers AI permissions).
        self.token_has_permission = True
        #: When True, the token is account-owned: only /accounts/{id}/tokens/verify accepts it.
        self.token_is_account_owned = False
        #: When set, the token check answers this instead (a hostile or broken verify endpoint).
        self.verify_reply: ErrorReply | None = None
        #: The model search endpoint's items (hostile ones too: they are sent as they are).
        self.catalog: list[Any] = default_catalog(self.models)
        #: When set, the model search endpoint answers this instead (an error, or a raw body).
        self.catalog_reply: ErrorReply | None = None
        #: When set, a model search request waits for it (up to 10 s): a test sees the client meanwhile.
        self.catalog_gate: threading.Event | None = None
        #: Builds the answer when the queue is empty. Default: :meth:`echo_reply`.
        self.default_reply: Callable[[ReceivedRequest], ReplyKind] = self.echo_reply
        self.requests: list[ReceivedRequest] = []
        #: Title requests (the library's small-model call after a first reply) are kept apart from
        #: ``requests`` and answered from ``title_queue``, else with a title made from the first words,
        #: so a test's queued replies and request counts are about its turns only.
        self.title_requests: list[ReceivedRequest] = []
        self.title_queue: deque[ReplyKind] = deque()
        self._queue: deque[ReplyKind] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._request_seen = threading.Condition(self._lock)

    # -- life cycle --

    def start(self) -> FakeWorkersAI:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), name="fake-workers-ai",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop every open connection (stalled replies end at once)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeWorkersAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests use --

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        """What edgechat's ``api_base`` setting should be to talk to this fake."""
        return f"{self.base_url}{_API_PREFIX}"

    def run_url(self, model: str = DEFAULT_MODEL) -> str:
        return f"{self.api_base}/accounts/{self.account_id}/ai/run/{model}"

    def enqueue(self, *replies: ReplyKind) -> None:
        """Queue answers for the next ``/ai/run`` requests that pass the fake's own checks, in order."""
        with self._lock:
            self._queue.extend(replies)

    def clear_queue(self) -> None:
        """Drop replies queued but not used (for example after a request that was not retried)."""
        with self._lock:
            self._queue.clear()

    @property
    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def run_requests(self) -> list[ReceivedRequest]:
        """The ``/ai/run`` requests received, oldest first."""
        with self._lock:
            return [r for r in self.requests if "/ai/run/" in r.path]

    @property
    def catalog_requests(self) -> list[ReceivedRequest]:
        """The model search requests received, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/ai/models/search")]

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        """Block until ``count`` requests have arrived (for subprocess tests). Raises TimeoutError."""
        with self._request_seen:
            if not self._request_seen.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} requests arrived")
            return list(self.requests)

    def window_for(self, model: str) -> int:
        return self.context_window if self.context_window is not None else self.models.get(model, 24_000)

    @staticmethod
    def echo_reply(request: ReceivedRequest) -> Reply:
        """A deterministic reply that shows what the model was sent.

        It names the last user message, how many user messages the conversation had and the first
        of them, so a test can see that earlier turns were (or were not) sent.
        """
        messages = [m for m in (request.body or {}).get("messages", []) if isinstance(m, dict)]
        said = [m.get("content", "") for m in messages if m.get("role") == "user"]
        last = said[-1] if said else ""
        text = f"You said: {last}"
        if len(said) > 1:
            text += f" (you have said {len(said)} things; first: {said[0]})"
        return Reply(text)

    # -- internals used by the handler --

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def _record(self, request: ReceivedRequest) -> None:
        with self._request_seen:
            if is_title_request(request.body):
                self.title_requests.append(request)
            else:
                self.requests.append(request)
            self._request_seen.notify_all()

    def wait_for_title_requests(self, count: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        with self._request_seen:
            if not self._request_seen.wait_for(lambda: len(self.title_requests) >= count, timeout):
                raise TimeoutError(f"{len(self.title_requests)} of {count} title requests arrived")
            return list(self.title_requests)

    def _next_reply(self, request: ReceivedRequest) -> ReplyKind:
        with self._lock:
            if is_title_request(request.body):
                if self.title_queue:
                    return self.title_queue.popleft()
                said = request.body["messages"][-1].get("content", "")
                first = said.split("\n", 1)[0].removeprefix("User: ")
                return Reply("Title: " + " ".join(first.split()[:4]).title())
            if self._queue:
                return self._queue.popleft()
        return self.default_reply(request)


def _error_body(errors: list[tuple[int, str]]) -> dict[str, Any]:
    return {
        "result": None,
        "success": False,
        "errors": [{"code": code, "message": message} for code, message in errors],
        "messages": [],
    }


def _pieces(text: str, chunk_size: int | None) -> list[str]:
    if not text:
        return []
    if chunk_size is None:
        return re.findall(r"\s*\S+|\s+$", text) or [text]
    return [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)]


def _padding(index: int) -> str:
    # Deterministic, varying length, as the service's "p" fields vary.
    return "abcdefghijklmnopqrstuvwxyz0123456789"[: 3 + (index * 7) % 30]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeWorkersAI
    protocol_version = "HTTP/1.1"
    server_version = "cloudflare"
    sys_version = ""
    # An idle keep-alive connection is dropped after this long.
    timeout = 30

    def setup(self) -> None:
        super().setup()
        self.fake._track(self.connection, True)

    def handle(self) -> None:
        # A client that resets an idle keep-alive connection is normal, not a server error.
        with contextlib.suppress(ConnectionError):
            super().handle()

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.fake._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read fake.requests instead
        pass

    # -- request handling --

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        request = ReceivedRequest(
            method=method,
            path=path,
            headers={k.lower(): v for k, v in self.headers.items()},
            raw_body=raw,
        )
        if raw:
            with contextlib.suppress(ValueError):
                request.body = json.loads(raw)
        try:
            if path.startswith(f"{_API_PREFIX}/_fake/"):
                self._control(method, path, request)
                return
            self.fake._record(request)
            self._route(method, path, request)
        except _ClientGone:
            request.closed_early.set()
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            request.closed_early.set()
            self.close_connection = True
        finally:
            request.finished.set()

    def _control(self, method: str, path: str, request: ReceivedRequest) -> None:
        if method == "POST" and path.endswith("/_fake/enqueue"):
            specs = request.body if isinstance(request.body, list) else [request.body]
            try:
                self.fake.enqueue(*(reply_from_json(spec) for spec in specs))
            except (KeyError, TypeError) as exc:
                self._send_json(400, {"error": f"bad reply spec: {exc}"})
                return
            self._send_json(200, {"queued": self.fake.queued})
        elif method == "GET" and path.endswith("/_fake/requests"):
            self._send_json(200, [r.to_json() for r in list(self.fake.requests)])
        else:
            self._send_json(404, {"error": "unknown control path"})

    def _route(self, method: str, path: str, request: ReceivedRequest) -> None:
        fake = self.fake
        if not path.startswith(_API_PREFIX + "/"):
            self._send_json(404, _error_body([(7000, "No route for that URI")]))
            return
        rest = path[len(_API_PREFIX) :]
        if rest == "/user/tokens/verify":
            self._verify(method, request, account_endpoint=False)
            return
        match = re.fullmatch(r"/accounts/([^/]+)/tokens/verify", rest)
        if match is not None:
            if match.group(1) != fake.account_id:
                self._no_route(path)
            else:
                self._verify(method, request, account_endpoint=True)
            return
        match = re.fullmatch(r"/accounts/([^/]+)/ai/models/search", rest)
        if match is not None:
            self._search_models(method, match.group(1), path, request)
            return
        match = re.fullmatch(r"/accounts/([^/]+)/ai/run/(.+)", rest)
        if match is None:
            self._no_route(path)
            return
        request.account_id, request.model = match.group(1), unquote(match.group(2))
        if not self._authorised(request):
            return
        if request.account_id != fake.account_id:
            self._no_route(path)
            return
        if method != "POST":
            self._send_json(400, _error_body([(7001, f"{method} not supported for requested URI.")]))
            return
        model = request.model
        if not _MODEL_SHAPE.fullmatch(model):
            self._send_json(404, _error_body([(3042, f"AiError: Invalid model name: {model}")]))
            return
        if model not in fake.models:
            rid = secrets.token_hex(8)
            self._send_json(400, _error_body([(5007, f"AiError: No such model: No such model {model} "
                                                      f"or task ({rid})")]))
            return
        problem = _input_problem(request.body)
        if problem is not None:
            self._send_json(400, _error_body([(5006, f"AiError: Bad input: {problem}")]))
            return
        window = fake.window_for(model)
        needed = estimate_tokens(request.body)
        if needed > window:
            self._send_json(413, _error_body([(5021, "AiError: The estimated number of input and maximum "
                                                      f"output tokens ({needed}) exceeded this model context "
                                                      f"window limit ({window}).")]))
            return
        reply = fake._next_reply(request)
        self._answer(reply, request, stream=request.body.get("stream") is True)

    def _search_models(self, method: str, account_id: str, path: str, request: ReceivedRequest) -> None:
        request.account_id = account_id
        if not self._authorised(request):
            return
        if account_id != self.fake.account_id:
            self._no_route(path)
            return
        if method != "GET":
            self._send_json(400, _error_body([(7001, f"{method} not supported for requested URI.")]))
            return
        if self.fake.catalog_gate is not None:
            self.fake.catalog_gate.wait(10)
        if self.fake.catalog_reply is not None:
            self._send_error_reply(self.fake.catalog_reply)
            return
        status, body = search_page(list(self.fake.catalog), self.path.partition("?")[2])
        self._send_json(status, body)

    def _no_route(self, path: str) -> None:
        message = f"Could not route to {path}, perhaps your object identifier is invalid?"
        self._send_json(400, _error_body([(7003, message), (7000, "No route for that URI")]))

    def _authorised(self, request: ReceivedRequest) -> bool:
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {self.fake.token}":
            self._send_json(401, _error_body([(10000, "Authentication error")]))
            return False
        if not self.fake.token_has_permission:
            self._send_json(403, _error_body([(10000, "Authentication error")]))
            return False
        return True

    def _verify(self, method: str, request: ReceivedRequest, *, account_endpoint: bool) -> None:
        if method != "GET":
            self._send_json(400, _error_body([(7001, f"{method} not supported for requested URI.")]))
            return
        if self.fake.verify_reply is not None:
            self._send_error_reply(self.fake.verify_reply)
            return
        right_endpoint = account_endpoint or not self.fake.token_is_account_owned
        if request.headers.get("authorization", "") != f"Bearer {self.fake.token}" or not right_endpoint:
            self._send_json(401, _error_body([(1000, "Invalid API Token")]))
            return
        status = self.fake.token_status
        note = "This API Token is valid and active" if status == "active" else f"This API Token is {status}"
        self._send_json(200, {
            "result": {"id": "0" * 32, "status": status},
            "success": True,
            "errors": [],
            "messages": [{"code": 10000, "message": note, "type": None}],
        })

    # -- answers --

    def _answer(self, reply: ReplyKind, request: ReceivedRequest, *, stream: bool) -> None:
        if isinstance(reply, ErrorReply):
            self._send_error_reply(reply)
        elif isinstance(reply, HugeBody):
            self._send_huge(reply)
        elif isinstance(reply, Disconnect):
            self._drop()
        elif isinstance(reply, Stall) and reply.before_headers:
            self._wait(reply.seconds)
            self._answer(Reply(reply.text), request, stream=stream)
        elif stream:
            self._stream(reply, request)
        else:
            self._whole(reply, request)

    def _send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(data).encode(), "application/json", headers)

    def _send_bytes(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None,
                    length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("cf-ray", secrets.token_hex(8) + "-LHR")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_error_reply(self, reply: ErrorReply) -> None:
        headers = dict(reply.headers)
        if reply.retry_after is not None:
            value = reply.retry_after
            headers["Retry-After"] = value if isinstance(value, str) else f"{value:g}"
        if reply.body is not None:
            body = reply.body.encode() if isinstance(reply.body, str) else reply.body
            self._send_bytes(reply.status, body, reply.content_type or "text/plain", headers)
            return
        errors = [(reply.code, reply.message)] if reply.code is not None else []
        data = _error_body(errors)
        if reply.code is None:
            data["errors"] = [{"message": reply.message}]
        self._send_bytes(reply.status, json.dumps(data).encode(), reply.content_type or "application/json",
                         headers)

    def _send_huge(self, reply: HugeBody) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(reply.size))
        self.end_headers()
        block = (b"<p>" + b"x" * 1017 + b"</p>\n") * 64  # 64 KiB
        left = reply.size
        while left > 0:
            self._check_stopping()
            piece = block[: min(left, len(block))]
            self.wfile.write(piece)
            left -= len(piece)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _usage(self, reply: Reply | NoDone, request: ReceivedRequest, text: str) -> dict[str, Any] | None:
        usage = getattr(reply, "usage", "auto")
        if usage is None or usage is False:
            return None
        if isinstance(usage, dict):
            return usage
        body = request.body if isinstance(request.body, dict) else {}
        prompt = estimate_tokens({**body, "max_tokens": 0})
        completion = math.ceil(len(text) / 4)
        if getattr(reply, "finish_reason", None) == "length" and isinstance(body.get("max_tokens"), int):
            completion = body["max_tokens"]
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _whole(self, reply: ReplyKind, request: ReceivedRequest) -> None:
        if isinstance(reply, Garbage):
            self._send_bytes(200, reply.raw, reply.content_type or "application/json")
            return
        if isinstance(reply, CutStream):
            body = json.dumps({"result": {"response": reply.text}, "success": True, "errors": [],
                               "messages": []}).encode()
            self._send_bytes(200, body[: len(body) // 2], "application/json", length=len(body))
            self._drop()
            return
        text = reply.text
        style = getattr(reply, "style", "response")
        usage = self._usage(reply, request, text) if isinstance(reply, Reply | NoDone) else None
        if style == "choices":
            result: dict[str, Any] = {
                "id": "chatcmpl-" + secrets.token_hex(6),
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": getattr(reply, "finish_reason", None) or "stop"}],
            }
        elif style == "number" and re.fullmatch(r"-?[1-9][0-9]*|0", text):
            result = {"response": int(text)}
        else:
            result = {"response": text, "tool_calls": []}
            if getattr(reply, "finish_reason", None):
                result["finish_reason"] = reply.finish_reason
        if usage is not None:
            result["usage"] = usage
        first_delay = getattr(reply, "first_delay", 0.0)
        if first_delay:
            self._wait(first_delay)
        self._send_json(200, {"result": result, "success": True, "errors": [], "messages": []})

    def _stream(self, reply: ReplyKind, request: ReceivedRequest) -> None:
        text = reply.text
        chunk_size = getattr(reply, "chunk_size", None)
        style = getattr(reply, "style", "response")
        padding = getattr(reply, "padding", True)
        delay = getattr(reply, "delay", 0.0)
        if getattr(reply, "first_delay", 0.0):
            self._wait(reply.first_delay)
        pieces = _pieces(text, chunk_size)

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("cf-ray", secrets.token_hex(8) + "-LHR")
        self.end_headers()

        def event(data: dict[str, Any], index: int) -> bytes:
            if padding:
                data["p"] = _padding(index)
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        def piece_event(piece: str, index: int) -> bytes:
            if style == "choices":
                return event({"id": "chatcmpl-x", "object": "chat.completion.chunk",
                              "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]},
                             index)
            if style == "number" and re.fullmatch(r"-?[1-9][0-9]*|0", piece):
                return event({"response": int(piece)}, index)
            return event({"response": piece}, index)

        stop_after = {CutStream: "after_chunks", Garbage: "after_chunks", Stall: "after_chunks"}
        cut_at = getattr(reply, stop_after.get(type(reply), ""), None) if type(reply) in stop_after else None
        for index, piece in enumerate(pieces):
            if cut_at is not None and index == cut_at:
                if self._interrupt(reply):
                    return
                cut_at = None
            hold = getattr(reply, "holds", {}).get(index)
            if hold is not None:
                self._wait_for(hold)
            if delay and index:
                self._wait(delay)
            self._chunk(piece_event(piece, index))
        if cut_at is not None and self._interrupt(reply):  # the reply had no more pieces than after_chunks
            return

        usage = self._usage(reply, request, text) if isinstance(reply, Reply | NoDone) else None
        if usage is not None:
            if style == "choices":
                final = {"id": "chatcmpl-x", "object": "chat.completion.chunk",
                         "choices": [{"index": 0, "delta": {},
                                      "finish_reason": getattr(reply, "finish_reason", None) or "stop"}],
                         "usage": usage}
            else:
                final = {"response": "", "tool_calls": [], "usage": usage}
                if getattr(reply, "finish_reason", None):
                    final["finish_reason"] = reply.finish_reason
            self._chunk(event(final, len(pieces)))
        if not isinstance(reply, NoDone):
            self._chunk(b"data: [DONE]\n\n")
        self._end_chunks()

    def _interrupt(self, reply: ReplyKind) -> bool:
        """Do what the reply does at its break point. True when the response is over."""
        if isinstance(reply, CutStream):
            if reply.partial:
                self._chunk(reply.partial)
            self._drop()
            return True
        if isinstance(reply, Garbage):
            self._chunk(reply.raw)
            return False
        if isinstance(reply, Stall):
            self._wait(reply.seconds)
        return False

    def _chunk(self, data: bytes) -> None:
        self._check_stopping()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _check_stopping(self) -> None:
        if self.fake._stopping.is_set():
            raise _ClientGone

    def _wait_for(self, event: threading.Event, limit: float = 60.0) -> None:
        """Wait until ``event`` is set, noticing at once when the client goes away or the fake stops.

        ``limit`` only keeps a broken test from hanging the server thread for ever."""
        self._wait(limit, until=event)

    def _wait(self, seconds: float, until: threading.Event | None = None) -> None:
        """Sleep, but notice at once when the client goes away or the fake stops."""
        deadline = time.monotonic() + seconds
        while True:
            self._check_stopping()
            if until is not None and until.is_set():
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if readable:
                try:
                    data = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    data = b""
                if not data:
                    raise _ClientGone
                # The client sent something (a pipelined request): keep waiting without spinning.
                time.sleep(min(left, 0.05))


def _input_problem(body: Any) -> str | None:
    """What the service's schema check would reject in ``body``, or None."""
    if not isinstance(body, dict):
        return "Error: request body must be a JSON object"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "Error: required properties at '/' are 'messages'"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            return f"Error: /messages/{i}/role: must be one of system, user, assistant, tool"
        if not isinstance(message.get("content"), str):
            return f"Error: /messages/{i}/content: Type mismatch"
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool)
                                   or max_tokens < 1):
        return "Error: /max_tokens: must be an integer >= 1"
    temperature = body.get("temperature")
    if temperature is not None and (not isinstance(temperature, int | float) or isinstance(temperature, bool)
                                    or not 0 <= temperature <= 5):
        return "Error: /temperature: must be a number between 0 and 5"
    if "stream" in body and not isinstance(body["stream"], bool):
        return "Error: /stream: must be boolean"
    return None


# --- As a process ---------------------------------------------------------------------------------


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[FakeWorkersAI]:
    """``with running() as fake:`` — the same as ``with FakeWorkersAI(**kwargs) as fake:``."""
    with FakeWorkersAI(**kwargs) as fake:
        yield fake


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT or until stdin closes (so a parent that dies takes the fake along)."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.workers_ai",
                                     description="A loopback server that speaks the Workers AI REST API.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--account-id", default="0123456789abcdef0123456789abcdef")
    parser.add_argument("--token", default="fake-token-for-local-tests")
    parser.add_argument("--context-window", type=int, default=None)
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed pieces")
    parser.add_argument("--json", action="store_true", help="print api_base, account_id and token as JSON")
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin reaches end of file")
    args = parser.parse_args(argv)

    fake = FakeWorkersAI(port=args.port, account_id=args.account_id, token=args.token,
                         context_window=args.context_window)
    if args.chunk_delay:
        def slow_echo(request: ReceivedRequest) -> Reply:
            reply = FakeWorkersAI.echo_reply(request)
            reply.delay = args.chunk_delay
            return reply

        fake.default_reply = slow_echo
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with fake:
        if args.json:
            print(json.dumps({"api_base": fake.api_base, "account_id": fake.account_id, "token": fake.token}))
        else:
            print(fake.api_base)
        sys.stdout.flush()
        if args.watch_stdin:
            threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
        try:
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


__all__ = [
    "DEFAULT_MODEL",
    "MODEL_WINDOWS",
    "CutStream",
    "Disconnect",
    "ErrorReply",
    "FakeWorkersAI",
    "Garbage",
    "HugeBody",
    "NoDone",
    "ReceivedRequest",
    "Reply",
    "Stall",
    "capacity_error",
    "estimate_tokens",
    "html_error_page",
    "invalid_utf8",
    "quota_error",
    "reply_from_json",
    "running",
    "server_error",
]

if __name__ == "__main__":
    raise SystemExit(main())
