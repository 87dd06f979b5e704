"""The conversation library's commands: ``/new``, ``/chats``, ``/title``, ``/search``, ``/regen``,
``/edit``, ``/continue``, and what the list panel's keys do (open, rename, archive, restore, delete).

Typed against :class:`LibraryCommandHost` (the chat screen, with its
:class:`~edgechat_tui.ui.library.Library`). Without a library (``agent.conversations`` is None)
each says it is not available with this agent, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from edgechat_tui.core.conversations import ConversationSummary
from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.ui.commands.host import CommandHost
from edgechat_tui.ui.library import Library, describe, unavailable
from edgechat_tui.ui.widgets.conversations import ConversationPanel

__all__ = ["LIBRARY_HANDLERS", "LibraryCommandHost", "panel_action"]

BUSY = "A reply is still coming: wait for it, or press Esc to stop it, then try again."


class LibraryCommandHost(CommandHost, Protocol):
    """The chat screen as these commands see it: a command host with a library."""

    @property
    def library(self) -> Library: ...
    @property
    def panel(self) -> ConversationPanel: ...

    def start_turn(self, text: str, *, action: str = "chat") -> bool: ...


def _library(host: CommandHost) -> Library:
    library = getattr(host, "library", None)
    assert isinstance(library, Library)
    return library


async def _ready_library(host: CommandHost, what: str) -> Library | None:
    """The library, or None after saying why it cannot be used now."""
    library = _library(host)
    if not host.session.ready:
        host.notify("Not connected yet: try again in a moment.", severity="warning", markup=False)
        return None
    if library.conversations is None:
        await host.say_error(*unavailable(what))
        return None
    return library


async def command_new(host: CommandHost, arg: str) -> None:
    library = await _ready_library(host, "Starting another conversation (/new)")
    if library is None:
        return
    if host.streaming:
        await host.say_error(BUSY)
        return
    await library.new()


async def command_chats(host: CommandHost, arg: str) -> None:
    library = await _ready_library(host, "The conversation list (/chats)")
    if library is None:
        return
    view = {"": "active", "archived": "archived", "trash": "trash"}.get(arg.strip().lower())
    if view is None:
        await host.say_error(f"/chats does not know {sanitize(arg)!r}.", "use it as: /chats [archived|trash]")
        return
    library.toggle_panel(view)  # type: ignore[arg-type]


async def command_title(host: CommandHost, arg: str) -> None:
    library = await _ready_library(host, "Titles (/title)")
    if library is None:
        return
    await library.set_title(arg)


async def command_search(host: CommandHost, arg: str) -> None:
    library = await _ready_library(host, "Search across conversations (/search)")
    if library is None or library.conversations is None:
        return
    try:
        hits = await library.conversations.search(arg)
    except EdgechatError as error:
        await host.say_error(error)
        return
    from edgechat_tui.ui.screens.search import SearchScreen

    def chosen(hit: Any) -> None:
        if hit is None:
            return
        host.run_worker(library.open(hit.chat, at_message=hit.message_id), group="command",
                        exit_on_error=False)

    host.app.push_screen(SearchScreen(arg, hits), chosen)


async def _turn_command(host: CommandHost, action: str, what: str) -> None:
    library = await _ready_library(host, what)
    if library is None:
        return
    if host.streaming:
        await host.say_error(BUSY)
        return
    start = getattr(host, "start_turn", None)
    if start is not None:
        start("", action=action)


async def command_regen(host: CommandHost, arg: str) -> None:
    await _turn_command(host, "regenerate", "Regenerating a reply (/regen)")


async def command_continue(host: CommandHost, arg: str) -> None:
    await _turn_command(host, "continue", "Continuing a reply (/continue)")


async def command_edit(host: CommandHost, arg: str) -> None:
    library = await _ready_library(host, "Editing a message (/edit)")
    if library is None or library.conversations is None:
        return
    if host.streaming:
        await host.say_error(BUSY)
        return
    if library.opening:
        await host.say_error("The conversation is being opened: /edit it in a moment.")
        return
    try:
        branch = await library.conversations.branch()
    except EdgechatError as error:
        await host.say_error(error)
        return
    question = next((item for item in reversed(branch) if item.message.role == "user"), None)
    if question is None:
        await host.say_error("There is no message to edit yet.", "send one first")
        return
    if host.prompt.text.strip() and host.prompt.text != question.message.content:
        await host.say_error("The input holds text: send or clear it first, then /edit again.",
                             "nothing was changed; your text stays in the input")
        return
    library.begin_edit(question.message.content)


LIBRARY_HANDLERS: dict[str, Callable[[CommandHost, str], Awaitable[None]]] = {
    "new": command_new,
    "chats": command_chats,
    "title": command_title,
    "search": command_search,
    "regen": command_regen,
    "edit": command_edit,
    "continue": command_continue,
}


# --- the list panel's keys --------------------------------------------------------------------


async def panel_action(host: CommandHost, action: str, summary: ConversationSummary | None) -> None:
    """What a key in the conversation list asks for (``ConversationPanel.Chosen``)."""
    library = _library(host)
    panel = library.host.panel
    conversations = library.conversations
    if action == "close":
        panel.close()
        host.prompt.focus()
        return
    if action == "view":
        library.refresh_list(panel.view)
        return
    if action == "highlight":
        if summary is not None:
            library.prefetch(summary)
        return
    if conversations is None or summary is None:
        if conversations is None:
            await host.say_error(*unavailable("The conversation list"))
        return
    if action == "open":
        if await library.open(summary.id):
            panel.close()
            host.prompt.focus()
        return
    if action == "rename":
        if summary.deleted_at is not None:
            host.notify("Restore it first (u): a conversation in the trash cannot be renamed.",
                        severity="warning", markup=False)
            return
        from edgechat_tui.ui.screens.ask_text import AskTextScreen

        def renamed(title: str | None) -> None:
            if title:
                host.run_worker(library.set_title(title, summary.id), group="command", exit_on_error=False)

        screen = AskTextScreen(f"Rename {describe(summary)} to:", sanitize(summary.title))
        host.app.push_screen(screen, renamed)
        return
    if action == "archive":
        await _change(host, library, summary, "archive")
        return
    if action == "restore":
        if not summary.archived and summary.deleted_at is None:
            host.notify("It is not archived or in the trash: nothing to restore.", severity="information",
                        markup=False)
            return
        await _change(host, library, summary, "restore")
        return
    if action == "delete":
        purge = summary.deleted_at is not None
        if purge:
            question = f"Delete {describe(summary)} for good?\nIt is in the trash; this cannot be undone."
        else:
            question = (f"Delete {describe(summary)}?\nIt goes to the trash for 30 days and can be "
                        "restored from there (/chats trash, then u).")

        def answered(yes: bool | None) -> None:
            if yes:
                host.run_worker(_change(host, library, summary, "purge" if purge else "delete"),
                                group="command", exit_on_error=False)
            else:
                host.status.set_detail("nothing was deleted")

        host.ask(question, yes="Delete for good" if purge else "Move to trash", no="Cancel",
                 answered=answered)


async def _change(host: CommandHost, library: Library, summary: ConversationSummary, what: str) -> None:
    conversations = library.conversations
    if conversations is None:
        return
    if host.streaming and library.current is not None and library.current.id == summary.id:
        await host.say_error(BUSY)
        return
    host.status.set_detail(None)  # a word left by an earlier answer ("nothing was deleted") is stale now
    try:
        if what == "archive":
            changed = await conversations.archive(summary.id)
        elif what == "restore":
            changed = await conversations.restore(summary.id)
        elif what == "delete":
            changed = await conversations.delete(summary.id)
        else:
            changed = await conversations.delete(summary.id, purge=True)
    except EdgechatError as error:
        await host.say_error(error)
        return
    name = describe(summary)
    if what == "archive":
        text = f"Archived {name}: /chats archived shows the archive, u there restores it."
    elif what == "restore":
        text = f"Restored {name}."
    elif what == "delete":
        until = f" until {changed.purge_at[:10]}" if changed is not None and changed.purge_at else ""
        text = f"Moved {name} to the trash{until}: /chats trash shows it, u there restores it."
    else:
        text = f"Deleted {name} for good."
    is_open = library.current is not None and library.current.id == summary.id
    if is_open and what in ("archive", "delete", "purge"):
        # The open conversation went away: a new one takes its place (the line says where it went).
        await library.new(left_gone=True)
    elif is_open and changed is not None:
        library.current = changed
        library.refresh_list()
        library.show_title()
    else:
        library.refresh_list()
    await host.say(text)

