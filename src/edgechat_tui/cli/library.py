"""The conversation library on the command line: ``chats`` (list, rename, archive, restore, delete),
``search``, and ``history --chat``.

Written against ``agent.conversations`` (the Conversations interface), so each works unchanged on the
local agent and on a remote agent that offers ``conversations``; on one that does not (a seed server)
it says so and exits 1. Everything printed goes through ``cli/output.py``, which makes it safe.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from edgechat_tui.cli.commands import check_local_profile, load, user_of
from edgechat_tui.cli.output import print_json, say, warn
from edgechat_tui.core.errors import NotSupported
from edgechat_tui.core.sanitize import sanitize

__all__ = ["cmd_chats", "cmd_history", "cmd_reset", "cmd_search", "library_agent", "need_library", "when"]

T = TypeVar("T")


def when(iso: str) -> str:
    """An ISO 8601 time as local ``YYYY-MM-DD HH:MM`` (the text itself when it is not a time)."""
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return iso or "-"
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M")


def need_library(agent) -> Any:
    """``agent.conversations``, or NotSupported (exit 1) where the agent keeps one conversation."""
    conversations = agent.conversations
    if conversations is None:
        raise NotSupported("This agent keeps one conversation per user: listing, opening and searching "
                           "conversations are not available there.",
                           hint="edgechat's own Worker (worker/) and the local agent keep many")
    return conversations


async def library_agent(settings, user: str, user_given: bool | None = None):
    """An agent for the library commands: no credentials needed locally; a remote one checked first."""
    from edgechat_tui.backends.factory import create_agent

    agent = create_agent(settings, user, warn=warn, user_given=user_given, library_only=True)
    try:
        if agent.info.mode == "remote":
            await agent.check()
    except BaseException:
        await agent.aclose()
        raise
    return agent


def _run(args: argparse.Namespace, action: Callable[[Any, Any], Awaitable[T]], *,
         must_exist: bool = True, library: bool = True, settings: Any = None) -> T:
    """``action(agent, conversations)`` on the user's agent (``library``: it must keep conversations)."""
    import asyncio

    if settings is None:
        settings = load(args)
    user = user_of(args, settings)
    if must_exist and not settings.remote_url:
        check_local_profile(settings, user)

    async def go() -> T:
        agent = await library_agent(settings, user, args.user is not None)
        try:
            return await action(agent, need_library(agent) if library else agent.conversations)
        finally:
            await agent.aclose()

    return asyncio.run(go())


def _title(title: str) -> str:
    return title or "(untitled)"


def _print_list(summaries, current: str | None, what: str) -> None:
    if not summaries:
        say(f"No {what}conversations.\n")
        return
    for summary in summaries:
        mark = "*" if summary.id == current else " "
        extra = f"  purged after {when(summary.purge_at)}" if summary.purge_at else ""
        say(f"{mark} {summary.id}  {when(summary.updated)}  {summary.message_count:>5} messages  "
            f"{_title(summary.title)}{extra}\n")


def cmd_chats(args: argparse.Namespace) -> int:
    action = getattr(args, "chats_command", None)
    if action is None:
        archived, deleted = args.archived, args.deleted

        async def listing(_agent, conversations):
            found = await conversations.list(archived=archived, deleted=deleted)
            current = await conversations.current() if not (archived or deleted) else None
            return found, current

        summaries, current = _run(args, listing, must_exist=False)
        if getattr(args, "json", False):
            print_json([summary.to_json() for summary in summaries], indent=2)
        else:
            _print_list(summaries, current.id if current else None,
                        "archived " if archived else "deleted " if deleted else "")
        return 0

    async def change(_agent, conversations):
        if action == "rename":
            return await conversations.rename(args.id, args.title)
        if action == "archive":
            return await conversations.archive(args.id)
        if action == "restore":
            return await conversations.restore(args.id)
        return await conversations.delete(args.id, purge=args.purge)

    summary = _run(args, change)
    if getattr(args, "json", False):
        print_json(summary.to_json() if summary is not None else {"purged": args.id}, indent=2)
    elif action == "rename":
        say(f"Renamed {summary.id}: {_title(summary.title)}\n")
    elif action == "archive":
        say(f"Archived {summary.id} ({_title(summary.title)}): read-only until restored.\n")
    elif action == "restore":
        say(f"Restored {summary.id} ({_title(summary.title)}).\n")
    elif summary is None:
        say(f"Purged {args.id}: it is gone for good.\n")
    else:
        say(f"Moved {summary.id} ({_title(summary.title)}) to the trash; it can be restored until "
            f"{when(summary.purge_at or '')}.\n")
    return 0


