"""What every fault test needs: an isolated workspace, edgechat run as a user runs it, and the checks.

- :class:`Workspace`: a config file and data dir of their own, and the environment that points
  edgechat at them and at a loopback fake, with the suite's distinctive tokens.
- :func:`run_edgechat`: ``python -m edgechat_tui ARGS`` in a fresh process; every byte it writes is
  searched for the tokens on the spot, and the count goes into the figures.
- :func:`terminal_hazards`: what in a byte string could drive a terminal (escape sequences, C0/C1
  controls) rather than be shown.
- :func:`unclear_reasons`: why an error a user meets is not clear (untyped, empty, a traceback, HTML,
  control characters, a token, too long).
- :func:`audit_turns`: turns lost, duplicated or split in a loaded history.
- :func:`tmpfs` and :func:`read_only`: real file-system faults (ENOSPC, EROFS), by mounting when the
  suite runs as root (as CI does) and by permissions otherwise.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.core.messages import Message
from edgechat_tui.storage.library import Library
from tests.reliability.figures import FIGURES

ROOT = Path(__file__).resolve().parents[2]
#: The Cloudflare API token of every run in this suite: distinctive, so a leak is found by search.
TOKEN = "tok-RELIABILITY-3f9c2a7e51d8-SECRET"
#: The remote agent's bearer token, likewise.
REMOTE_TOKEN = "rtok-RELIABILITY-b64d0e92c7a1-SECRET"
#: Cloudflare Access credentials (issue 12): a service token's secret, and a user's Access token as
#: access_token_command prints it (a JWT-shaped string).
ACCESS_CLIENT_SECRET = "acs-RELIABILITY-9e1d27c04b3f-SECRET"
ACCESS_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.atok-Zq7wX3vKp2Lm9Nc4-usrJWTsig"
SECRETS = (TOKEN, REMOTE_TOKEN, ACCESS_CLIENT_SECRET, ACCESS_TOKEN)
_NAMED_SECRETS = (("TOKEN", TOKEN), ("REMOTE_TOKEN", REMOTE_TOKEN),
                  ("ACCESS_CLIENT_SECRET", ACCESS_CLIENT_SECRET), ("ACCESS_TOKEN", ACCESS_TOKEN),
                  ("ACCESS_TOKEN signature", ACCESS_TOKEN.rsplit(".", 1)[1]))
ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN_CLASS = "security: tokens in outputs and files"
TOKEN_COMMAND = "pytest tests/reliability  (every edgechat run and data dir is searched)"


class Unavailable(Exception):
    """A fault that cannot be made on this machine (no mount rights): the case is skipped, and says so."""


# --- the workspace --------------------------------------------------------------------------------


def clean_environ() -> dict[str, str]:
    """This process's environment without any edgechat or Cloudflare setting of the person running it."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("EDGECHAT_", "CLOUDFLARE_"))}


@dataclass
class Workspace:
    """A config file and a data dir of their own under ``root``."""

    root: Path

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def config_path(self) -> Path:
        return self.root / "config" / "config.toml"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def env(self, **extra: str) -> dict[str, str]:
        env = clean_environ()
        # The repository root first (for tests.fakes), then whatever the caller had (a checkout's src).
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env.update(EDGECHAT_CONFIG=str(self.config_path), EDGECHAT_DATA_DIR=str(self.data_dir),
                   PYTHONPATH=path, PYTHONDONTWRITEBYTECODE="1")
        env.update(extra)
        return env

    def local_env(self, api_base: str, **extra: str) -> dict[str, str]:
        """Local mode against a fake Workers AI at ``api_base``, with :data:`TOKEN`."""
        return self.env(CLOUDFLARE_ACCOUNT_ID=ACCOUNT, CLOUDFLARE_API_TOKEN=TOKEN, EDGECHAT_API_BASE=api_base,
                        **extra)

    def remote_env(self, url: str, *, token: str | None = REMOTE_TOKEN, **extra: str) -> dict[str, str]:
        """Remote mode at ``url``; the Cloudflare token is set too (it must not show)."""
        env = self.env(EDGECHAT_REMOTE_URL=url, CLOUDFLARE_ACCOUNT_ID=ACCOUNT, CLOUDFLARE_API_TOKEN=TOKEN,
                       **extra)
        if token:
            env["EDGECHAT_REMOTE_TOKEN"] = token
        return env


