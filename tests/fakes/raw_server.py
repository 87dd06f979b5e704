"""A loopback TCP server that misbehaves below HTTP: for transport failures both backends must type alike.

Each connection gets the behaviour named by ``mode``; the request is read first (up to the end of
its headers and its declared body), then:

- ``silent``: nothing is answered (a read timeout);
- ``garbage``: bytes that are not HTTP (a remote protocol error);
- ``not-tls``: a plain HTTP answer sent at once, before any request (TLS to it fails);
- ``cut-body``: a 200 JSON answer that declares more bytes than it sends, then a reset;
- ``cut-stream``: an SSE answer with one piece of text (in the shape the path asks for), then a reset;
- ``stall-stream``: the same piece of text, then nothing;
- ``trickle``: an SSE answer that sends a keep-alive comment every ``interval`` seconds, forever;
  ``trickle-empty``: an empty text delta instead; ``trickle-bytes``: one byte of a line that never ends;
  ``trickle-error``: a 500 whose body comes one byte at a time, forever.

:func:`backlogged_port` gives a port whose accept queue is full, so a connection to it never
completes (a connect timeout on loopback).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator


def _reset(conn: socket.socket) -> None:
    """Close with a RST, not a FIN: the peer sees the connection reset."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


def _piece(path: bytes) -> bytes:
    """One SSE event with text, as Workers AI or an agent endpoint writes it."""
    if b"/api/chat" in path:
        return b'event: delta\ndata: {"text": "Hello"}\n\n'
    return b'data: {"response": "Hello"}\n\n'


def _chunk(data: bytes) -> bytes:
    return f"{len(data):X}\r\n".encode() + data + b"\r\n"


_SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
             b"Cache-Control: no-cache\r\n\r\n")


class RawServer:
    """``with RawServer("silent") as server: server.url``. Connections are served in threads."""

    def __init__(self, mode: str, *, interval: float = 0.05) -> None:
        self.requests = 0
        self.health_checks = 0  # of them, ``GET /`` (a remote client's health check before it sends)
        self.mode = mode
        self.interval = interval
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            if self.mode == "not-tls":  # answers before reading: a TLS hello gets plain text back
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                self._stop.wait()
                return
            head = _read_request(conn)
            path = head.split(b"\r\n", 1)[0]
            self.requests += 1
            if path.startswith(b"GET / "):
                self.health_checks += 1
            if self.mode == "silent":
                self._stop.wait()
            elif self.mode == "garbage":
                conn.sendall(b"THIS IS NOT HTTP AT ALL\r\n\r\n")
                _reset(conn)
            elif self.mode == "cut-body":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 1000\r\n\r\n"
                             b'{"message": "Hel')
                time.sleep(0.05)
                _reset(conn)
            elif self.mode in ("cut-stream", "stall-stream"):
                conn.sendall(_SSE_HEAD + _chunk(_piece(path)))
                time.sleep(0.05)
                if self.mode == "cut-stream":
                    _reset(conn)
                else:
                    self._stop.wait()
            elif self.mode.startswith("trickle"):
                if self.mode == "trickle-error":
                    conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n")
                else:
                    conn.sendall(_SSE_HEAD)
                if self.mode == "trickle-empty":
                    piece = (b'event: delta\ndata: {"text": ""}\n\n' if b"/api/chat" in path
                             else b'data: {"response": ""}\n\n')
                elif self.mode == "trickle-bytes":
                    conn.sendall(_chunk(b"data: "))
                    piece = b"x"
                elif self.mode == "trickle-error":
                    piece = b"e"
                else:
                    piece = b": keep-alive\n"
                while not self._stop.wait(self.interval):
                    conn.sendall(_chunk(piece))
        except OSError:
            pass


@contextlib.contextmanager
def backlogged_port() -> Iterator[int]:
    """A listening port whose accept queue is full: a new connection to it never completes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(16):  # fill the queue until a connection no longer completes: then it is full
        filler = socket.socket()
        filler.settimeout(0.2)
        try:
            filler.connect(("127.0.0.1", port))
        except OSError:
            filler.close()
            break
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
