"""The config file: read and checked (a regular file of at most 1 MiB, TOML, every value parsed), and
written atomically with mode 0600 (a file holding comments is copied to ``config.toml.bak`` first)."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgechat_tui.config.options import APP_NAME, OPTIONS
from edgechat_tui.core.errors import ConfigError, StorageError
from edgechat_tui.core.secret import Secret

__all__ = ["MAX_CONFIG_BYTES", "default_config_path", "read_config_file", "update_config_file"]


# tomllib and platformdirs load where they are used: a command given its config path and data folder
# (``EDGECHAT_CONFIG``, ``--data-dir``...) and with no config file yet imports neither.


def default_config_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


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
    import tomllib

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
    import tomllib

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
