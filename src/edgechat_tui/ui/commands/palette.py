"""The command palette (Ctrl+P): the slash commands' actions, found by typing part of their name.

Commands that need an argument (``/user NAME``, ``/system TEXT``) put the command in the input,
ready for the argument; the rest run at once. Themes are Textual's own "Change theme" entry.
"""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from edgechat_tui.ui.commands.handlers import run_command
from edgechat_tui.ui.commands.host import CommandHost
from edgechat_tui.ui.commands.registry import PALETTE_ACTIONS, Invocation, PaletteAction, find_command

__all__ = ["ChatCommands"]


class ChatCommands(Provider):
    """Offers :data:`~edgechat_tui.ui.commands.registry.PALETTE_ACTIONS` over the chat screen."""

    def _actions(self) -> list[PaletteAction]:
        screen = self.screen
        if not isinstance(screen, CommandHost):
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
        screen = self.screen
        if not isinstance(screen, CommandHost):
            return
        if action.line == "stop":
            screen.action_stop()
        elif action.line == "load-earlier":
            await screen.action_load_earlier()
        elif action.line == "latest":
            await screen.action_latest()
        elif action.line == "first":
            await screen.action_first()
        elif action.line == "export-json":
            from edgechat_tui.storage.export import default_export_path

            path = default_export_path(screen.user).with_suffix(".json")
            await run_command(screen, Invocation(find_command("export"), "export", str(path)))
        elif action.line.endswith(" "):
            screen.prompt.set_text(action.line)
            screen.prompt.focus()
        else:
            name, _, arg = action.line[1:].partition(" ")
            await run_command(screen, Invocation(find_command(name), name, arg))
