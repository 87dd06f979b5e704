"""The command palette (Ctrl+P): the slash commands' actions, found by typing part of their name.

Commands that need an argument (``/user NAME``, ``/system TEXT``) put the command in the input,
ready for the argument; the rest run at once. Themes are Textual's own "Change theme" entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from edgechat_tui.ui.slash import Invocation, find_command


@dataclass(frozen=True, slots=True)
class PaletteAction:
    title: str
    help: str
    #: A command line to run, or (when it ends in a space) to put in the input for completion.
    line: str
    #: Only offered when this is true of the chat screen.
    when: Callable[[object], bool] | None = None


def _streaming(screen: object) -> bool:
    return bool(getattr(screen, "streaming", False))


def _has_failed(screen: object) -> bool:
    return getattr(screen, "failed_text", None) is not None


PALETTE_ACTIONS: tuple[PaletteAction, ...] = (
    PaletteAction("Help", "the commands and keys", "/help"),
    PaletteAction("Stop the reply", "keep what arrived, marked stopped", "stop", _streaming),
    PaletteAction("Retry the failed message", "send it again", "/retry", _has_failed),
    PaletteAction("Clear the conversation", "archive it and start a new one (asks first)", "/clear"),
    PaletteAction("Switch user…", "/user NAME: another profile", "/user "),
    PaletteAction("Show the model", "and the models edgechat knows", "/model"),
    PaletteAction("Change the model…", "/model ID: for this session", "/model "),
    PaletteAction("Show the system prompt", "", "/system"),
    PaletteAction("Set the system prompt…", "/system TEXT: for this session", "/system "),
    PaletteAction("Export as Markdown", "to a new file in the current directory", "/export"),
    PaletteAction("Export as JSON", "to a new file in the current directory", "export-json"),
    PaletteAction("Copy the last reply", "to the clipboard (OSC 52)", "/copy"),
    PaletteAction("Load earlier messages", "mount the previous page of the conversation", "load-earlier"),
    PaletteAction("Jump to the newest message", "", "latest"),
    PaletteAction("Quit", "leave edgechat", "/quit"),
)


class ChatCommands(Provider):
    """Offers :data:`PALETTE_ACTIONS` when the palette is opened over the chat screen."""

    def _actions(self) -> list[PaletteAction]:
        from edgechat_tui.ui.screens.chat import ChatScreen

        screen = self.screen
        if not isinstance(screen, ChatScreen):
            return []
        return [action for action in PALETTE_ACTIONS if action.when is None or action.when(screen)]

    async def discover(self) -> Hits:
        for action in self._actions():
            yield DiscoveryHit(action.title, partial(self._run, action), help=action.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action in self._actions():
            score = max(matcher.match(action.title), matcher.match(action.line) * 0.8)
            if score > 0:
                yield Hit(score, matcher.highlight(action.title), partial(self._run, action),
                          text=action.title, help=action.help)

    async def _run(self, action: PaletteAction) -> None:
        from edgechat_tui.ui.screens.chat import ChatScreen

        screen = self.screen
        if not isinstance(screen, ChatScreen):
            return
        if action.line == "stop":
            screen.action_stop()
        elif action.line == "load-earlier":
            await screen.action_load_earlier()
        elif action.line == "latest":
            await screen.action_latest()
        elif action.line == "export-json":
            from edgechat_tui.storage.export import default_export_path

            path = default_export_path(screen.user).with_suffix(".json")
            await screen.run_command(Invocation(find_command("export"), "export", str(path)))
        elif action.line.endswith(" "):
            screen.prompt.set_text(action.line)
            screen.prompt.focus()
        else:
            name, _, arg = action.line[1:].partition(" ")
            await screen.run_command(Invocation(find_command(name), name, arg))
