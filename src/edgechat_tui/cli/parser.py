"""The command line's shape: every flag and subcommand, and usage errors as one clear line (exit 2)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from edgechat_tui import __version__
from edgechat_tui.core.errors import UsageError

__all__ = ["COMMANDS", "PROG", "build_parser", "parse_args"]

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


#: Every subcommand's name (a test holds it equal to the parser's).
COMMANDS = frozenset({"config", "history", "users", "reset", "models", "chats", "search", "serve"})


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``argv`` parsed (by default the process's arguments).

    Most starts open the chat screen with a few options and no subcommand: those are parsed by the
    top-level parser alone, without building every subcommand's (a few ms of the start). Anything
    else (a subcommand, ``--help``, a mistake) goes to the whole parser, so its answers and errors
    are the whole parser's.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(arg in COMMANDS or _asks_for_help(arg) for arg in args):
        try:
            return build_parser(commands=False).parse_args(args)
        except UsageError:
            pass
    if args and args[0] in COMMANDS and not any(_asks_for_help(arg) for arg in args):
        # A command first (``edgechat search TEXT``): argparse reads only that command's parser, so
        # only it is built (building all of them is about a tenth of ``edgechat search``).
        return build_parser(only=args[0]).parse_args(args)
    # The serve command's options (and their module) only when it may be the one asked for.
    return build_parser(serve_options="serve" in args).parse_args(args)


def _asks_for_help(arg: str) -> bool:
    return (arg.startswith("-") and not arg.startswith("--") and "h" in arg) or (
        len(arg) > 2 and "--help".startswith(arg))


def build_parser(*, commands: bool = True, serve_options: bool = True,
                 only: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser: with every subcommand's, or (``commands=False``) the top level's
    alone, which refuses any subcommand. ``serve_options=False``: the serve command is listed but
    takes no options (for a command line that does not name it: argparse reads only the named one's);
    ``only``: that subcommand's parser alone (for a command line that begins with it)."""
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
    parser.add_argument("--chat", metavar="ID",
                        help="the conversation to continue (default: the most recent; see edgechat chats)")
    parser.add_argument("--new", action="store_true", help="start a new conversation")
    parser.add_argument("--raw", action="store_true",
                        help="with -m: print the reply as plain text even at a terminal (no Markdown)")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    if not commands:
        parser.set_defaults(command=None)
        return parser
    return _add_commands(parser, serve_options=serve_options, only=only)


def _add_commands(parser: argparse.ArgumentParser, *, serve_options: bool,
                  only: str | None) -> argparse.ArgumentParser:
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def want(*names: str) -> bool:
        return only is None or only in names

    if want("config"):
        _add_config(commands)
    if want("history"):
        history = commands.add_parser("history", help="print a conversation (default: the most recent)")
        _add_common(history, top=False)
        history.add_argument("--format", choices=("md", "json"), default="md")
        history.add_argument("--chat", metavar="ID", default=argparse.SUPPRESS, help="which conversation")
    if want("chats", "search"):
        from edgechat_tui.cli.library_parser import add_library_commands

        add_library_commands(commands, _add_common)
    if want("users"):
        users = commands.add_parser("users", help="list profiles with message counts and last activity")
        _add_common(users, top=False)
    if want("reset"):
        reset = commands.add_parser("reset", help="archive a conversation and start afresh")
        _add_common(reset, top=False)
    if want("models"):
        from edgechat_tui.cli.models import add_models_parser

        add_models_parser(commands, _add_common)
    if want("serve"):
        # edgechat serve (src/edgechat_tui/serve/): the chat screen in a browser; its dependencies
        # load only when it runs.
        serve = commands.add_parser("serve",
                                    help="serve the chat screen to a browser (needs edgechat[serve])")
        _add_common(serve, top=False)
        if serve_options:
            from edgechat_tui.serve.options import add_serve_options

            add_serve_options(serve)
    return parser


def _add_config(commands: Any) -> None:
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
