"""Start-up: from process start to the chat screen drawn in a real pseudo-terminal.

Run alone: ``python bench/bench_startup.py [--runs N]``.

Each run forks a child on a new pty (100x30, TERM=xterm-256color) and reads what it writes, as a
terminal would. The clock starts just before the fork and stops when the chat input's placeholder
(``essage edgechat``: the cursor sits on the M) appears in the output: the first frame of the chat screen.

* edgechat: ``python -m edgechat_tui --user alice``, exactly what the ``edgechat`` command runs,
  with an empty history and the credentials of a loopback fake (start-up makes no network call).
  Also timed: until the status line says ``ready`` (the agent created and the history shown).
* baseline: a minimal Textual app (Header, a VerticalScroll, an Input with the same placeholder,
  Footer) started the same way, measured in the same run, runs interleaved.

Both start from cached bytecode (in a temporary PYTHONPYCACHEPREFIX, filled by a first round that
is not counted), as an installed package does.

Prints medians (and min/max) and the ratio; the goal is edgechat within 1.3x of the baseline.
The pty helpers here are shared by bench_history.py and bench_stream_e2e.py.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pty
import select
import signal
import statistics
import struct
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.fakes.workers_ai import FakeWorkersAI  # noqa: E402 - needs the path above

COLUMNS, ROWS = 100, 30
# The placeholder of the chat input, less its first letter: the cursor sits on that one and
# splits it from the rest with its own style.
FIRST_FRAME = b"essage edgechat"
READY = b"ready"

BASELINE_APP = """
from textual.app import App
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Input


class Minimal(App):
    def compose(self):
        yield Header()
        yield VerticalScroll()
        yield Input(placeholder="Message edgechat... Enter sends")
        yield Footer()


Minimal().run()
"""


class PtyChild:
    """A child process on its own pseudo-terminal; everything it writes is kept in ``output``."""

    def __init__(self, argv: list[str], env: dict[str, str], size: tuple[int, int] = (COLUMNS, ROWS)) -> None:
        self.output = bytearray()
        self.started = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        #: perf_counter() of the read that first held each marker waited for.
        self.seen: dict[bytes, float] = {}

    def wait_for(self, marker: bytes, timeout: float = 30.0, start: int = 0) -> float:
        """Seconds from the fork until ``marker`` appears in the output (after offset ``start``)."""
        deadline = time.perf_counter() + timeout
        while marker not in self.output[start:]:
            left = deadline - time.perf_counter()
            if left <= 0:
                tail = bytes(self.output[-400:])
                raise TimeoutError(f"{marker!r} did not appear within {timeout} s; last output: {tail!r}")
            self.read(left)
        return time.perf_counter() - self.started

    def read(self, timeout: float) -> int:
        """Read what is available (waiting up to ``timeout``); returns the number of bytes read."""
        readable, _, _ = select.select([self.fd], [], [], timeout)
        if not readable:
            return 0
        try:
            data = os.read(self.fd, 1 << 16)
        except OSError:
            raise EOFError("the child closed its terminal") from None
        if not data:
            raise EOFError("the child closed its terminal")
        self.output += data
        return len(data)

    def drain(self, seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        while (left := deadline - time.perf_counter()) > 0:
            with contextlib.suppress(EOFError):
                self.read(left)

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def rss_kib(self) -> int:
        """Resident memory of the child, in KiB (Linux)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        """Ctrl+Q, then SIGKILL if it has not gone within 3 s."""
        try:
            with contextlib.suppress(OSError):
                self.write(b"\x11")
            deadline = time.perf_counter() + 3
            while time.perf_counter() < deadline:
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    return
                with contextlib.suppress(EOFError, OSError):
                    self.read(0.05)
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        finally:
            with contextlib.suppress(OSError):
                os.close(self.fd)


# Bytecode for every child goes here, so that all runs after the first start from compiled
# modules as an installed package does (this machine may set PYTHONDONTWRITEBYTECODE).
PYCACHE = Path(tempfile.gettempdir()) / "edgechat-bench-pycache"


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EDGECHAT_", "CLOUDFLARE_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env |= {"TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(ROWS),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
            "PYTHONPYCACHEPREFIX": str(PYCACHE)}
    return env


@contextlib.contextmanager
def edgechat_env(data_dir: Path | None = None) -> Iterator[tuple[dict[str, str], FakeWorkersAI]]:
    """An environment for ``edgechat``: a loopback fake's credentials, a private config and data dir."""
    with FakeWorkersAI() as fake, tempfile.TemporaryDirectory(prefix="edgechat-bench-") as tmp:
        env = base_env() | {
            "EDGECHAT_API_BASE": fake.api_base,
            "CLOUDFLARE_ACCOUNT_ID": fake.account_id,
            "CLOUDFLARE_API_TOKEN": fake.token,
            "EDGECHAT_CONFIG": str(Path(tmp) / "config.toml"),
            "EDGECHAT_DATA_DIR": str(data_dir or Path(tmp) / "data"),
        }
        yield env, fake


def edgechat_argv(user: str = "alice") -> list[str]:
    return [sys.executable, "-m", "edgechat_tui", "--user", user]


def baseline_argv() -> list[str]:
    return [sys.executable, "-c", BASELINE_APP]


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of ``values`` fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"median {statistics.median(ms):7.1f} ms   (min {min(ms):6.1f}, max {max(ms):6.1f}, n={len(ms)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()

    ours: list[float] = []
    ours_ready: list[float] = []
    baseline: list[float] = []
    with edgechat_env() as (env, _fake):
        for run in range(args.runs + 1):  # the first round warms the file cache and is dropped
            child = PtyChild(baseline_argv(), base_env())
            try:
                first = child.wait_for(FIRST_FRAME)
            finally:
                child.stop()
            child = PtyChild(edgechat_argv(), env)
            try:
                frame = child.wait_for(FIRST_FRAME)
                ready = child.wait_for(READY)
            finally:
                child.stop()
            if run:
                baseline.append(first)
                ours.append(frame)
                ours_ready.append(ready)

    ratio = statistics.median(ours) / statistics.median(baseline)
    print(f"First frame in a {COLUMNS}x{ROWS} pty, process start to the chat screen drawn:")
    print(f"  baseline (Header, VerticalScroll, Input, Footer): {summary(baseline)}")
    print(f"  edgechat  (python -m edgechat_tui):               {summary(ours)}")
    print(f"  ratio edgechat / baseline: {ratio:.2f}x   (goal: within 1.3x)")
    print(f"  edgechat until 'ready' (agent created, history shown): {summary(ours_ready)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
