"""Run a program in a real pseudo-terminal and keep every byte it writes, as a terminal would get them.

For the TUI tests: the bytes are what a user's terminal would act on, so escape sequences from a
model or a server are looked for there, not in a widget's text. The program gets its own session
(a controlling terminal of its own), a window size, and ``TERM``.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Sequence
from pathlib import Path


class PtyProcess:
    """A process on the slave side of a new pty; ``output`` is everything it has written so far."""

    def __init__(self, args: Sequence[str], env: dict[str, str], *, cols: int = 110, rows: int = 32,
                 cwd: Path | None = None) -> None:
        self.args = list(args)
        self._buffer = bytearray()
        self._changed = threading.Condition()
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(env, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
        self.proc = subprocess.Popen(self.args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self._master = master
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    _hung_up = False

    def _read(self) -> None:
        while not self._hung_up:
            try:
                ready, _, _ = select.select([self._master], [], [], 0.1)
                if not ready:
                    if self.proc.poll() is not None:
                        # Drain what is left, then stop.
                        ready, _, _ = select.select([self._master], [], [], 0.2)
                        if not ready:
                            break
                    continue
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: the slave side closed
                break
            if not chunk:
                break
            with self._changed:
                self._buffer.extend(chunk)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    # --- reading ---

    @property
    def output(self) -> bytes:
        with self._changed:
            return bytes(self._buffer)

    @property
    def offset(self) -> int:
        with self._changed:
            return len(self._buffer)

    def wait_for(self, pattern: bytes | re.Pattern[bytes], *, after: int = 0, timeout: float = 30.0) -> int:
        """Wait until ``pattern`` appears at or after byte ``after``; return the offset just past it."""
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                match = regex.search(self._buffer, after)
                if match:
                    return match.end()
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    tail = bytes(self._buffer[-600:])
                    raise TimeoutError(f"{regex.pattern!r} did not appear (exit {self.proc.poll()}); "
                                       f"the last bytes: {tail!r}")
                self._changed.wait(min(left, 0.1))

    # --- writing and ending ---

    def send(self, data: bytes | str) -> None:
        os.write(self._master, data.encode("utf-8") if isinstance(data, str) else data)

    def kill(self) -> int:
        """SIGKILL, as a crash or an OOM killer would; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(30)

    def hang_up(self) -> None:
        """Close the terminal's master side, as a terminal window closing does: the child's reads
        and writes on it fail from now on."""
        self._hung_up = True
        self._reader.join(5)
        try:
            os.close(self._master)
        except OSError:
            pass
        self._master = -1

    def close(self, quit_keys: bytes | None = b"\x11", timeout: float = 15.0) -> int:
        """Quit with ``quit_keys`` (Ctrl+Q) and wait; kill if it does not go. Returns the exit status."""
        if self.proc.poll() is None and quit_keys:
            try:
                self.send(quit_keys)
                self.proc.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                pass
        code = self.kill()
        self._reader.join(5)
        if self._master >= 0:
            try:
                os.close(self._master)
            except OSError:
                pass
        return code

    def __enter__(self) -> PtyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(quit_keys=None)
