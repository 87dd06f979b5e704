"""The library's subcommands on the command line: ``chats`` (and its actions) and ``search``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["add_library_commands"]


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 200") from None
    if not 1 <= number <= 200:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 200")
    return number


def _json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help=f"print {what} as JSON")


def add_library_commands(commands: Any, add_common: Callable[..., None]) -> None:
    chats = commands.add_parser("chats", help="list conversations (newest first), or rename, archive, "
                                "restore or delete one")
    add_common(chats, top=False)
    shown = chats.add_mutually_exclusive_group()
    shown.add_argument("--archived", action="store_true", help="the archived conversations")
    shown.add_argument("--deleted", action="store_true", help="the trash (kept 30 days)")
    _json(chats, "the list: [{id, title, messageCount, created, updated, archived}]")
    actions = chats.add_subparsers(dest="chats_command", metavar="ACTION", parser_class=type(chats))
    rename = actions.add_parser("rename", help="set a conversation's title")
    rename.add_argument("id")
    rename.add_argument("title")
    for name, text in (("archive", "put a conversation aside: out of the list, read-only"),
                       ("restore", "bring one back from the archive or the trash"),
                       ("delete", "move one to the trash (restorable for 30 days)")):
        action = actions.add_parser(name, help=text)
        action.add_argument("id")
        if name == "delete":
            action.add_argument("--purge", action="store_true",
                                help="remove one that is already in the trash, for good")
    for action in actions.choices.values():
        add_common(action, top=False)
        _json(action, "the conversation")

    search = commands.add_parser("search", help="find messages in every conversation, newest first")
    add_common(search, top=False)
    search.add_argument("text", help="words to find (each matches words starting with it)")
    search.add_argument("--limit", type=_limit, default=50, help="at most this many (1-200, default 50)")
    _json(search, "the matches: [{chat, title, role, time, snippet}]")