def _marked(snippet: str, highlights) -> str:
    """The snippet with its matched words in bold, for a terminal (each piece made safe first)."""
    pieces, last = [], 0
    for start, end in sorted(highlights):
        if start < last or end > len(snippet):
            continue
        pieces += [sanitize(snippet[last:start]), "\x1b[1m", sanitize(snippet[start:end]), "\x1b[0m"]
        last = end
    pieces.append(sanitize(snippet[last:]))
    return "".join(pieces)


def _search_here(settings, user: str, text: str, limit: int) -> list:
    """A local search without an agent or an event loop: ``edgechat search`` is a command scripts run
    often, and the library's own (blocking) search is the same call the local agent makes in a thread.
    Starting no event loop, no agent and no HTTP client keeps the process near ``edgechat --version``
    (bench/bench_library.py)."""
    from edgechat_tui.storage.library import Library

    library = Library(settings.data_dir, user, warn=warn)
    try:
        return library.search(text, limit=limit)
    finally:
        library.close()


def cmd_search(args: argparse.Namespace) -> int:
    async def search(_agent, conversations):
        return await conversations.search(args.text, limit=args.limit)

    settings = load(args)
    if settings.remote_url:
        hits = _run(args, search, must_exist=False, settings=settings)
    else:
        hits = _search_here(settings, user_of(args, settings), args.text, args.limit)
    if getattr(args, "json", False):
        print_json([hit.to_json() for hit in hits], indent=2)
        return 0
    if not hits:
        say("No messages match.\n")
        return 0
    bold = sys.stdout is not None and sys.stdout.isatty()
    for hit in hits:
        archived = "  (archived)" if hit.archived else ""
        say(f"{hit.chat}  {when(hit.time)}  {hit.role:<9}  {_title(hit.title)}{archived}\n")
        if bold:
            say("    " + _marked(hit.snippet, hit.highlights) + "\n", trusted=True)
        else:
            say(f"    {hit.snippet}\n")
    return 0


# --- history and reset -------------------------------------------------------------------------------


def cmd_history(args: argparse.Namespace) -> int:
    chat = getattr(args, "chat", None)

    async def history(agent, _conversations):
        if chat is not None:
            await need_library(agent).open(chat)
        messages = await agent.history()
        if messages is None:
            raise NotSupported("This agent does not share its history.")
        current = await agent.conversations.current() if agent.conversations is not None else None
        return agent.info.user, messages, current

    user, messages, current = _run(args, history, library=False)
    if args.format == "json":
        document: dict[str, Any] = {"userId": user, "messages": [m.to_json() for m in messages]}
        if current is not None:
            document["chat"], document["title"] = current.id, current.title
        print_json(document, indent=2)
        return 0
    from edgechat_tui.core.messages import now_iso
    from edgechat_tui.storage.export import to_markdown

    say(to_markdown(user, messages, exported=now_iso(), model=None,
                    title=current.title if current is not None else None,
                    chat=current.id if current is not None else None) + "\n")
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    async def reset(agent, _conversations):
        return agent.info.user, await agent.reset()

    user, archived = _run(args, reset, library=False)
    if archived:
        say(f"Conversation {archived} of '{user}' archived; the next message starts a new one.\n")
    else:
        say(f"'{user}' has no conversation to reset.\n")
    return 0
