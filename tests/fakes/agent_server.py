"""A loopback fake of an agent endpoint with the extensions of docs/protocol.md.

It is the seed's fake (:mod:`tests.fakes.seed_server`) plus what our own Worker offers, each one
switchable so a test can meet a server with any subset:

- capabilities in the health answer (``protocol``, ``capabilities``, ``auth``, ``model``);
- ``stream``: when the request accepts ``text/event-stream``, the reply as server-sent events
  (``delta``... ``done``), sent with chunked transfer encoding as a Worker sends it;
- ``history``: ``GET /api/history?userId=…&limit=N``;
- ``history-pages``: pages of at most ``page_size`` messages, ``previous`` a cursor (``c<index>``)
  to pass as ``before``; ``cursor_loop`` makes every page name itself as the previous one (a broken
  server, for the client's bound);
- ``whoami`` (with ``whoami_user``): mode ``user-tokens``, ``GET /api/whoami`` names that user, and
  a request naming anyone else is 403 ``forbidden``;
- ``reset``: ``POST /api/reset``, archiving the old conversation;
- ``auth``: with a token, every route but the health check answers 401 ``unauthorized`` without it;
- errors as JSON with stable codes (``bad_request``, ``not_found``, ...).

The conversation library (``conversations``, ``search``, and ``idempotency`` for its turns) is spoken by
:class:`tests.fakes.library_server.LibraryServer`, a subclass, so every fault scripted here works there.

Failures are scripted as for the seed's fake, plus :class:`ScriptedStream` for faults inside a stream:
a connection cut after N deltas, a stream that ends without ``done``, a stall, garbage, an ``error`` event.
:func:`error_answer` builds an error with a code (and ``retryAfter`` with its ``Retry-After`` header).

Run alone::

    python -m tests.fakes.agent_server --port 0 [--prefix /team] [--token T] [--capabilities stream,history]
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from dataclasses import dataclass
from typing import Any, ClassVar

from tests.fakes.seed_server import (
    RecordedRequest,
    Scripted,
    SeedHandler,
    SeedServer,
    iso_now,
    seed_reply,
    serve_main,
)

ALL_CAPABILITIES = ("stream", "history", "reset")
DEFAULT_MODEL = "@cf/meta/llama-3.1-8b-instruct-fast"
_USER_ID = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9._\-]{0,63}")
_DEVICE_NAMES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
_STATUS_OF_CODE = {
    "bad_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "context_too_long": 413,
    "rate_limited": 429,
    "quota_exceeded": 429,
    "model_unavailable": 502,
    "internal": 500,
}


def valid_user_id(user: object) -> bool:
    """The protocol's user id rules, written out again here so the fake checks the client independently."""
    return (isinstance(user, str) and bool(_USER_ID.fullmatch(user)) and ".." not in user
            and user.split(".", 1)[0].lower() not in _DEVICE_NAMES)


def error_body(code: str, error: str, details: str | None = None, retry_after: int | None = None) -> dict:
    body: dict[str, Any] = {"error": error, "code": code}
    if details is not None:
        body["details"] = details
    if retry_after is not None:
        body["retryAfter"] = retry_after
    return body


