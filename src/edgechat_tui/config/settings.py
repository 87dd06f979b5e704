"""Settings: what they are, where each one comes from, and the one config file that stores them.

Precedence, highest first: a command-line flag, the environment, the config file, the default.
The file is TOML (``config.toml`` in the platform's config dir, or ``--config`` / ``EDGECHAT_CONFIG``),
read with ``tomllib`` and written with ``tomli_w`` atomically (temp file, fsync, rename), always mode
0600 because it may hold a token; its directory is created 0700.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shlex
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from edgechat_tui.core.errors import ConfigError, InvalidUserId, StorageError
from edgechat_tui.core.models import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODEL,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_TEMPERATURE,
)
from edgechat_tui.core.net import is_loopback
from edgechat_tui.core.secret import Secret
from edgechat_tui.core.userid import validate_user_id

APP_NAME = "edgechat"
DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"


# --- Parsing and checking values --------------------------------------------------------------------


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # bytes that were not UTF-8 reach Python as lone surrogates
        raise ValueError("is not UTF-8 text") from None
    return value


def _as_nonempty_str(value: Any) -> str:
    value = _as_str(value).strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _as_int(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, str):
            try:
                value = int(value.strip().replace("_", ""))
            except ValueError:
                raise ValueError("must be a whole number") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be a whole number")
        if not low <= value <= high:
            raise ValueError(f"must be between {low:,} and {high:,}")
        return value

    return parse


def _as_float(low: float, high: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise ValueError("must be a number") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError("must be a number")
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}")
        return float(value)

    return parse


def _as_url(value: Any) -> str:
    value = _as_nonempty_str(value).rstrip("/")
    if not value.isascii() or any(not "!" <= ch <= "~" for ch in value):
        raise ValueError("must be a URL of printable ASCII (write a non-ASCII host in its xn-- form)")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    return value


def _as_user_id(value: Any) -> str:
    try:
        return validate_user_id(_as_str(value))
    except InvalidUserId as exc:
        raise ValueError(exc.message.rstrip(".") + f" ({exc.hint})") from None


def _as_secret(value: Any) -> Secret:
    value = _as_str(value).strip()
    if not value:
        raise ValueError("must not be empty")
    # A token travels in an HTTP header: visible ASCII only (a pasted curly quote or a line break would
    # fail every request later, far from where it was typed). The message never shows the value.
    bad = next((i for i, ch in enumerate(value) if not "!" <= ch <= "~"), None)
    if bad is not None:
        what = "a space or control character" if value[bad].isspace() or ord(value[bad]) < 32 \
            else "a character that is not ASCII"
        raise ValueError(f"must be printable ASCII: character {bad + 1} is {what}")
    return Secret(value)


def _as_header_value(value: Any) -> str:
    """A value sent in an HTTP header that is not secret (an Access client id): visible ASCII."""
    value = _as_nonempty_str(value)
    if any(not "!" <= ch <= "~" for ch in value):
        raise ValueError("must be printable ASCII without spaces")
    return value


def _as_command(value: Any) -> str:
    """A command line, split as a POSIX shell would split words (shlex) but never run by a shell."""
    value = _as_nonempty_str(value)
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"cannot be split into words: {exc}") from None
    if not words:
        raise ValueError("must name a program")
    return value


def _as_account_id(value: Any) -> str:
    value = _as_nonempty_str(value)
    if not re.fullmatch(r"[A-Za-z0-9]{1,64}", value):
        raise ValueError("must be letters and digits only (32 hex characters in the dashboard)")
    return value


def _as_path(value: Any) -> Path:
    value = _as_nonempty_str(value)
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not UTF-8 text") from None
    if len(encoded) > 4000 or any(len(part.encode()) > 255 for part in Path(value).parts):
        raise ValueError("is too long for a path")
    return Path(value).expanduser()


def _as_model(value: Any) -> str:
    # The model id becomes part of a URL path: a '?', '#', '%' or '..' would change the request.
    value = _as_nonempty_str(value)
    if not re.fullmatch(r"[A-Za-z0-9@][A-Za-z0-9@._:/\-]{0,199}", value) or ".." in value or "//" in value:
        raise ValueError("must be a model id such as @cf/meta/llama-3.3-70b-instruct-fp8-fast")
    return value


def _as_theme(value: Any) -> str:
    value = _as_nonempty_str(value)
    if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", value):
        raise ValueError("must be a theme name such as textual-dark")
    return value


@dataclass(frozen=True)
class Option:
    """One setting: its key, how to parse and check a value, its default, and what it is for."""

    key: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    secret: bool = False
    env: str | None = None  # the environment variable; EDGECHAT_<KEY> unless named

    @property
    def env_var(self) -> str:
        return self.env or f"EDGECHAT_{self.key.upper()}"


OPTIONS: dict[str, Option] = {
    o.key: o
    for o in (
        Option("account_id", _as_account_id, None, "Cloudflare account id", env="CLOUDFLARE_ACCOUNT_ID"),
        Option("api_token", _as_secret, None, "Cloudflare API token (Workers AI Read and Edit)",
               secret=True, env="CLOUDFLARE_API_TOKEN"),
        Option("model", _as_model, DEFAULT_MODEL, "Workers AI model id"),
        Option("max_tokens", _as_int(1, 131_072), DEFAULT_MAX_TOKENS, "longest reply, in tokens"),
        Option("temperature", _as_float(0.0, 5.0), DEFAULT_TEMPERATURE, "sampling temperature, 0 to 5"),
        Option("system_prompt", _as_str, DEFAULT_SYSTEM_PROMPT, "system prompt sent first"),
        Option("default_user", _as_user_id, None, "profile used without --user"),
        Option("api_base", _as_url, DEFAULT_API_BASE, "Cloudflare API base (or an AI Gateway base)"),
        Option("remote_url", _as_url, None, "agent endpoint used instead of the local agent"),
        Option("remote_token", _as_secret, None, "bearer token for the agent endpoint (shared or per-user)",
               secret=True),
        Option("access_client_id", _as_header_value, None,
               "Cloudflare Access service token: its client id (sent as CF-Access-Client-Id)"),
        Option("access_client_secret", _as_secret, None,
               "Cloudflare Access service token: its client secret (sent as CF-Access-Client-Secret)",
               secret=True),
        Option("access_token_command", _as_command, None,
               "command printing a user's Access token, e.g. cloudflared access token -app=URL"),
        Option("context_window", _as_int(512, 10_000_000), None,
               "context window in tokens, for models the built-in table does not know"),
        Option("max_retries", _as_int(0, 10), 3, "retries of a failed request before giving up"),
        Option("connect_timeout", _as_float(0.1, 600.0), 10.0, "seconds to wait for a connection"),
        Option("read_timeout", _as_float(0.1, 3600.0), 60.0, "seconds without data before a reply times out"),
        Option("remote_timeout", _as_float(0.1, 3600.0), 120.0, "seconds to wait for a remote agent's reply"),
        Option("reply_timeout", _as_float(0.0, 86_400.0), 600.0, "seconds a whole reply may take (0: none)"),
        Option("theme", _as_theme, None, "TUI colour theme"),
        Option("data_dir", _as_path, None, "where histories are stored"),
    )
}


@dataclass(frozen=True)
class Settings:
    """The effective settings, and where each came from ("flag", "env NAME", "file", "default")."""

    config_path: Path
    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __getattr__(self, key: str) -> Any:
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(key) from None

    @property
    def data_dir(self) -> Path:
        return self.values.get("data_dir") or default_data_dir()

    @property
    def user(self) -> str:
        """The profile to use when no --user is given."""
        return self.values.get("default_user") or "default"

    def with_values(self, **changes: Any) -> Settings:
        """A copy with some values replaced (marked as set by a flag)."""
        values = dict(self.values) | changes
        sources = dict(self.sources) | dict.fromkeys(changes, "flag")
        return Settings(self.config_path, values, sources, self.warnings)

    def __repr__(self) -> str:
        return f"Settings(config_path={str(self.config_path)!r}, model={self.values.get('model')!r})"


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def config_path_from(flag: str | None, env: Mapping[str, str]) -> Path:
    if flag:
        return Path(flag).expanduser()
    if env.get("EDGECHAT_CONFIG"):
        return Path(env["EDGECHAT_CONFIG"]).expanduser()
    return default_config_path()


def _line_of(text: str, key: str) -> int | None:
    """The line where ``key`` is set: ``key = ...``, or a table header ``[key]``."""
    name = rf"[\"']?{re.escape(key)}[\"']?"
    match = re.search(rf"^[ \t]*(?:{name}[ \t]*=|\[\[?[ \t]*{name}[ \t]*\]\]?)", text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else None


def read_config_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    """Read and check the config file. A missing file is empty. Returns (values, warnings).

    Raises ConfigError naming the file, the line and the problem for bad TOML or a bad value.
    """
    try:
        raw = _read_regular_file(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        return {}, []
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Config file {path} is not UTF-8 text (byte {exc.start}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}.",
                          hint="fix the line, or move the file away to start afresh") from None
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for key, raw_value in data.items():
        option = OPTIONS.get(key)
        line = _line_of(text, key)
        where = f"{path}, line {line}" if line else str(path)
        if option is None:
            warnings.append(f"{where}: unknown setting '{key}' ignored (known: {', '.join(OPTIONS)}).")
            continue
        try:
            values[key] = option.parse(raw_value)
        except ValueError as exc:
            raise ConfigError(f"Config file {where}: '{key}' {exc}.",
                              hint=f"fix it, or run: edgechat config set {key} VALUE") from None
    if any(OPTIONS[key].secret for key in values):
        with contextlib.suppress(OSError):
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                warnings.append(f"{path} holds a token and others can read it (mode {mode:o}): "
                                f"run chmod 600 {path}")
    return values, warnings


MAX_CONFIG_BYTES = 1 << 20


def _read_regular_file(path: Path, cap: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``cap`` bytes; else a ConfigError.

    Opened without blocking, so a FIFO cannot hang the start, and checked with fstat, so a device
    (``/dev/zero``) or a directory is refused before anything is read. Symlinks are followed: dotfile
    managers link config files.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise ConfigError(f"Config file {path} is a directory.", hint="point --config at a file") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc.strerror}.") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"Config file {path} is a directory.", hint="point --config at a file")
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"Config file {path} is not a regular file.", hint="point --config at a file")
        if info.st_size > cap:
            raise ConfigError(f"Config file {path} is larger than {cap >> 20} MiB: not a config file.")
        chunks, total = [], 0
        while chunk := os.read(fd, 65536):
            total += len(chunk)
            if total > cap:  # it grew while being read
                raise ConfigError(f"Config file {path} is larger than {cap >> 20} MiB: not a config file.")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc.strerror}.") from None
    finally:
        os.close(fd)


def _plain_http_warnings(values: Mapping[str, Any]) -> list[str]:
    """A token about to travel in clear: the local agent's Cloudflare token over an http:// api_base."""
    if values.get("remote_url"):
        return []  # the remote agent warns about its own URL
    parts = urlsplit(values.get("api_base") or DEFAULT_API_BASE)
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        return [f"The Cloudflare API token is sent over plain http to {parts.hostname}: anyone on the way "
                "can read it. Use an https:// api_base."]
    return []