# --- running edgechat -----------------------------------------------------------------------------


@dataclass
class Run:
    """One finished ``edgechat`` process: its arguments, exit code and the exact bytes it wrote."""

    args: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float = 0.0

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("edgechat: error:")]

    def __str__(self) -> str:
        return f"edgechat {' '.join(self.args)[:120]} -> {self.returncode}\nstdout: {self.out[-800:]}\n" \
               f"stderr: {self.err[-1500:]}"


def secrets_in(data: bytes | str) -> list[str]:
    """Which of the suite's tokens ``data`` holds (whole)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return [name for name, secret in _NAMED_SECRETS if secret in text]


def check_output_for_secrets(where: str, *outputs: bytes) -> None:
    """Count ``outputs`` in the token figures and fail at once if any holds a token."""
    leaks = [f"{where}: {name}" for data in outputs for name in secrets_in(data)]
    FIGURES.add(TOKEN_CLASS, command=TOKEN_COMMAND, tried=len(outputs), lost=len(leaks),
                note=leaks[0] if leaks else None)
    assert not leaks, f"a token reached the output: {leaks}"


def edgechat_command(args: Iterable[str]) -> list[str]:
    return [sys.executable, "-m", "edgechat_tui", *args]


def run_edgechat(args: list[str], env: dict[str, str], *, input: bytes | str = b"", timeout: float = 90.0,
                 cwd: Path | None = None) -> Run:
    """Run ``edgechat ARGS`` as a user would (stdin not a terminal), and check its output for tokens."""
    data = input.encode("utf-8") if isinstance(input, str) else input
    started = time.monotonic()
    proc = subprocess.run(edgechat_command(args), input=data, env=env, capture_output=True, timeout=timeout,
                          cwd=cwd)
    run = Run(list(args), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
    check_output_for_secrets(f"edgechat {' '.join(args)[:60]}", run.stdout, run.stderr)
    return run


def scan_tree_for_secrets(root: Path, *, allowed: Callable[[Path], bool] = lambda _p: False) -> list[str]:
    """Every file under ``root`` that holds a token (except those ``allowed``), counted in the figures."""
    leaks: list[str] = []
    scanned = 0
    if root.exists():
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.is_symlink() or allowed(path):
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            scanned += 1
            leaks.extend(f"{path}: {name}" for name in secrets_in(data))
    FIGURES.add(TOKEN_CLASS, command=TOKEN_COMMAND, tried=scanned, lost=len(leaks),
                note=leaks[0] if leaks else None)
    return leaks


def free_port() -> int:
    """A loopback port nobody listens on (bound, then closed): connections to it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- what a terminal must never receive -----------------------------------------------------------


def terminal_hazards(data: bytes) -> list[str]:
    """What in ``data`` a terminal would act on instead of showing: C0 controls but newline and tab
    (ESC, BEL, CR, backspace...), DEL, C1 controls (U+0080-U+009F, which some terminals take as
    CSI/OSC), and bytes that are not UTF-8 (a terminal may read them as C1 controls)."""
    hazards: list[str] = []
    for index, byte in enumerate(data):
        if (byte < 0x20 and byte not in (0x09, 0x0A)) or byte == 0x7F:
            hazards.append(f"byte 0x{byte:02x} at {index}")
            if len(hazards) > 5:
                return hazards
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        hazards.append(f"not UTF-8 at byte {exc.start}")
        return hazards
    hazards.extend(f"C1 control U+{ord(ch):04X}" for ch in text if 0x80 <= ord(ch) <= 0x9F)
    return hazards[:6]


# --- errors a user can act on ---------------------------------------------------------------------

_MAX_MESSAGE = 600


