"""The command line's shape: every flag and subcommand, and usage errors as one clear line (exit 2)."""

from __future__ import annotations

import argparse
from typing import Any

from edgechat_tui import __version__
from edgechat_tui.core.errors import UsageError

__all__ = ["PROG", "build_parser"]

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
    set_ = config_commands.add_parser(
        "set", help="set KEY to VALUE in the config file (a token: leave VALUE out, or '-', to read stdin)")
    set_.add_argument("key")
    set_.add_argument("value", nargs="?",
                      help="the value; for a token, leave it out (or give '-') and type or pipe it in")
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
