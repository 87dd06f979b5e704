"""The registry of commands: the slash commands (how they are written, parsed, completed) and the
palette's entries.

Pure Python (no Textual), so the parsing and completion rules are tested on their own. A line that
begins with ``/`` is a command; one that begins with ``//`` is a message that begins with ``/``.
What each command does is in :mod:`~edgechat_tui.ui.commands.handlers`; the palette's provider,
which offers :data:`PALETTE_ACTIONS`, in :mod:`~edgechat_tui.ui.commands.palette`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "PALETTE_ACTIONS",
    "SLASH_COMMANDS",
    "ArgKind",
    "Invocation",
    "PaletteAction",
    "SlashCommand",
    "Suggestion",
    "find_command",
    "invocation_problem",
    "message_text",
    "parse_slash",
    "suggest",
]

ArgKind = Literal["none", "optional", "required"]


@dataclass(frozen=True, slots=True)
class SlashCommand:
    """One command: its name, how it is written, what it does, and whether it takes an argument."""

    name: str
    usage: str
    summary: str
    arg: ArgKind = "none"


SLASH_COMMANDS: tuple[SlashCommand, ...] = (
    SlashCommand("help", "/help", "list the commands and keys"),
    SlashCommand("clear", "/clear", "archive this conversation and start a new one (asks first)"),
    SlashCommand("new", "/new", "start a new conversation (this one stays in the list)"),
    SlashCommand("chats", "/chats [archived|trash]", "the conversation list (also Ctrl+B)", "optional"),
    SlashCommand("title", "/title TEXT", "set this conversation's title", "required"),
    SlashCommand("search", "/search TEXT", "find messages in every conversation", "required"),
    SlashCommand("regen", "/regen", "a new version of the last reply (also Ctrl+G)"),
    SlashCommand("edit", "/edit", "change your last message; sending it makes a branch"),
    SlashCommand("continue", "/continue", "go on with a reply that stopped (max_tokens, or Esc)"),
    SlashCommand("user", "/user [NAME]", "switch to another profile (without a name: pick one)",
                 "optional"),
    SlashCommand("model", "/model [ID]", "choose from your account's models, or use ID, for this session",
                 "optional"),
    SlashCommand("usage", "/usage",
                 "tokens and estimated cost: this conversation's, and today's in every one"),
    SlashCommand("system", "/system [TEXT]", "show the system prompt, or set it for this session",
                 "optional"),
    SlashCommand("export", "/export [PATH]", "save the conversation as Markdown (.json: as JSON)",
                 "optional"),
    SlashCommand("copy", "/copy [N]", "copy the last reply's Markdown (N: the Nth from the newest)",
                 "optional"),
    SlashCommand("retry", "/retry", "send the message that failed again"),
    SlashCommand("theme", "/theme [NAME]", "show the colour theme, or change it (saved)", "optional"),
    SlashCommand("setup", "/setup", "enter the Cloudflare account id and API token (checked, saved)"),
    SlashCommand("quit", "/quit", "leave edgechat"),
)
_BY_NAME = {command.name: command for command in SLASH_COMMANDS}


@dataclass(frozen=True, slots=True)
class Invocation:
    """A command line as typed: the command (None when unknown), the name given, and the argument."""

    command: SlashCommand | None
    name: str
    arg: str


def parse_slash(text: str) -> Invocation | None:
    """The command in ``text``, or None when ``text`` is a message.

    Leading and trailing blanks are ignored; the argument is the rest of the text after the name,
    stripped (so ``/system`` text may hold several lines).
    """
    stripped = text.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return None
    head, _, rest = stripped[1:].partition(" ")
    name, _, more = head.partition("\n")
    arg = (more + (" " + rest if rest else "")).strip() if more else rest.strip()
    return Invocation(_BY_NAME.get(name.lower()), name, arg)


def message_text(text: str) -> str:
    """The message to send for ``text``: a leading ``//`` stands for a literal ``/``."""
    stripped = text.lstrip()
    return stripped[1:] if stripped.startswith("//") else text


