"""The subcommands ``config`` and ``users``, and what every subcommand shares (settings, the user).

The library's subcommands (``chats``, ``search``, ``history``, ``reset``) are in ``cli/library.py``."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from edgechat_tui.cli.output import say, warn
from edgechat_tui.core.errors import NoSuchProfile, NotSupported, UsageError

__all__ = ["check_local_profile", "cmd_config", "cmd_users", "load", "user_of"]


def load(args: argparse.Namespace, *, print_warnings: bool = True):
    """The effective settings for ``args``; their warnings printed unless the caller shows them."""
    from edgechat_tui.config.settings import load_settings

    flags = {"remote_url": args.remote, "data_dir": args.data_dir, "model": args.model}
    settings = load_settings(config_path=args.config, flags=flags)
    if print_warnings:
        for warning in settings.warnings:
            warn(warning)
    return settings


def user_of(args: argparse.Namespace, settings) -> str:
    from edgechat_tui.core.userid import validate_user_id

    return validate_user_id(args.user if args.user is not None else settings.user)


def _secret_from_stdin(key: str) -> str:
    """A token typed at the terminal (not echoed) or piped in: never from argv, where ps can read it."""
    if sys.stdin is None:
        raise UsageError(f"No value for {key}: there is no stdin to read it from.")
    if sys.stdin.isatty():
        try:
            value = getpass.getpass(f"{key} (not shown): ")
        except EOFError:
            value = ""
    else:
        data = sys.stdin.buffer.read(65536)
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"The value of {key} on stdin is not UTF-8 text.") from None
    value = value.strip()
    if not value:
        raise UsageError(f"No value for {key} was given on stdin.",
                         hint=f'echo "$TOKEN" | edgechat config set {key}')
    return value


def cmd_config(args: argparse.Namespace) -> int:
    from edgechat_tui.config.settings import (
        OPTIONS,
        config_path_from,
        load_settings,
        show_value,
        update_config_file,
    )

    if args.config_command == "path":
        say(f"{config_path_from(args.config, os.environ)}\n")
        return 0
    if args.config_command in ("set", "unset"):
        path = config_path_from(args.config, os.environ)
        if args.key not in OPTIONS:
            raise UsageError(f"Unknown setting '{args.key}'.", hint=f"known settings: {', '.join(OPTIONS)}")
        option = OPTIONS[args.key]
        value = None
        if args.config_command == "set":
            value = args.value
            if option.secret and value in (None, "-"):
                value = _secret_from_stdin(args.key)
            elif value is None:
                raise UsageError(f"No value given for {args.key}.",
                                 hint=f"edgechat config set {args.key} VALUE")
        update_config_file(path, {args.key: value})
        what = "removed" if value is None else "set"
        say(f"{args.key} {what} in {path}\n")
        if os.environ.get(option.env_var):
            warn(f"{option.env_var} is set in the environment and takes precedence over the file.")
        return 0
    flags = {"remote_url": args.remote, "data_dir": args.data_dir, "model": args.model}
    settings = load_settings(config_path=args.config, flags=flags)
    exists = "" if settings.config_path.exists() else " (not found: defaults apply)"
    say(f"config file: {settings.config_path}{exists}\n")
    say(f"data dir:    {settings.data_dir}\n")
    width = max(map(len, OPTIONS))
    for key in OPTIONS:
        value = show_value(key, settings.values[key])
        say(f"{key:<{width}} = {value}  [{settings.sources[key]}]\n")
    for warning in settings.warnings:
        warn(warning)
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    settings = load(args)
    if settings.remote_url:
        raise NotSupported("Listing profiles is not available on a remote agent.")
    from edgechat_tui.storage import list_users

    summaries = list_users(settings.data_dir)
    if not summaries:
        say(f"No conversations yet in {settings.data_dir}\n")
        return 0
    width = max(len(s.user) for s in summaries)
    for summary in summaries:
        say(f"{summary.user:<{width}}  {summary.message_count:>7,} messages  "
            f"last active {summary.last_activity or '-'}\n")
    return 0


def check_local_profile(settings, user: str) -> None:
    """NoSuchProfile (exit 1) when ``user`` has nothing in the local data folder."""
    from edgechat_tui.storage.profiles import profile_missing

    if profile_missing(settings.data_dir, user):
        raise NoSuchProfile(f"There is no profile '{user}' in {settings.data_dir}.",
                            hint="edgechat users lists the profiles")
