"""The ``edgechat`` command: the TUI, one-shot mode and the subcommands.

Only the TUI imports Textual; ``--help``, one-shot mode and the subcommands start without it.
Errors print one line (and a hint) on stderr: exit 1 at run time, 2 for a usage error, 130 when
the user interrupts (128 + the signal for SIGTERM and SIGHUP).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from edgechat_tui.cli.commands import cmd_config, cmd_history, cmd_reset, cmd_users, load, user_of
from edgechat_tui.cli.oneshot import Interrupted, cmd_one_shot
from edgechat_tui.cli.output import PROG, report, say
from edgechat_tui.cli.parser import build_parser
from edgechat_tui.core.errors import EdgechatError, UsageError

__all__ = ["build_parser", "main"]


def _cmd_tui(args: argparse.Namespace) -> int:
    # The chat screen shows the warnings itself: printed here, the full-screen app would cover them.
    settings = load(args, print_warnings=False)
    user = user_of(args, settings)
    from edgechat_tui.ui.app import run_tui

    return run_tui(settings, user)


_COMMANDS = {"config": cmd_config, "history": cmd_history, "users": cmd_users, "reset": cmd_reset}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.json and args.message is None and sys.stdin.isatty():
            raise UsageError("--json goes with -m.", hint="edgechat -m TEXT --json")
        if args.command in _COMMANDS:
            return _COMMANDS[args.command](args)
        if args.message is not None or not sys.stdin.isatty():
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
