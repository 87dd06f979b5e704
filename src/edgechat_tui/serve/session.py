"""One browser tab's app process, and the protocol between it and the server.

The app runs with Textual's web driver (``TEXTUAL_DRIVER=textual.drivers.web_driver:WebDriver``),
which speaks this on its standard streams (the same protocol textual-serve's server speaks; this is
our own implementation of it, so that the process is started without a shell, in its own session,
and stopped within a bounded time):

- stdout: a prelude of text lines ending with ``__GANGLION__\\n``, then packets ``TYPE`` (one
  byte) + payload length (4 bytes, big-endian) + payload: ``D`` terminal output (forwarded to
  the browser as it is), ``M`` a JSON object (``{"type": "exit"}`` when the app has quit), ``P``
  binary-encoded file deliveries (edgechat makes none; ignored).
- stdin: packets in the same framing: ``D`` keys and pastes from the browser, ``M`` a JSON object
  (``resize`` with width and height, ``focus``, ``blur``).

Stopping: SIGTERM, which the app process (``serve/child.py``) handles as Ctrl+Q (a streaming
reply is stopped and saved, marked stopped); after ``timeout`` seconds, SIGKILL to its process
group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence

from edgechat_tui.core.sanitize import sanitize

PRELUDE = b"__GANGLION__\n"
#: Lines an app may print before the prelude (warnings, say) before it is taken as broken.
MAX_PRELUDE_LINES = 50
#: A packet larger than this from the app process is a protocol error.
MAX_PACKET = 32 * 1024 * 1024
MIN_SIZE, MAX_SIZE = 10, 1000


def clamp_size(value: object, default: int) -> int:
    """A terminal dimension from the browser, made a sane integer."""
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return default
    return max(MIN_SIZE, min(MAX_SIZE, number))


def packet(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


class AppSession:
    """The app process of one websocket: ``send_bytes`` forwards its screen, ``on_exit`` runs once it ends."""

    def __init__(self, number: int, argv: Sequence[str], env: Mapping[str, str], *,
                 send_bytes: Callable[[bytes], Awaitable[None]],
                 on_exit: Callable[[], Awaitable[None]],
                 log: Callable[[str], None]) -> None:
        self.number = number
        self.argv = list(argv)
        self.env = dict(env)
        self._send_bytes = send_bytes
        self._on_exit = on_exit
        self._log = log
        self.process: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        #: Set when the app said it has quit (Ctrl+Q in the tab, /quit): it is on its way out.
        self.app_quit = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, width: int, height: int) -> None:
        env = self.env | {"COLUMNS": str(width), "ROWS": str(height), "LINES": str(height)}
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=env,
            # Its own session: Ctrl+C in serve's terminal reaches serve only, which stops each app
            # in turn; and the app has no controlling terminal to read from.
            start_new_session=True,
        )
        self._tasks = [asyncio.create_task(self._pump_stdout()), asyncio.create_task(self._pump_stderr())]

    # --- browser → app ------------------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        process = self.process
        if process is None or process.stdin is None or process.returncode is not None or self._stopping:
            return
        try:
            process.stdin.write(data)
            await process.stdin.drain()
        except (ConnectionError, RuntimeError, OSError):
            pass  # the app is going away; its exit ends the session

    async def send_input(self, text: str) -> None:
        await self._write(packet(b"D", text.encode("utf-8", "replace")))

    async def send_meta(self, meta: dict[str, object]) -> None:
        await self._write(packet(b"M", json.dumps(meta).encode("utf-8")))

    async def resize(self, width: int, height: int) -> None:
        await self.send_meta({"type": "resize", "width": width, "height": height})

    # --- app → browser ------------------------------------------------------------------------

    async def _pump_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        try:
            for _ in range(MAX_PRELUDE_LINES):
                line = await stdout.readline()
                if not line or line == PRELUDE:
                    break
                self._log(f"session {self.number}: {sanitize(line.decode('utf-8', 'replace')).rstrip()}")
            else:
                self._log(f"session {self.number}: the app process did not start the web protocol")
                return
            while True:
                header = await stdout.readexactly(5)
                size = int.from_bytes(header[1:], "big")
                if size > MAX_PACKET:
                    self._log(f"session {self.number}: protocol error (a packet of {size} bytes)")
                    return
                payload = await stdout.readexactly(size)
                kind = header[:1]
                if kind == b"D":
                    await self._send_bytes(payload)
                elif kind == b"M":
                    with contextlib.suppress(ValueError):
                        meta = json.loads(payload)
                        if isinstance(meta, dict) and meta.get("type") == "exit":
                            self.app_quit.set()
                            return
                # b"P" (file deliveries) and anything else: edgechat makes none; links stay text too.
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception as error:  # the browser went away mid-send, say: end this session only
            self._log(f"session {self.number}: {sanitize(type(error).__name__)}")
        finally:
            with contextlib.suppress(Exception):
                await self._on_exit()

    async def _pump_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        stderr = self.process.stderr
        with contextlib.suppress(asyncio.CancelledError, ValueError, ConnectionError):
            while line := await stderr.readline():
                text = sanitize(line.decode("utf-8", "replace")).rstrip()
                if text:
                    self._log(f"session {self.number}: {text[:500]}")

    # --- the end ------------------------------------------------------------------------------

    async def stop(self, timeout: float) -> int | None:
        """End the app as Ctrl+Q does (SIGTERM), wait at most ``timeout`` s, then kill it. Its exit status."""
        process = self.process
        if process is None:
            return None
        self._stopping = True
        if process.returncode is None and self.app_quit.is_set():
            # It quit by itself (Ctrl+Q in the tab) and is finishing: let it, rather than signal it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), timeout)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                self._log(f"session {self.number}: the app did not quit within {timeout:g} s: killed")
                self.kill()
                await process.wait()
        with contextlib.suppress(Exception):
            if process.stdin is not None:
                process.stdin.close()
        for task in self._tasks:
            if not task.done():
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return process.returncode

    def kill(self) -> None:
        """SIGKILL the app and anything it started (its process group)."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
