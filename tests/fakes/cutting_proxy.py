"""A loopback TCP proxy that cuts connections at random byte offsets, in either direction.

Each accepted connection is given a fate by the proxy's random generator: left alone, or cut
after ``n`` bytes of the client's requests (client to server), or after ``n`` bytes of the
server's answers (server to client), ``n`` drawn uniformly up to a bound. A cut forwards exactly
the first ``n`` bytes of that direction, then aborts both sockets (a reset, as a network failure
would look), so the server too sees the client go. Connections kept alive carry several requests:
the offset counts across them, so a cut may land in any request or answer of the connection.

It runs in the caller's event loop (``async with CuttingProxy(...)``) and counts what it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass


@dataclass
class CutCounts:
    connections: int = 0
    cut_requests: int = 0  # cut in the client-to-server direction
    cut_answers: int = 0  # cut in the server-to-client direction


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to ``upstream`` (host, port), cutting a share of the connections."""

    def __init__(self, upstream: tuple[str, int], *, seed: int, cut_share: float = 0.5,
                 max_request_offset: int = 700, max_answer_offset: int = 1500) -> None:
        self.upstream = upstream
        self.rng = random.Random(seed)
        self.cut_share = cut_share
        self.max_request_offset = max_request_offset
        self.max_answer_offset = max_answer_offset
        self.counts = CutCounts()
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self.port = 0

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(BaseException):
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.counts.connections += 1
        roll = self.rng.random()
        request_cut = answer_cut = None
        if roll < self.cut_share / 2:
            request_cut = self.rng.randint(0, self.max_request_offset)
        elif roll < self.cut_share:
            answer_cut = self.rng.randint(0, self.max_answer_offset)
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.transport.abort()
            self._tasks.discard(task)
            return
        cut = asyncio.Event()

        def abort_both() -> None:
            if not cut.is_set():
                cut.set()
                client_writer.transport.abort()
                server_writer.transport.abort()

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int | None,
                       direction: str) -> None:
            sent = 0
            try:
                while True:
                    chunk = await reader.read(65536)
                    if not chunk:
                        break
                    if limit is not None and sent + len(chunk) >= limit:
                        writer.write(chunk[:limit - sent])
                        with contextlib.suppress(ConnectionError):
                            await writer.drain()
                        if direction == "request":
                            self.counts.cut_requests += 1
                        else:
                            self.counts.cut_answers += 1
                        abort_both()
                        return
                    sent += len(chunk)
                    writer.write(chunk)
                    await writer.drain()
                with contextlib.suppress(OSError):
                    writer.write_eof()
            except (ConnectionError, OSError):
                abort_both()

        try:
            await asyncio.gather(pipe(client_reader, server_writer, request_cut, "request"),
                                 pipe(server_reader, client_writer, answer_cut, "answer"))
        finally:
            for writer in (client_writer, server_writer):
                writer.transport.abort()
            self._tasks.discard(task)


__all__ = ["CutCounts", "CuttingProxy"]