def find_command(name: str) -> SlashCommand | None:
    return _BY_NAME.get(name.lower().lstrip("/"))


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A completion: what the list shows, what replaces the input, and a short description."""

    label: str
    replacement: str
    summary: str = ""
    #: Accepting it should run it at once (a command that takes no argument).
    complete: bool = False


def suggest(
    text: str,
    *,
    themes: Iterable[str] = (),
    models: Iterable[str] = (),
    limit: int = 12,
) -> list[Suggestion]:
    """Completions for a partly typed command line; empty when ``text`` is not one.

    ``/mo`` suggests ``/model``; ``/theme dr`` suggests the theme names that contain ``dr``;
    ``/model @cf/me`` suggests known model ids.
    """
    if "\n" in text or not text.startswith("/") or text.startswith("//"):
        return []
    head, space, partial = text[1:].partition(" ")
    if not space:
        prefix = head.lower()
        return [
            Suggestion(
                label=command.usage,
                replacement=f"/{command.name}" + ("" if command.arg == "none" else " "),
                summary=command.summary,
                complete=command.arg == "none",
            )
            for command in SLASH_COMMANDS
            if command.name.startswith(prefix)
        ][:limit]
    command = find_command(head)
    if command is None:
        return []
    candidates: Sequence[str]
    if command.name == "theme":
        candidates = sorted(themes)
    elif command.name == "model":
        candidates = sorted(models)
    else:
        return []
    typed = partial.strip()
    needle = typed.lower()
    if typed in candidates and not any(name != typed and needle in name.lower() for name in candidates):
        return []  # typed in full, and nothing else matches: nothing to offer
    matches = [name for name in candidates if needle in name.lower()]
    # What was typed in full comes first (Enter runs it, not a longer name that contains it), then
    # the names that start with it.
    matches.sort(key=lambda name: (name != typed, not name.lower().startswith(needle), name))
    return [
        Suggestion(label=name, replacement=f"/{command.name} {name}", complete=True)
        for name in matches[:limit]
    ]


def invocation_problem(invocation: Invocation) -> tuple[str, str] | None:
    """Why a command line cannot run, as (message, hint); None when it can."""
    command = invocation.command
    if command is None:
        return (f"Unknown command /{invocation.name}.",
                "type /help for the list; to send a message that begins with /, start it with //")
    if command.arg == "required" and not invocation.arg:
        return f"/{command.name} needs an argument.", f"use it as: {command.usage}"
    if command.arg == "none" and invocation.arg:
        return f"/{command.name} takes no argument.", f"use it as: {command.usage}"
    return None


# --- the palette's entries ------------------------------------------------------------------------


class _ScreenState(Protocol):
    """What a palette entry's condition looks at (the chat screen has it)."""

    @property
    def streaming(self) -> bool: ...
    @property
    def failed_text(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class PaletteAction:
    title: str
    help: str
    #: A command line to run, or (when it ends in a space) to put in the input for completion;
    #: or the name of a screen action (``stop``, ``load-earlier``, ``latest``, ``first``, ``export-json``).
    line: str
    #: Only offered when this is true of the chat screen.
    when: Callable[[_ScreenState], bool] | None = None


def _streaming(screen: _ScreenState) -> bool:
    return bool(screen.streaming)


def _has_failed(screen: _ScreenState) -> bool:
    return screen.failed_text is not None


PALETTE_ACTIONS: tuple[PaletteAction, ...] = (
    PaletteAction("Help", "the commands and keys", "/help"),
    PaletteAction("Stop the reply", "keep what arrived, marked stopped", "stop", _streaming),
    PaletteAction("Retry the failed message", "send it again", "/retry", _has_failed),
    PaletteAction("Clear the conversation", "archive it and start a new one (asks first)", "/clear"),
    PaletteAction("New conversation", "this one stays in the list", "/new"),
    PaletteAction("Conversations", "the list: open, rename, archive, restore, delete", "/chats"),
    PaletteAction("Archived conversations", "the archive, to read or restore", "/chats archived"),
    PaletteAction("Search conversations…", "/search TEXT: every conversation", "/search "),
    PaletteAction("Set the title…", "/title TEXT", "/title "),
    PaletteAction("Regenerate the last reply", "a new version, the old one kept", "/regen"),
    PaletteAction("Edit the last message", "sending it makes a branch", "/edit"),
    PaletteAction("Continue the reply", "go on with a reply that stopped", "/continue"),
    PaletteAction("Switch user…", "/user NAME: another profile", "/user "),
    PaletteAction("Choose a model", "from your account's models: window, price, function calls", "/model"),
    PaletteAction("Pick a profile", "the profiles on this machine, to switch to", "/user"),
    PaletteAction("Set up the credentials", "the account id and API token (checked, then saved)", "/setup"),
    PaletteAction("Change the model…", "/model ID: for this session", "/model "),
    PaletteAction("Show usage and cost", "tokens, neurons, dollars: this conversation and today", "/usage"),
    PaletteAction("Show the system prompt", "", "/system"),
    PaletteAction("Set the system prompt…", "/system TEXT: for this session", "/system "),
    PaletteAction("Export as Markdown", "to a new file in the current directory", "/export"),
    PaletteAction("Export as JSON", "to a new file in the current directory", "export-json"),
    PaletteAction("Copy the last reply", "its Markdown, to the clipboard", "/copy"),
    PaletteAction("Load earlier messages", "mount the previous page of the conversation", "load-earlier"),
    PaletteAction("Jump to the newest message", "", "latest"),
    PaletteAction("Jump to the first message", "the start of the conversation (Ctrl+Home)", "first"),
    PaletteAction("Quit", "leave edgechat", "/quit"),
)
