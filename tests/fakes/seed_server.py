"""A loopback fake of the seed's Worker, answering exactly as the seed contract says.

It serves real HTTP on 127.0.0.1 (port 0: the system picks one) from a background thread, so tests
talk to it over a socket as edgechat talks to a deployed Worker. What it copies from the seed
(``/work/shared/reference/seed-worker.md``):

- ``GET /`` health: ``{"status":"ok","service":"Cloudflare AI Chat Worker","timestamp":…}``;
- ``POST /api/chat`` ``{"message","userId"}`` -> ``{"message","messageCount"}``, ``"default-user"`` when the
  user id is missing or empty, one conversation per user id;
- a model failure -> 500 ``{"error":"Failed to process message","details":"AI request failed: …"}``, with the
  user's message left in memory (the seed's defect 2: the next count is odd);
- a body that is not JSON -> 500 ``{"error":"Internal server error"}``;
- anything else -> 404 plain text ``Not Found``; ``OPTIONS`` anything -> 204;
- the CORS headers on every answer.

The reply is deterministic and depends on the history, so memory and isolation can be tested:
``You said: X. Before that you said: Y. I remember N messages.``

A test scripts failures with :meth:`SeedServer.script`: the next matching request gets a :class:`Scripted`
answer (a status and raw body, an HTML page, a delay, a dropped connection, a truncated body...).

Run alone, it prints its URL and serves until killed::

    python -m tests.fakes.seed_server --port 0 [--prefix /team]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit

SEED_SERVICE = "Cloudflare AI Chat Worker"
# The largest request body the fake reads; Workers accept 100 MB, tests never need more than this.
MAX_REQUEST_BODY = 16 * 1024 * 1024


def js_json(value: Any) -> bytes:
    """JSON as ``JSON.stringify`` writes it: compact, non-ASCII kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seed_reply(message: str, history: list[dict[str, Any]]) -> str:
    """The fake model's reply: it quotes the new message and the previous one, and counts the history.

    ``history`` already holds the new user message (as the seed's object does when it calls the model).
    """
    earlier = [m["content"] for m in history[:-1] if m.get("role") == "user"]
    before = f"Before that you said: {earlier[-1]}." if earlier else "This is the first thing you said."
    return f"You said: {message}. {before} I remember {len(history)} messages."