def load_settings(
    *,
    config_path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Work out the effective settings from flags, environment, file and defaults, in that order."""
    env = os.environ if env is None else env
    path = config_path_from(str(config_path) if config_path else None, env)
    file_values, warnings = read_config_file(path)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, option in OPTIONS.items():
        if flags and flags.get(key) is not None:
            try:
                values[key], sources[key] = option.parse(flags[key]), "flag"
            except ValueError as exc:
                raise ConfigError(f"--{key.replace('_', '-')} {exc}.") from None
        elif env.get(option.env_var):
            try:
                values[key], sources[key] = option.parse(env[option.env_var]), f"env {option.env_var}"
            except ValueError as exc:
                raise ConfigError(f"Environment variable {option.env_var} {exc}.") from None
        elif key in file_values:
            values[key], sources[key] = file_values[key], "file"
        else:
            values[key], sources[key] = option.default, "default"
    warnings += _plain_http_warnings(values)
    return Settings(path, values, sources, tuple(warnings))


def show_value(key: str, value: Any) -> str:
    """A value as ``config show`` prints it: tokens hidden, paths and text shown plainly."""
    if value is None:
        return "(not set)"
    if OPTIONS[key].secret:
        return "******** (set, hidden)"
    if isinstance(value, str):
        return repr(value) if (not value or value != value.strip() or "\n" in value) else value
    return str(value)


def _toml_value(key: str, value: Any) -> Any:
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, Path):
        return str(value)
    return value


def update_config_file(path: Path, changes: Mapping[str, Any]) -> None:
    """Set (or, with value None, remove) settings in the config file, keeping the others.

    Every value is checked first; a bad one raises ConfigError and leaves the file untouched. The
    file is replaced atomically with mode 0600. A file holding comments is copied to
    ``config.toml.bak`` first, because tomli_w cannot keep them.
    """
    import tomli_w

    from edgechat_tui.storage.fs import durable_write  # the one durable write (temp, fsync, rename)

    checked: dict[str, Any] = {}
    for key, value in changes.items():
        option = OPTIONS.get(key)
        if option is None:
            raise ConfigError(f"Unknown setting '{key}'.", hint=f"known settings: {', '.join(OPTIONS)}")
        if value is not None:
            try:
                value = option.parse(value)
            except ValueError as exc:
                raise ConfigError(f"Bad value for '{key}': it {exc}.") from None
        checked[key] = value
    # Re-reads the file so that a bad file is reported, not overwritten.
    read_config_file(path)
    try:
        old_text = path.read_text("utf-8")
        current = tomllib.loads(old_text)
    except FileNotFoundError:
        old_text, current = "", {}
    for key, value in checked.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = _toml_value(key, value)
    data = tomli_w.dumps(current).encode("utf-8")
    try:
        _ensure_private_dir(path.parent)
        if re.search(r"^\s*#|\s#", old_text, re.MULTILINE):
            durable_write(path.with_name(path.name + ".bak"), old_text.encode("utf-8"))
        durable_write(path, data)
    except OSError as exc:
        raise StorageError(f"Cannot write config file {path}: {exc.strerror or exc}.",
                           hint="check the directory's permissions and free space") from None


def _ensure_private_dir(directory: Path) -> None:
    """Create the config dir 0700; tighten edgechat's own dir if someone made it readable to others.

    A dir named with --config (say, the home directory) is the user's business and left as it is.
    """
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
    elif directory == default_config_path().parent and directory.stat().st_mode & 0o077:
        directory.chmod(0o700)