def unclear_reasons(error: BaseException | None, expected: tuple[type[BaseException], ...] = (),
                    words: Iterable[str] = ()) -> list[str]:
    """Why ``error`` is not a clear, typed error (empty when it is).

    Clear means: an EdgechatError (of one of the ``expected`` types, when given), a message that is one
    short line of plain text saying what happened (it contains each of ``words``, case-insensitive),
    with no traceback, no HTML, no control characters and no token.
    """
    if error is None:
        return ["no error was raised"]
    if not isinstance(error, EdgechatError):
        return [f"untyped: {type(error).__name__}: {str(error)[:120]}"]
    reasons = []
    if expected and not isinstance(error, expected):
        reasons.append(f"{type(error).__name__}, expected {'/'.join(t.__name__ for t in expected)}")
    text = error.message + (f" ({error.hint})" if error.hint else "")
    if not error.message.strip():
        reasons.append("empty message")
    if "\n" in error.message:
        reasons.append("message spans several lines")
    if len(text) > _MAX_MESSAGE:
        reasons.append(f"message of {len(text)} characters")
    lowered = text.lower()
    if "traceback" in lowered:
        reasons.append("a traceback in the message")
    if any(tag in lowered for tag in ("<html", "<!doctype", "<body", "</", "<title")):
        reasons.append("HTML in the message")
    if terminal_hazards(text.encode("utf-8", "surrogatepass")):
        reasons.append("control characters in the message")
    if secrets_in(text) or secrets_in(repr(error)):
        reasons.append("a token in the message")
    reasons.extend(f"does not say {word!r}" for word in words if word.lower() not in lowered)
    return reasons


def cli_unclear_reasons(run: Run, *, exit_code: int | tuple[int, ...] = 1,
                        words: Iterable[str] = ()) -> list[str]:
    """Why a failed run's error is not one clear line with the right exit code (empty when it is)."""
    codes = exit_code if isinstance(exit_code, tuple) else (exit_code,)
    reasons = []
    if run.returncode not in codes:
        reasons.append(f"exit {run.returncode}, expected {codes}")
    errors = run.error_lines()
    if len(errors) != 1:
        reasons.append(f"{len(errors)} 'edgechat: error:' lines")
    if "Traceback" in run.err:
        reasons.append("a traceback on stderr")
    hazards = terminal_hazards(run.stderr)
    if hazards:
        reasons.append(f"stderr could drive the terminal: {hazards[:2]}")
    if secrets_in(run.stderr + run.stdout):
        reasons.append("a token on stdout/stderr")
    text = " ".join(errors).lower()
    if any(tag in text for tag in ("<html", "<!doctype", "<body", "</")):
        reasons.append("HTML in the error")
    if len(text) > _MAX_MESSAGE:
        reasons.append(f"an error line of {len(text)} characters")
    reasons.extend(f"does not say {word!r}" for word in words if word.lower() not in run.err.lower())
    return reasons


# --- histories ------------------------------------------------------------------------------------


def read_history(data_dir: Path, user: str) -> tuple[list[Message], list[str]]:
    """Load ``user``'s most recent conversation as edgechat does (migrating and repairing as it does);
    the warnings it gave."""
    warnings: list[str] = []
    library = Library(data_dir, user, warn=warnings.append)
    try:
        recent = library.most_recent()
        messages = library.state(recent.id)[0].messages() if recent is not None else []
    finally:
        library.close()
    return messages, warnings


@dataclass
class Audit:
    """What a history holds of the turns a run reported complete."""

    turns: list[str] = field(default_factory=list)  # turn ids on disk, in order
    lost: list[str] = field(default_factory=list)  # reported complete, not on disk
    duplicated: list[str] = field(default_factory=list)  # on disk more than once
    split: list[str] = field(default_factory=list)  # a message not in a user/reply pair, or a wrong reply

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.split)

    def __str__(self) -> str:
        return f"lost {self.lost[:5]}, duplicated {self.duplicated[:5]}, split {self.split[:5]}"


def audit_turns(messages: list[Message], reported: Iterable[str],
                reply_ok: Callable[[str, Message], bool] | None = None) -> Audit:
    """Check ``messages`` against the turn ids (each turn's user text) a run ``reported`` complete.

    Every message must sit in a user/reply pair (user at even positions, its reply right after it,
    ``reply_ok`` when given); every reported turn must be there exactly once; no turn twice.
    """
    audit = Audit()
    for index in range(0, len(messages), 2):
        user = messages[index]
        reply = messages[index + 1] if index + 1 < len(messages) else None
        if user.role != "user":
            audit.split.append(f"message {index} is a {user.role} message where a user message belongs")
            continue
        audit.turns.append(user.content)
        if reply is None or reply.role != "assistant":
            audit.split.append(f"turn {user.content!r} has no reply right after it")
        elif reply_ok is not None and not reply_ok(user.content, reply):
            audit.split.append(f"turn {user.content!r} is followed by another turn's reply")
    counts = Counter(audit.turns)
    audit.duplicated = sorted(turn for turn, n in counts.items() if n > 1)
    audit.lost = sorted(turn for turn in set(reported) if counts[turn] == 0)
    return audit


