"""Settings: the effective value of each option, and where each came from.

Precedence, highest first: a command-line flag, the environment, the config file, the default.
The options are in :mod:`.options`; the file (TOML, ``config.toml`` in the platform's config dir, or
``--config`` / ``EDGECHAT_CONFIG``, written atomically with mode 0600) in :mod:`.file`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edgechat_tui.config.file import (
    MAX_CONFIG_BYTES,
    default_config_path,
    read_config_file,
    update_config_file,
)
from edgechat_tui.config.options import APP_NAME, DEFAULT_API_BASE, DEFAULT_MODEL, OPTIONS, Option
from edgechat_tui.core.errors import ConfigError
from edgechat_tui.core.net import is_loopback

__all__ = [
    "DEFAULT_MODEL",
    "MAX_CONFIG_BYTES",
    "OPTIONS",
    "Option",
    "Settings",
    "config_path_from",
    "default_config_path",
    "default_data_dir",
    "load_settings",
    "read_config_file",
    "show_value",
    "update_config_file",
]


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
    def cache_dir(self) -> Path:
        if self.values.get("cache_dir"):
            return self.values["cache_dir"]
        import platformdirs  # only for the default: see file.py

        return Path(platformdirs.user_cache_dir(APP_NAME))

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


def default_data_dir() -> Path:
    import platformdirs  # only for the default: see file.py

    return Path(platformdirs.user_data_dir(APP_NAME))


def config_path_from(flag: str | None, env: Mapping[str, str]) -> Path:
    if flag:
        return Path(flag).expanduser()
    if env.get("EDGECHAT_CONFIG"):
        return Path(env["EDGECHAT_CONFIG"]).expanduser()
    return default_config_path()


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
