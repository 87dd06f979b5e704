"""The ``edgechat`` command: the TUI, one-shot mode and the subcommands.

Only the TUI imports Textual; ``--help``, one-shot mode and the subcommands start without it.
Errors print one line (and a hint) on stderr: exit 1 at run time, 2 for a usage error, 130 when
the user interrupts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from edgechat_tui import __version__
from edgechat_tui.core.errors import EdgechatError, EmptyMessage, NotSupported, UsageError
from edgechat_tui.core.sanitize import StreamSanitizer, sanitize

PROG = "edgechat"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is an EdgechatError like every other (exit 2, one clear line)."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{message}.", hint=f"see {self.prog} --help")


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Subcommands accept the same options; SUPPRESS keeps a subcommand from resetting what was
    # given before it ("edgechat --user a history").
    default = None if top else argparse.SUPPRESS
    parser.add_argument("-u", "--user", default=default, metavar="USER",
                        help="profile: whose conversation (default: default_user, else 'default')")
    parser.add_argument("--remote", default=default, metavar="URL",
                        help="talk to an agent endpoint at URL instead of the local agent")
    parser.add_argument("--config", default=default, metavar="PATH",
                        help="config file (default: EDGECHAT_CONFIG, else the platform's config dir)")
    parser.add_argument("--data-dir", default=default, metavar="DIR",
                        help="where histories are stored (default: EDGECHAT_DATA_DIR, else the platform's)")
    parser.add_argument("--model", default=default, metavar="ID", help="Workers AI model id")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="A terminal chat for Cloudflare Workers AI, with a model that remembers you.",
        epilog="Without -m and with a terminal, edgechat opens the chat screen.",
    )
    _add_common(parser, top=True)
    parser.add_argument("-m", "--message", metavar="TEXT",
                        help="send TEXT (or '-' to read it from stdin), print the reply, and exit")
    parser.add_argument("--json", action="store_true",
                        help="with -m: print {message, messageCount, usage} as JSON instead of streaming")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    config = commands.add_parser("config", help="show or change settings")
    _add_common(config, top=False)
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser,
                                            required=True)
    show = config_commands.add_parser("show", help="the effective settings and where each came from")
    _add_common(show, top=False)
    set_ = config_commands.add_parser("set", help="set KEY to VALUE in the config file")
    set_.add_argument("key")
    set_.add_argument("value")
    unset = config_commands.add_parser("unset", help="remove KEY from the config file")
    unset.add_argument("key")
    config_commands.add_parser("path", help="print the config file's path")

    history = commands.add_parser("history", help="print a conversation")
    _add_common(history, top=False)
    history.add_argument("--format", choices=("md", "json"), default="md")

    users = commands.add_parser("users", help="list profiles with message counts and last activity")
    _add_common(users, top=False)

    reset = commands.add_parser("reset", help="archive a conversation and start afresh")
    _add_common(reset, top=False)
    return parser


# --- output helpers ---------------------------------------------------------------------------------


def _say(stream: TextIO, text: str) -> None:
    stream.write(text)
    stream.flush()


def _warn(message: str) -> None:
    _say(sys.stderr, f"{PROG}: warning: {sanitize(message)}\n")


_UNSAFE_IN_JSON = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}


def _print_json(value: Any, *, indent: int | None = None) -> None:
    """JSON on stdout, non-ASCII text kept readable, and nothing a terminal would act on.

    json.dumps escapes the C0 controls but passes DEL and the C1 controls (U+009B is a CSI) as they
    are; they can only stand inside JSON strings, where the \\u escape means the same text.
    """
    text = json.dumps(value, ensure_ascii=False, indent=indent).translate(_UNSAFE_IN_JSON)
    _say(sys.stdout, text + "\n")


def _report(error: EdgechatError) -> int:
    text = sanitize(error.message)
    if error.hint:
        text += f"\n  hint: {sanitize(error.hint)}"
    _say(sys.stderr, f"{PROG}: error: {text}\n")
    return error.exit_code


# --- the commands -----------------------------------------------------------------------------------


def _settings(args: argparse.Namespace, *, print_warnings: bool = True):
    from edgechat_tui.config.settings import load_settings

    flags = {"remote_url": args.remote, "data_dir": args.data_dir, "model": args.model}
    settings = load_settings(config_path=args.config, flags=flags)
    if print_warnings:
        for warning in settings.warnings:
            _warn(warning)
    return settings


def _user(args: argparse.Namespace, settings) -> str:
    from edgechat_tui.core.userid import validate_user_id

    return validate_user_id(args.user if args.user is not None else settings.user)


def _cmd_config(args: argparse.Namespace) -> int:
    from edgechat_tui.config.settings import (
        OPTIONS,
        config_path_from,
        load_settings,
        show_value,
        update_config_file,
    )

    if args.config_command == "path":
        print(config_path_from(args.config, os.environ))
        return 0
    if args.config_command in ("set", "unset"):
        path = config_path_from(args.config, os.environ)
        if args.key not in OPTIONS:
            raise UsageError(f"Unknown setting '{args.key}'.", hint=f"known settings: {', '.join(OPTIONS)}")
        value = None if args.config_command == "unset" else args.value
        update_config_file(path, {args.key: value})
        what = "removed" if value is None else "set"
        print(f"{args.key} {what} in {path}")
        option = OPTIONS[args.key]
        if os.environ.get(option.env_var):
            _warn(f"{option.env_var} is set in the environment and takes precedence over the file.")
        return 0
    flags = {"remote_url": args.remote, "data_dir": args.data_dir, "model": args.model}
    settings = load_settings(config_path=args.config, flags=flags)
    exists = "" if settings.config_path.exists() else " (not found: defaults apply)"
    print(f"config file: {settings.config_path}{exists}")
    print(f"data dir:    {settings.data_dir}")
    width = max(map(len, OPTIONS))
    for key in OPTIONS:
        value = show_value(key, settings.values[key])
        print(f"{key:<{width}} = {sanitize(value)}  [{settings.sources[key]}]")
    for warning in settings.warnings:
        _warn(warning)
    return 0


def _cmd_users(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings.remote_url:
        raise NotSupported("Listing profiles is not available on a remote agent.")
    from edgechat_tui.storage import list_users

    summaries = list_users(settings.data_dir)
    if not summaries:
        print(f"No conversations yet in {settings.data_dir}")
        return 0
    width = max(len(s.user) for s in summaries)
    for summary in summaries:
        print(f"{summary.user:<{width}}  {summary.message_count:>7,} messages  "
              f"last active {summary.last_activity or '-'}")
    return 0


def _local_store(settings, user: str):
    from edgechat_tui.storage.store import HistoryStore

    return HistoryStore(settings.data_dir, user, warn=_warn)


async def _remote_agent(settings, user: str):
    from edgechat_tui.backends.factory import create_agent

    agent = create_agent(settings, user, warn=_warn)
    await agent.check()
    return agent


async def _history(settings, user: str):
    if not settings.remote_url:
        return _local_store(settings, user).load()
    agent = await _remote_agent(settings, user)
    try:
        messages = await agent.history()
    finally:
        await agent.aclose()
    if messages is None:
        raise NotSupported("This agent does not share its history.")
    return messages


def _cmd_history(args: argparse.Namespace) -> int:
    settings = _settings(args)
    user = _user(args, settings)
    messages = asyncio.run(_history(settings, user))
    if args.format == "json":
        _print_json({"userId": user, "messages": [m.to_json() for m in messages]}, indent=2)
        return 0
    from edgechat_tui.core.messages import now_iso
    from edgechat_tui.storage.export import to_markdown

    _say(sys.stdout, to_markdown(user, messages, exported=now_iso(), model=None) + "\n")
    return 0


async def _reset(settings, user: str) -> str | None:
    if not settings.remote_url:
        archived = _local_store(settings, user).archive()
        return str(archived) if archived else None
    agent = await _remote_agent(settings, user)
    try:
        return await agent.reset() or "the agent"
    finally:
        await agent.aclose()


def _cmd_reset(args: argparse.Namespace) -> int:
    settings = _settings(args)
    user = _user(args, settings)
    archived = asyncio.run(_reset(settings, user))
    if archived:
        print(f"Conversation of '{user}' archived to {archived}")
    else:
        print(f"'{user}' has no conversation to reset.")
    return 0


def _read_message(args: argparse.Namespace) -> str:
    if args.message == "-" or args.message is None:
        data = sys.stdin.buffer.read()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"The message on stdin is not UTF-8 text (byte {exc.start}).") from None
    try:
        args.message.encode("utf-8")
    except UnicodeEncodeError:
        # Bytes that are not UTF-8 reach Python as lone surrogates: refuse them here, clearly.
        raise UsageError("The message given with -m is not UTF-8 text.",
                         hint="check the terminal's encoding, or pipe the text in with -m -") from None
    return args.message


async def _one_shot(settings, user: str, text: str, as_json: bool) -> int:
    from edgechat_tui.backends.factory import create_agent
    from edgechat_tui.core.messages import Done, Retrying, TextDelta

    agent = create_agent(settings, user, warn=_warn)
    clean = StreamSanitizer()
    printed = False
    try:
        if not agent.info.streams and not as_json and sys.stderr.isatty():
            _say(sys.stderr, "waiting for the agent...\n")
        async with contextlib.aclosing(agent.send(text)) as events:
            async for event in events:
                if isinstance(event, TextDelta) and not as_json:
                    piece = clean.feed(event.text)
                    if piece:
                        _say(sys.stdout, piece)
                        printed = True
                elif isinstance(event, Retrying):
                    _say(sys.stderr, f"{PROG}: {sanitize(event.reason)}; retrying in {event.wait:.1f}s "
                                     f"(attempt {event.attempt + 1} of {event.max_attempts})\n")
                elif isinstance(event, Done):
                    if as_json:
                        usage = event.usage.to_json() if event.usage else None
                        _print_json({"message": event.message.content, "messageCount": event.message_count,
                                     "usage": usage})
                    else:
                        _say(sys.stdout, clean.flush() + "\n")
        return 0
    except BaseException:
        if printed:
            _say(sys.stdout, clean.flush() + "\n")
        raise
    finally:
        await agent.aclose()


def _cmd_one_shot(args: argparse.Namespace) -> int:
    settings = _settings(args)
    user = _user(args, settings)
    text = _read_message(args)
    if not text.strip():
        raise EmptyMessage("There is nothing to send: the message is empty.",
                           hint="give -m TEXT or pipe text in")
    return asyncio.run(_one_shot(settings, user, text, args.json))


def _cmd_tui(args: argparse.Namespace) -> int:
    # The chat screen shows the warnings itself: printed here, the full-screen app would cover them.
    settings = _settings(args, print_warnings=False)
    user = _user(args, settings)
    from edgechat_tui.ui.app import run_tui

    return run_tui(settings, user)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.json and args.message is None and sys.stdin.isatty():
            raise UsageError("--json goes with -m.", hint="edgechat -m TEXT --json")
        if args.command == "config":
            return _cmd_config(args)
        if args.command == "history":
            return _cmd_history(args)
        if args.command == "users":
            return _cmd_users(args)
        if args.command == "reset":
            return _cmd_reset(args)
        if args.message is not None or not sys.stdin.isatty():
            return _cmd_one_shot(args)
        return _cmd_tui(args)
    except EdgechatError as error:
        return _report(error)
    except KeyboardInterrupt:
        _say(sys.stderr, f"{PROG}: stopped\n")
        return 130
    except BrokenPipeError:
        # The reader went away (edgechat ... | head): not an error worth a traceback.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # keeps the interpreter's last flush quiet
        return 1