def echo_reply_ok(turn: str, reply: Message) -> bool:
    """The fake Workers AI's echo answers "You said: <the message>..."; a stopped reply is a prefix of it."""
    expected = f"You said: {turn}"
    return reply.content.startswith(expected) or (reply.stopped and expected.startswith(reply.content))


def check_history(data_dir: Path, user: str, reported: Iterable[str],
                  where: str) -> tuple[Audit | None, list[str]]:
    """Load ``user``'s history after a round of faults and audit it against the ``reported`` turns.

    Returns the audit (None when the history would not load) and the problems seen: a failed load,
    or a file edgechat had to treat as damaged.
    """
    try:
        messages, warnings = read_history(data_dir, user)
    except Exception as exc:  # the point: it must never fail
        return None, [f"{where}: {type(exc).__name__}: {exc}"]
    problems = [f"{where}: the file was damaged: {warnings}"] if any("damaged" in w for w in warnings) else []
    return audit_turns(messages, reported, echo_reply_ok), problems


def snapshot(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` with its bytes (a missing root is empty), but the library's
    search index, which is derived from the others and refreshed whenever it is read."""
    files: dict[str, bytes] = {}
    if root.exists():
        for path in sorted(root.rglob("*")):
            if path.name.startswith("index.sqlite3"):
                continue
            if path.is_file() and not path.is_symlink():
                with contextlib.suppress(OSError):
                    files[str(path.relative_to(root))] = path.read_bytes()
    return files


# --- file-system faults ---------------------------------------------------------------------------


def is_root() -> bool:
    return os.geteuid() == 0


def _run_quiet(command: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(command, capture_output=True, timeout=30)


@contextlib.contextmanager
def tmpfs(path: Path, size_kib: int) -> Iterator[Path]:
    """A fresh tmpfs of ``size_kib`` KiB mounted at ``path``: a disk that really fills up (ENOSPC)."""
    path.mkdir(parents=True, exist_ok=True)
    if not is_root():
        raise Unavailable("mounting a small tmpfs needs root")
    mounted = _run_quiet(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700", "tmpfs", str(path)])
    if mounted.returncode != 0:
        raise Unavailable(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        _run_quiet(["umount", "-l", str(path)])


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[str]:
    """Make the folder ``path`` unwritable for edgechat processes; yields how ("EROFS" or "EACCES").

    As root (CI) permissions do not stop writes, so the folder is bind-mounted read-only onto itself
    (a real read-only file system); otherwise its write permission is taken away.
    """
    if is_root():
        bound = _run_quiet(["mount", "--bind", str(path), str(path)])
        if bound.returncode != 0:
            raise Unavailable(f"cannot bind-mount here: {bound.stderr.decode(errors='replace').strip()}")
        try:
            remount = _run_quiet(["mount", "-o", "remount,ro,bind", str(path)])
            if remount.returncode != 0:
                raise Unavailable("cannot remount read-only here")
            yield "EROFS"
        finally:
            _run_quiet(["umount", "-l", str(path)])
        return
    mode = path.stat().st_mode & 0o7777
    path.chmod(0o500)
    try:
        yield "EACCES"
    finally:
        path.chmod(mode)


def fill_disk(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte with a filler file; returns it."""
    filler = directory / "filler.bin"
    block = b"\0" * 4096
    with open(filler, "ab", buffering=0) as handle:
        while True:
            try:
                written = handle.write(block)
            except OSError:
                break
            if not written:
                break
        # The last block may have fitted in part: write single bytes until nothing fits.
        while True:
            try:
                if not handle.write(b"\0"):
                    break
            except OSError:
                break
    return filler
