"""The subcommands: ``config``, ``users``, ``history`` and ``reset``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from edgechat_tui.cli.output import print_json, say, warn
from edgechat_tui.core.errors import NoSuchProfile, NotSupported, UsageError

__all__ = ["cmd_config", "cmd_history", "cmd_reset", "cmd_users", "load", "user_of"]


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


def _local_store(settings, user: str):
    from edgechat_tui.storage.store import HistoryStore

    return HistoryStore(settings.data_dir, user, warn=warn)


def _check_profile(settings, user: str) -> None:
    from edgechat_tui.storage.profiles import profile_missing

    if profile_missing(settings.data_dir, user):
        raise NoSuchProfile(f"There is no profile '{user}' in {settings.data_dir}.",
                            hint="edgechat users lists the profiles")


async def _remote_agent(settings, user: str, user_given: bool | None = None):
    from edgechat_tui.backends.factory import create_agent

    agent = create_agent(settings, user, warn=warn, user_given=user_given)
    try:
        await agent.check()
    except BaseException:
        await agent.aclose()
        raise
    return agent


async def _history(settings, user: str, user_given: bool | None = None):
    """(the user whose history it is, its messages): on an agent that verifies the caller, the
    verified user."""
    if not settings.remote_url:
        _check_profile(settings, user)
        store = _local_store(settings, user)
        return user, store.load()
    agent = await _remote_agent(settings, user, user_given)
    try:
        messages = await agent.history()
        user = agent.info.user
    finally:
        await agent.aclose()
    if messages is None:
        raise NotSupported("This agent does not share its history.")
    return user, messages


def cmd_history(args: argparse.Namespace) -> int:
    settings = load(args)
    user = user_of(args, settings)
    user, messages = asyncio.run(_history(settings, user, args.user is not None))
    if args.format == "json":
        print_json({"userId": user, "messages": [m.to_json() for m in messages]}, indent=2)
        return 0
    from edgechat_tui.core.messages import now_iso
    from edgechat_tui.storage.export import to_markdown

    say(to_markdown(user, messages, exported=now_iso(), model=None) + "\n")
    return 0


async def _reset(settings, user: str, user_given: bool | None = None) -> tuple[str, str | None]:
    if not settings.remote_url:
        _check_profile(settings, user)
        store = _local_store(settings, user)
        archived = store.archive()
        return user, str(archived) if archived else None
    agent = await _remote_agent(settings, user, user_given)
    try:
        return agent.info.user, await agent.reset() or "the agent"
    finally:
        await agent.aclose()


def cmd_reset(args: argparse.Namespace) -> int:
    settings = load(args)
    user = user_of(args, settings)
    user, archived = asyncio.run(_reset(settings, user, args.user is not None))
    if archived:
        say(f"Conversation of '{user}' archived to {archived}\n")
    else:
        say(f"'{user}' has no conversation to reset.\n")
    return 0
