"""The commands: the registry of slash commands and palette entries (pure), what each does, and the
command palette's provider. They are typed against :class:`~edgechat_tui.ui.commands.host.CommandHost`,
a protocol the chat screen satisfies, and never import a screen or the app.

Only the registry is imported here: it is all the first frame needs (the input's completion). The
handlers and the palette load with the chat screen and the palette.
"""

from edgechat_tui.ui.commands.registry import (
    PALETTE_ACTIONS,
    SLASH_COMMANDS,
    Invocation,
    PaletteAction,
    SlashCommand,
    Suggestion,
    find_command,
    invocation_problem,
    message_text,
    parse_slash,
    suggest,
)

__all__ = [
    "PALETTE_ACTIONS",
    "SLASH_COMMANDS",
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
