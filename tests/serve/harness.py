"""Running ``edgechat serve`` as a real process on loopback, and talking to it as a browser would.

``ServeProcess`` starts ``python -m edgechat_tui serve --port 0 ...`` with an environment pointing
at a ``FakeWorkersAI``, reads the URL it prints, collects its stderr, lists its app processes from
/proc, and stops it with a signal. ``WsSession`` is one tab's websocket (aiohttp's client),
speaking the browser client's protocol and keeping every byte of screen it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.fakes.workers_ai import FakeWorkersAI

ROOT = Path(__file__).resolve().parents[2]
URL_LINE = re.compile(r"open (http://\S+) in a browser")


def serve_env(tmp_path: Path, fake: FakeWorkersAI | None) -> dict[str, str]:
    """An environment of its own (config file, data dir) with the fake's credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGECHAT_", "CLOUDFLARE_", "TEXTUAL"))}
    env |= {
        "EDGECHAT_CONFIG": str(tmp_path / "config" / "config.toml"),
        "EDGECHAT_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
    }
    if fake is not None:
        env |= {"CLOUDFLARE_ACCOUNT_ID": fake.account_id, "CLOUDFLARE_API_TOKEN": fake.token,
                "EDGECHAT_API_BASE": fake.api_base}
    return env


class ServeProcess:
    def __init__(self, env: dict[str, str], *args: str, startup_timeout: float = 30.0) -> None:
        self.argv = [sys.executable, "-m", "edgechat_tui", "serve", "--port", "0", *args]
        self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env, text=True)
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._threads = [threading.Thread(target=self._collect, args=(self.process.stderr, self.stderr_lines),
                                          daemon=True)]
        self._threads[0].start()
        self.url = self._read_url(startup_timeout)
        self._threads.append(threading.Thread(target=self._collect,
                                              args=(self.process.stdout, self.stdout_lines), daemon=True))
        self._threads[1].start()
        match = re.match(r"http://([^/]+)/", self.url)
        assert match
        self.netloc = match.group(1)
        self.base = f"http://{self.netloc}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read_url(self, timeout: float) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.stdout_lines.append(line)
            if match := URL_LINE.search(line):
                return match.group(1)
        self.process.kill()
        self.process.wait()
        raise AssertionError(f"serve did not print its URL: {self.stdout_lines} {self.stderr_text()}")

    @staticmethod
    def _collect(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def stderr_text(self) -> str:
        return "".join(self.stderr_lines)

    def output(self) -> str:
        return "".join(self.stdout_lines) + self.stderr_text()

    def children(self) -> list[int]:
        """The pids of the processes whose parent is serve (its app processes)."""
        return child_pids(self.pid)

    def wait_for(self, predicate: Any, timeout: float = 20.0, what: str = "the condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; serve said:\n{self.stderr_text()}")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            for thread in self._threads:
                thread.join(5)

    def kill(self) -> None:
        if self.process.poll() is None:
            for pid in self.children():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait()


def child_pids(parent: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == parent and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")


class WsSession:
    """One tab's websocket: sends keys and sizes as textual.js does, keeps the screen bytes received."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http = http
        self.ws = ws
        self.screen = bytearray()
        self.closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, base: str, *, width: int = 100, height: int = 30,
                   headers: dict[str, str] | None = None, cookies: dict[str, str] | None = None) -> WsSession:
        http = aiohttp.ClientSession(cookies=cookies)
        try:
            ws = await http.ws_connect(f"{base.replace('http:', 'ws:')}/ws?width={width}&height={height}",
                                       headers=headers or {})
        except BaseException:
            await http.close()
            raise
        session = cls(http, ws)
        await ws.send_str(json.dumps(["resize", {"width": width, "height": height}]))
        return session

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    self.screen += message.data
        finally:
            self.closed.set()

    async def focus(self) -> None:
        """What the page sends when its terminal gets focus (the app starts blurred, keys go nowhere)."""
        await self.ws.send_str(json.dumps(["focus"]))

    async def type(self, text: str) -> None:
        await self.ws.send_str(json.dumps(["stdin", text]))

    async def wait_for(self, needle: bytes, timeout: float = 20.0, *, start: int = 0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while needle not in self.screen[start:]:
            if asyncio.get_running_loop().time() > deadline:
                tail = bytes(self.screen[-1500:])
                raise AssertionError(f"timed out waiting for {needle!r} on the screen; last bytes: {tail!r}")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await self.http.close()
