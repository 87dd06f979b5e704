"""The ``serve`` subcommand's flags, and every check made before the server starts.

Nothing here imports the web server or its dependencies: the CLI imports this module to build its
parser, and ``edgechat --help`` and one-shot mode must stay as fast as they were.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgechat_tui.core.errors import MissingCredentials, UsageError

#: What ``serve`` tells a user who does not have its dependencies: exact, whatever the install.
INSTALL_HINT = "install them: {python} -m pip install 'textual-serve>=1.1.3' 'aiohttp>=3.9' " \
               "(or install edgechat with its serve extra: pip install 'edgechat[serve]')"
DEFAULT_PORT = 8000
DEFAULT_STOP_TIMEOUT = 5.0
DEFAULT_MAX_SESSIONS = 8


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """The flags of ``edgechat serve`` besides the common ones (--user, --remote, --config, ...)."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; anything but loopback needs "
                             "--allow-remote)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a non-loopback --host; the page then needs the random access key "
                             "printed at start")
    parser.add_argument("--max-sessions", type=_positive_int, default=DEFAULT_MAX_SESSIONS, metavar="N",
                        help=f"browser tabs served at once, one app process each (default "
                             f"{DEFAULT_MAX_SESSIONS})")
    parser.add_argument("--stop-timeout", type=_seconds, default=DEFAULT_STOP_TIMEOUT, metavar="SECONDS",
                        help="how long an app process may take to save and quit before it is killed "
                             f"(default {DEFAULT_STOP_TIMEOUT:g})")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 600 seconds")
    return value


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1), with or without brackets.

    Any other name counts as non-loopback: it is never looked up, so the answer cannot depend on
    DNS, and an empty host (every interface) is not loopback either.
    """
    import ipaddress

    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name.lower().rstrip(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@dataclass(frozen=True)
class ServeConfig:
    """Everything the server needs, decided and checked before it starts."""

    host: str
    port: int
    #: The access key every request must present; None on loopback without --allow-remote.
    key: str | None
    #: True: only Host headers naming a loopback address are served (DNS-rebinding defence).
    loopback_only: bool
    #: The command each browser tab runs (no shell: an argv), and what it adds to the environment.
    child_argv: tuple[str, ...]
    child_env: dict[str, str] = field(default_factory=dict)
    user: str = "default"
    mode: str = "local agent"
    max_sessions: int = DEFAULT_MAX_SESSIONS
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    #: textual-serve's browser client: its js/, css/ and fonts/ folders.
    client_static: Path = Path()

    def __repr__(self) -> str:  # never shows the key
        return (f"ServeConfig(host={self.host!r}, port={self.port}, key={'set' if self.key else None}, "
                f"user={self.user!r})")


def client_static_dir() -> Path:
    """textual-serve's static files (found without importing it), or a UsageError saying what to install."""
    import importlib.util

    missing = [name for name in ("aiohttp", "textual_serve") if importlib.util.find_spec(name) is None]
    if missing:
        names = ", ".join(name.replace("_", "-") for name in missing)
        raise UsageError(f"edgechat serve needs {names}, which {'is' if len(missing) == 1 else 'are'} "
                         "not installed.", hint=INSTALL_HINT.format(python=sys.executable))
    spec = importlib.util.find_spec("textual_serve")
    assert spec is not None and spec.submodule_search_locations
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    for part in ("js/textual.js", "css/xterm.css", "fonts/RobotoMono-VariableFont_wght.ttf"):
        if not (static / part).is_file():
            raise UsageError(f"textual-serve's browser client is incomplete: {static / part} is missing.",
                             hint=INSTALL_HINT.format(python=sys.executable))
    return static


def child_command(settings: Any, user: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """The argv each tab's app process runs, and the variables added to its environment.

    Built from validated values only (the user id passed ``validate_user_id``, the others were
    parsed by ``load_settings``), as a list: no shell ever sees it. Secrets never go on a command
    line, which any user of the machine can read in /proc: tokens reach the app process by the
    environment it inherits or the config file it reads, and the remote URL (which may carry a
    password) by ``EDGECHAT_REMOTE_URL``.
    """
    argv = [sys.executable, "-m", "edgechat_tui.serve.child", "--user", user,
            "--config", str(Path(settings.config_path).absolute())]
    sources = settings.sources
    if sources.get("data_dir") == "flag":
        argv += ["--data-dir", str(Path(settings.data_dir).absolute())]
    if sources.get("model") == "flag":
        argv += ["--model", str(settings.model)]
    env: dict[str, str] = {}
    if sources.get("remote_url") == "flag":
        env["EDGECHAT_REMOTE_URL"] = str(settings.remote_url)
    return tuple(argv), env


def serve_config(args: argparse.Namespace, settings: Any, user: str) -> ServeConfig:
    """Check the flags and the environment; the ServeConfig to run, or an EdgechatError (exit 2)."""
    import secrets

    host = args.host.strip()
    loopback = is_loopback_host(host) if host else False
    if not loopback and not args.allow_remote:
        raise UsageError(f"Refusing to listen on {host or 'every interface'}: it is not a loopback address.",
                         hint="add --allow-remote to serve other machines (the page then needs an access "
                              "key); see docs/serve.md")
    values = settings.values
    if not settings.remote_url and not (values.get("account_id") and values.get("api_token")):
        # The setup screen would ask for the API token in a web page: serve does not offer that.
        raise MissingCredentials(
            "edgechat serve needs a Cloudflare account id and API token, and they are not set.",
            hint="run edgechat once in a terminal to use the setup screen, or set CLOUDFLARE_ACCOUNT_ID and "
                 "CLOUDFLARE_API_TOKEN",
        )
    static = client_static_dir()
    argv, env = child_command(settings, user)
    key = secrets.token_urlsafe(32) if args.allow_remote else None
    mode = "remote agent" if settings.remote_url else "local agent"
    return ServeConfig(host=host, port=args.port, key=key, loopback_only=not args.allow_remote,
                       child_argv=argv, child_env=env, user=user, mode=mode,
                       max_sessions=args.max_sessions, stop_timeout=args.stop_timeout,
                       client_static=static)
