"""The settings edgechat knows: each option's key, parser and check, default and environment variable.

Pure: no file is read here (``file.py`` reads and writes the config file, ``settings.py`` works out the
effective values).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edgechat_tui.core.errors import InvalidUserId
from edgechat_tui.core.models import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODEL,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_TEMPERATURE,
)
from edgechat_tui.core.secret import Secret
from edgechat_tui.core.userid import validate_user_id

__all__ = ["APP_NAME", "DEFAULT_API_BASE", "DEFAULT_MODEL", "OPTIONS", "Option"]

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
    import shlex  # only when a command is set: most starts have none

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



def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("on", "true", "yes", "1"):
            return True
        if word in ("off", "false", "no", "0"):
            return False
    raise ValueError("must be on or off (true or false)")


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
        Option("cache_dir", _as_path, None, "where the model list is cached"),
        Option("auto_title", _as_bool, True,
               "name each conversation with a small model call after its first reply (off: its first words)"),
    )
}
