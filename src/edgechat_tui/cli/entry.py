"""The ``edgechat`` command: the TUI, one-shot mode and the subcommands.

Only the TUI imports Textual; ``--help``, one-shot mode and the subcommands start without it.
Errors print one line (and a hint) on stderr: exit 1 at run time, 2 for a usage error, 130 when
the user interrupts (128 + the signal for SIGTERM and SIGHUP).
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
from collections.abc import Sequence
from importlib import import_module

from edgechat_tui.cli.commands import load, user_of
from edgechat_tui.cli.output import PROG, Interrupted, report, say
from edgechat_tui.cli.parser import build_parser, parse_args
from edgechat_tui.core.errors import EdgechatError, UsageError

__all__ = ["build_parser", "main"]


def _cmd_tui(args: argparse.Namespace) -> int:
    # The chat screen shows the warnings itself: printed here, the full-screen app would cover them.
    settings = load(args, print_warnings=False)
    user = user_of(args, settings)
    # Until the first frame is drawn, no garbage collection: what start-up makes (modules, classes,
    # widgets) lives as long as the app, and the collector's passes over it cost about a sixth of
    # the time to the first frame. The app collects again from its first frame on (and here, if
    # it never got that far).
    gc.disable()
    try:
        # Before Textual is imported: the conversation's newest messages are read meanwhile, in a
        # thread, and drawn in the first frame.
        from edgechat_tui.ui.early import start_early_tail

        chat, new = getattr(args, "chat", None), bool(getattr(args, "new", False))
        early = None if new else start_early_tail(settings, user, chat=chat)
        from edgechat_tui.ui.app import run_tui

        return run_tui(settings, user, early=early, chat=chat, new=new)
    finally:
        gc.enable()


def _cmd_serve(args: argparse.Namespace) -> int:
    from edgechat_tui.serve import run_serve  # its dependencies load only here

    settings = load(args)
    return run_serve(args, settings, user_of(args, settings))


# Each subcommand's module is imported when it runs: the chat screen's start does not wait for them.
_COMMANDS = {"config": "commands:cmd_config", "history": "library:cmd_history", "users": "commands:cmd_users",
             "reset": "library:cmd_reset", "models": "models:cmd_models", "chats": "library:cmd_chats",
             "search": "library:cmd_search"}


def _command(name: str):
    if name == "serve":
        return _cmd_serve
    module, function = _COMMANDS[name].split(":")
    return getattr(import_module(f"edgechat_tui.cli.{module}"), function)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        if args.chat is not None and args.new:
            raise UsageError("--chat and --new cannot go together.",
                             hint="--chat ID continues one, --new starts one")
        if args.json and args.command is None and args.message is None and sys.stdin.isatty():
            raise UsageError("--json goes with -m.", hint="edgechat -m TEXT --json")
        if args.command in _COMMANDS or args.command == "serve":
            return _command(args.command)(args)
        if args.message is not None or not sys.stdin.isatty():
            from edgechat_tui.cli.oneshot import cmd_one_shot

            return cmd_one_shot(args)
        return _cmd_tui(args)
    except EdgechatError as error:
        return report(error)
    except KeyboardInterrupt:
        say(f"{PROG}: stopped\n", err=True)
        return 130
    except Interrupted as stop:
        say(f"{PROG}: stopped ({signal.Signals(stop.signum).name})\n", err=True)
        return 128 + stop.signum
