"""Running the real TUI in a pseudo-terminal, as a user's terminal would, and reading what it writes.

Used by the tests that must see the bytes that reach the terminal (escape sequences from a reply
must not be among them).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TUI_COMMAND = (
    "from edgechat_tui.config.settings import load_settings; from edgechat_tui.ui.app import run_tui; "
    "import sys; raise SystemExit(run_tui(load_settings(), sys.argv[1]))"
)


class PtyApp:
    """The TUI in a child process on a pty of ``size`` (columns, rows). Collects all it writes.

    The terminal claims true colour, so Textual's own colours are ``38;2;r;g;b``: a 256-colour
    sequence in the output can only have come from somewhere else.
    """

    def __init__(self, env: dict[str, str], user: str = "alice", size: tuple[int, int] = (100, 30), *,
                 cli: bool = False) -> None:
        self.output = bytearray()
        # ``cli``: start it as the ``edgechat`` command does (``python -m edgechat_tui --user USER``).
        argv = ([sys.executable, "-m", "edgechat_tui", "--user", user] if cli
                else [sys.executable, "-c", TUI_COMMAND, user])
        pid, fd = pty.fork()
        if pid == 0:  # the child: become the TUI
            try:
                os.execve(sys.executable, argv,
                          {**env, "TERM": "xterm-256color", "COLORTERM": "truecolor",
                           "COLUMNS": str(size[0]), "LINES": str(size[1])})
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))

    def read_until(self, marker: bytes, timeout: float = 20.0, *, start: int = 0) -> bool:
        """Read output until ``marker`` appears after offset ``start``; False on timeout or exit."""
        deadline = time.monotonic() + timeout
        while marker not in self.output[start:]:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                return marker in self.output[start:]
        return True

    def drain(self, seconds: float) -> None:
        """Keep reading for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and self._read(left):
            pass

    def _read(self, timeout: float) -> bool:
        readable, _, _ = select.select([self.fd], [], [], min(timeout, 0.1))
        if not readable:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # the child exited and the pty closed
            return False
        if not data:
            return False
        self.output += data
        return True

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> int | None:
        """Ask the app to quit (Ctrl+Q), then make sure the child is gone. Returns its exit status."""
        try:
            self.write(b"\x11")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    return os.waitstatus_to_exitcode(status)
                self.drain(0.05)
            os.kill(self.pid, signal.SIGKILL)
            _, status = os.waitpid(self.pid, 0)
            return os.waitstatus_to_exitcode(status)
        finally:
            os.close(self.fd)