def error_answer(code: str, error: str | None = None, *, status: int | None = None,
                 details: str | None = None, retry_after: int | None = None, route: str = "/api/chat",
                 method: str = "POST", retry_after_header: bool = True) -> Scripted:
    """A scripted failure with a stable code, as the protocol's error table gives it."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None and retry_after_header else {}
    return Scripted.json(
        status or _STATUS_OF_CODE.get(code, 500),
        error_body(code, error or code.replace("_", " ").capitalize(), details, retry_after),
        headers=headers, route=route, method=method,
    )


@dataclass
class ScriptedStream(Scripted):
    """A streamed answer with a fault in it. Positions count the deltas sent before the fault.

    Only one fault is meant per script; ``store`` says whether the server keeps the turn when the
    stream does not reach ``done`` (what it stored is then unknown to the client).
    """

    cut_after: int | None = None  # cut the connection (no proper end of the chunked body)
    end_after: int | None = None  # end the body properly, but without ``done``
    stall_after: int | None = None  # stop sending for ``stall`` seconds, then go on
    stall: float = 0.0
    garbage: bytes | None = None  # raw bytes sent after ``garbage_after`` deltas
    garbage_after: int = 0
    error_event: dict | None = None  # an ``error`` event after ``error_after`` deltas, then the end
    error_after: int = 0
    huge_delta: int | None = None  # one delta of this many characters first
    store: bool = False


class AgentHandler(SeedHandler):
    """Adds chunked writing for streams."""

    def start_stream(self) -> None:
        self.send_response(200)
        for name, value in self.cors_headers().items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def send_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def sse_event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


class AgentServer(SeedServer):
    """An agent endpoint with the protocol's extensions, on 127.0.0.1.

    ``capabilities`` picks the extensions offered; ``token`` turns on auth; ``delta_delay`` paces the
    stream (for tests that stop a reply halfway); ``keepalive`` interleaves ``: keep-alive`` comments.
    """

    service: ClassVar[str] = "edgechat agent"
    allowed_headers: ClassVar[str] = "Content-Type, Authorization"
    handler_class: ClassVar[type[SeedHandler]] = AgentHandler

    def __init__(
        self,
        *,
        prefix: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        capabilities: tuple[str, ...] | str = ALL_CAPABILITIES,
        model: str | None = DEFAULT_MODEL,
        delta_delay: float = 0.0,
        keepalive: bool = False,
        page_size: int = 100,
        cursor_loop: bool = False,
        whoami_user: str | None = None,
    ) -> None:
        super().__init__(prefix=prefix, host=host, port=port)
        if isinstance(capabilities, str):  # from the command line: "stream,history"
            capabilities = tuple(c for c in capabilities.split(",") if c)
        self.capabilities = tuple(capabilities)
        self.token = token
        self.model = model
        self.delta_delay = delta_delay
        self.keepalive = keepalive
        self.page_size = page_size
        self.cursor_loop = cursor_loop
        self.whoami_user = whoami_user
        self.archives: dict[str, list[dict[str, Any]]] = {}
        self._archive_ids = itertools.count(1)

    # --- routing ----------------------------------------------------------------------------------

    def handle(self, h: SeedHandler, request: RecordedRequest) -> None:
        if request.method != "OPTIONS" and request.path != "/" and self.token is not None \
                and request.headers.get("authorization") != f"Bearer {self.token}":
            h.reply_json(401, error_body("unauthorized", "Missing or invalid bearer token"))
            return
        if self.whoami_user is not None and request.method != "OPTIONS" and request.path != "/":
            named = (request.query.get("userId") or [""])[0]
            if not named and request.method == "POST":
                try:
                    named = json.loads(request.body).get("userId") or ""
                except (ValueError, AttributeError):
                    named = ""
            if named and named != self.whoami_user:
                h.reply_json(403, error_body("forbidden", "This credential is not for that user",
                                             f"the credential is {self.whoami_user}'s"))
                return
            if request.path == "/api/whoami" and request.method == "GET":
                h.reply_json(200, {"userId": self.whoami_user, "auth": "user-tokens"})
                return
        super().handle(h, request)

    def route(self, h: SeedHandler, request: RecordedRequest, answer: Scripted | None) -> None:
        offered = {
            ("GET", "/api/history"): "history" in self.capabilities,
            ("POST", "/api/reset"): "reset" in self.capabilities,
        }
        key = (request.method, request.path)
        if offered.get(key):
            if answer is not None:
                h.reply_scripted(answer)
            elif key == ("GET", "/api/history"):
                self.history(h, request)
            else:
                self.reset(h, request)
            return
        if key in (("GET", "/"), ("POST", "/api/chat")):
            super().route(h, request, answer)
        elif answer is not None:
            h.reply_scripted(answer)
        else:
            h.reply_json(404, error_body("not_found", f"No route for {request.method} {request.path}"))

    def health(self) -> dict[str, Any]:
        health = {**super().health(), "protocol": 1, "capabilities": list(self.capabilities),
                  "auth": self.token is not None}
        if self.whoami_user is not None:
            health |= {"protocol": 2, "authMode": "user-tokens", "auth": True,
                       "capabilities": [*self.capabilities, "whoami"]}
        if self.model:
            health["model"] = self.model
        return health

    # --- the extensions ---------------------------------------------------------------------------

    def history(self, h: SeedHandler, request: RecordedRequest) -> None:
        user = (request.query.get("userId") or [""])[0] or (self.whoami_user or "")
        if not valid_user_id(user):
            h.reply_json(400, error_body("bad_request", "Invalid userId"))
            return
        limit_text = (request.query.get("limit") or [""])[0]
        messages = self.messages(user)
        if "history-pages" in self.capabilities:
            self.history_page(h, user, messages, limit_text, (request.query.get("before") or [None])[0])
            return
        if limit_text.isdigit():
            messages = messages[-int(limit_text):] if int(limit_text) else []
        h.reply_json(200, {"userId": user, "messageCount": len(self.messages(user)), "messages": messages})

    def history_page(self, h: SeedHandler, user: str, messages: list[dict[str, Any]], limit_text: str,
                     before: str | None) -> None:
        end = len(messages)
        if before is not None:
            if not re.fullmatch(r"c\d+", before) or int(before[1:]) > len(messages):
                h.reply_json(400, error_body("bad_request", "Invalid history cursor"))
                return
            end = int(before[1:])
        limit = int(limit_text) if limit_text.isdigit() and int(limit_text) else self.page_size
        start = max(0, end - min(limit, self.page_size))
        previous = f"c{start}" if start > 0 else None
        if self.cursor_loop:
            previous = f"c{end}"
        h.reply_json(200, {"userId": user, "messageCount": len(messages), "messages": messages[start:end],
                           "previous": previous})

    def reset(self, h: SeedHandler, request: RecordedRequest) -> None:
        try:
            user = json.loads(request.body).get("userId") or self.whoami_user
        except (ValueError, AttributeError):
            user = None
        if not valid_user_id(user):
            h.reply_json(400, error_body("bad_request", "Invalid userId"))
            return
        with self._lock:
            old = self.conversations.pop(user, [])
            archived = f"{user}-{next(self._archive_ids)}" if old else None
            if archived:
                self.archives[archived] = old
        h.reply_json(200, {"ok": True, "messageCount": 0, "archived": archived})

    def chat(self, h: SeedHandler, request: RecordedRequest, answer: Scripted | None) -> None:
        try:
            data = json.loads(request.body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            h.reply_json(400, error_body("bad_request", "The body must be a JSON object"))
            return
        message, user = data.get("message"), data.get("userId") or self.whoami_user or "default-user"
        if not isinstance(message, str) or not message.strip():
            h.reply_json(400, error_body("bad_request", "The message must be a non-empty string"))
            return
        if not valid_user_id(user):
            h.reply_json(400, error_body("bad_request", "Invalid userId"))
            return
        streams = "stream" in self.capabilities and "text/event-stream" in request.headers.get("accept", "")
        if not streams or (answer is not None and not isinstance(answer, ScriptedStream)):
            if answer is not None and answer.model_error is not None:
                # Unlike the seed, a failed turn stores nothing.
                h.reply_json(502, error_body("model_unavailable", "The model failed to answer",
                                             f"AI request failed: {answer.model_error}"))
                return
            super().chat(h, request, answer)
            return
        self.stream(h, user, message, answer)

    def stream(self, h: SeedHandler, user: str, message: str, fault: ScriptedStream | None) -> None:
        assert isinstance(h, AgentHandler)
        fault = fault or ScriptedStream()
        history = [*self.messages(user), {"role": "user", "content": message}]
        reply = fault.reply if fault.reply is not None else seed_reply(message, history)
        pieces = re.findall(r"\s*\S+\s*|\s+", reply) or [reply]
        if fault.huge_delta is not None:
            pieces.insert(0, "y" * fault.huge_delta)
        sent: list[str] = []
        try:
            h.start_stream()
            for i in range(len(pieces) + 1):
                if fault.error_event is not None and i == fault.error_after:
                    h.send_chunk(sse_event("error", fault.error_event))
                    h.end_stream()
                    return
                if fault.cut_after == i:
                    if fault.store:
                        self.store_turn(user, message, "".join(sent), stopped=True)
                    h.drop_connection()
                    return
                if fault.end_after == i:
                    if fault.store:
                        self.store_turn(user, message, "".join(sent), stopped=True)
                    h.end_stream()
                    return
                if fault.garbage is not None and i == fault.garbage_after:
                    h.send_chunk(fault.garbage)
                if fault.stall_after == i:
                    self.wait(fault.stall)
                if i == len(pieces):
                    break
                if self.keepalive:
                    h.send_chunk(b": keep-alive\n\n")
                h.send_chunk(sse_event("delta", {"text": pieces[i]}))
                sent.append(pieces[i])
                if self.delta_delay:
                    self.wait(self.delta_delay)
                if self.closing.is_set():
                    return
            count = self.store_turn(user, message, "".join(sent))
            usage = {"prompt_tokens": 10 * len(history), "completion_tokens": len(sent)}
            h.send_chunk(sse_event("done", {"message": "".join(sent), "messageCount": count, "usage": usage}))
            h.end_stream()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            # The client went away: keep the turn as it was when it left, marked stopped.
            self.store_turn(user, message, "".join(sent), stopped=True)
            h.close_connection = True
            self.note_disconnect()

    def store_turn(self, user: str, message: str, reply: str, *, stopped: bool = False) -> int:
        now = iso_now()
        with self._lock:
            history = self.conversations.setdefault(user, [])
            history.append({"role": "user", "content": message, "time": now})
            history.append({"role": "assistant", "content": reply, "time": now, "stopped": stopped})
            return len(history)


def main(argv: list[str]) -> None:
    serve_main(AgentServer, argv, extra=[
        ("--token", {"default": None, "help": "require this bearer token"}),
        ("--capabilities", {"default": ",".join(ALL_CAPABILITIES), "help": "comma-separated extensions"}),
        ("--model", {"default": DEFAULT_MODEL}),
        ("--delta-delay", {"type": float, "default": 0.0, "help": "seconds between deltas"}),
    ])


if __name__ == "__main__":
    main(sys.argv[1:])