@dataclass
class Scripted:
    """What the fake answers to the next request on ``route`` instead of its normal answer.

    With ``body`` None the normal answer is built (after ``delay``), so a delay alone makes a slow model.
    ``process`` says whether the turn is processed and stored even though the answer is a failure:
    a dropped connection after the model answered leaves the turn stored, as a real server would.
    """

    status: int = 200
    body: bytes | None = None
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (interrupted when the server closes)
    drop: bool = False  # read the request, then close the connection without answering
    truncate: bool = False  # declare the whole body's length, send half of it, close
    size: int | None = None  # a body of this many bytes, generated as it is sent (huge answers)
    chunked: bool = False  # send the generated body chunked, without declaring its length
    process: bool = False  # store the turn even though the answer is not the normal one
    model_error: str | None = None  # the model call fails with this text (the seed's 500)
    reply: str | None = None  # the model's reply this time, instead of the deterministic one
    route: str = "/api/chat"
    method: str = "POST"

    @classmethod
    def json(cls, status: int, value: Any, **kw: Any) -> Scripted:
        return cls(status=status, body=js_json(value), **kw)

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain;charset=UTF-8",
             **kw: Any) -> Scripted:
        return cls(status=status, body=text.encode(), content_type=content_type, **kw)

    @classmethod
    def html(cls, status: int, title: str = "502 Bad Gateway", **kw: Any) -> Scripted:
        """An error page as a proxy or a CDN answers it."""
        page = (f"<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n<body><center><h1>{title}"
                f"</h1></center>\n<hr><center>nginx</center>\n</body></html>\n")
        return cls(status=status, body=page.encode(), content_type="text/html; charset=utf-8", **kw)

    @classmethod
    def model_failure(cls, text: str = "3040: Capacity temporarily exceeded, please try again.") -> Scripted:
        """The model call fails: the seed answers 500 and keeps the user's message (its defect 2)."""
        return cls(model_error=text)


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the fake received it, for tests that count or inspect requests."""

    method: str
    path: str  # without the prefix and the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler stuck in a scripted delay must not hold up close()
    fake: SeedServer


class SeedHandler(BaseHTTPRequestHandler):
    """Parses a request and hands it to the fake; writes answers with the CORS headers on each."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, delayed ACKs add ~40 ms a request.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # tests read results, not logs
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.server.fake.note_disconnect()
            self.close_connection = True

    def _dispatch(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BODY:
            self.reply(413, b"Payload Too Large", "text/plain;charset=UTF-8")
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path = parts.path
        if fake.prefix:
            if path == fake.prefix or path.startswith(fake.prefix + "/"):
                path = path[len(fake.prefix):] or "/"
            else:
                path = "\0not under the prefix"
        request = RecordedRequest(
            method=self.command,
            path=path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        fake.record(request)
        fake.handle(self, request)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    # --- writing answers ------------------------------------------------------------------------

    def cors_headers(self) -> dict[str, str]:
        return {
            "Access-Control-Allow-Origin": self.headers.get("Origin") or "*",
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": self.server.fake.allowed_headers,
            "Access-Control-Max-Age": "86400",
        }

    def reply(self, status: int, body: bytes, content_type: str | None = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        all_headers = {**self.cors_headers(), **(headers or {})}
        if content_type:
            all_headers["Content-Type"] = content_type
        for name, value in all_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def reply_json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self.reply(status, js_json(value), "application/json", headers)

    def reply_scripted(self, answer: Scripted, normal_body: bytes | None = None) -> None:
        """Write ``answer``: its own body, or ``normal_body`` (the answer the route would give)."""
        if answer.drop:
            self.drop_connection()
            return
        if answer.size is not None:
            self._reply_generated(answer)
            return
        body = answer.body if answer.body is not None else (normal_body or b"")
        if answer.truncate:
            self.send_response(answer.status)
            for name, value in {**self.cors_headers(), **answer.headers}.items():
                self.send_header(name, value)
            if answer.content_type:
                self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.drop_connection()
            return
        self.reply(answer.status, body, answer.content_type, answer.headers)

    def _reply_generated(self, answer: Scripted) -> None:
        """A body of ``answer.size`` bytes, written in pieces: a JSON string that goes on and on."""
        size = answer.size or 0
        self.send_response(answer.status)
        for name, value in {**self.cors_headers(), **answer.headers}.items():
            self.send_header(name, value)
        if answer.content_type:
            self.send_header("Content-Type", answer.content_type)
        if answer.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()

        def write(data: bytes) -> None:
            self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n" if answer.chunked else data)

        head = b'{"messageCount":2,"message":"'
        write(head[:size])
        sent = min(len(head), size)
        piece = b"x" * 65536
        while sent < size:
            n = min(len(piece), size - sent)
            write(piece[:n])
            sent += n
        if answer.chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop_connection(self) -> None:
        """Close the socket at once, without a proper end: the client sees the connection lost."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class SeedServer:
    """The seed's Worker on 127.0.0.1, with per-user memory and scripted failures.

    Use as a context manager (or call :meth:`start` and :meth:`close`); ``url`` is the base URL,
    including the prefix when one is given (a proxy that strips it before the Worker).
    """

    service: ClassVar[str] = SEED_SERVICE
    allowed_headers: ClassVar[str] = "Content-Type"
    handler_class: ClassVar[type[SeedHandler]] = SeedHandler

    def __init__(self, *, prefix: str = "", host: str = "127.0.0.1", port: int = 0) -> None:
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.conversations: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.disconnected = threading.Event()  # set when a client went away before its answer ended
        self.closing = threading.Event()
        self._script: list[Scripted] = []
        self._lock = threading.Lock()
        self._httpd = _Server((host, port), self.handler_class)
        self._httpd.fake = self
        self._thread: threading.Thread | None = None

    # --- life -----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def start(self) -> Self:
        # A short poll interval: close() waits for the serving loop to notice, up to one interval.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what tests script and read ---------------------------------------------------------------

    def script(self, *answers: Scripted) -> None:
        """Queue answers: each is given, once, to the next request on its route and method."""
        with self._lock:
            self._script.extend(answers)

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def count(self, path: str = "/api/chat", method: str = "POST") -> int:
        """How many requests reached ``path`` with ``method`` (chat requests, by default)."""
        with self._lock:
            return sum(1 for r in self.requests if r.path == path and r.method == method)

    def messages(self, user: str) -> list[dict[str, Any]]:
        """``user``'s stored conversation (without the system prompt), as a copy."""
        with self._lock:
            return [dict(m) for m in self.conversations.get(user, [])]

    def note_disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1
        self.disconnected.set()

    def take_scripted(self, request: RecordedRequest) -> Scripted | None:
        with self._lock:
            for i, answer in enumerate(self._script):
                if answer.route == request.path and answer.method == request.method:
                    return self._script.pop(i)
        return None

    def wait(self, seconds: float) -> None:
        """Sleep, but wake when the server closes, so a stuck handler never outlives its test."""
        self.closing.wait(seconds)

    # --- the Worker -------------------------------------------------------------------------------

    def handle(self, h: SeedHandler, request: RecordedRequest) -> None:
        if request.method == "OPTIONS":
            h.reply(204, b"", None)
            return
        answer = self.take_scripted(request)
        if answer is not None and answer.delay:
            self.wait(answer.delay)
        self.route(h, request, answer)

    def route(self, h: SeedHandler, request: RecordedRequest, answer: Scripted | None) -> None:
        if request.path == "/" and request.method == "GET":
            normal = js_json(self.health())
            if answer is None:
                h.reply(200, normal)
            else:
                h.reply_scripted(answer, normal)
        elif request.path == "/api/chat" and request.method == "POST":
            self.chat(h, request, answer)
        elif answer is not None:
            h.reply_scripted(answer, b"Not Found")
        else:
            h.reply(404, b"Not Found", "text/plain;charset=UTF-8")

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "service": self.service, "timestamp": iso_now()}

    def chat(self, h: SeedHandler, request: RecordedRequest, answer: Scripted | None) -> None:
        # A scripted raw answer (a body of its own, a huge body, a drop) replaces the turn unless
        # ``process`` says the turn happens anyway; a scripted delay, status or truncation keeps it.
        processes = answer is None or answer.process or (
            answer.body is None and answer.size is None and not answer.drop)
        if answer is not None and not processes:
            h.reply_scripted(answer)
            return
        try:
            data = json.loads(request.body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            h.reply_json(500, {"error": "Internal server error"})
            return
        user = str(data.get("userId") or "default-user")
        message = data.get("message")
        with self._lock:
            history = self.conversations.setdefault(user, [])
            history.append({"role": "user", "content": message})
        model_error = answer.model_error if answer is not None else None
        if model_error is None and not isinstance(message, str):
            model_error = "5006: Error: oneOf at '/' not all constraints satisfied"
        if model_error is not None:
            # The seed's defect 2: the user's message stays stored after the model call failed.
            h.reply_json(500, {"error": "Failed to process message",
                               "details": f"AI request failed: {model_error}"})
            return
        with self._lock:
            reply = answer.reply if answer is not None and answer.reply is not None else (
                seed_reply(message, history))
            history.append({"role": "assistant", "content": reply})
            count = len(history)
        normal = js_json({"message": reply, "messageCount": count})
        if answer is None:
            h.reply(200, normal)
        else:
            h.reply_scripted(answer, normal)


def serve_main(server_class: type[SeedServer], argv: Iterable[str] | None = None,
               extra: Iterable[tuple[str, dict[str, Any]]] = ()) -> None:
    """Run ``server_class`` until killed, printing its URL on the first line of stdout."""
    parser = argparse.ArgumentParser(description=f"Serve a fake {server_class.__name__} on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    parser.add_argument("--prefix", default="", help="a path prefix, as a proxy in front of the Worker")
    for name, options in extra:
        parser.add_argument(name, **options)
    args = vars(parser.parse_args(list(argv) if argv is not None else None))
    server = server_class(**{k: v for k, v in args.items() if v is not None})
    server.start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    serve_main(SeedServer, sys.argv[1:])
