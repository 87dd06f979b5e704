"""The dialogs the chat screen opens over the chat: help, a yes/no question, the model list, the
profile list, and the setup screen offered after the API refused the credentials. Each screen is
imported when it is first opened, not with the chat screen."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from edgechat_tui.core.errors import AuthError, EdgechatError

if TYPE_CHECKING:
    from textual.app import App

    from edgechat_tui.backends.local.catalog import Catalog
    from edgechat_tui.storage.users import UserSummary
    from edgechat_tui.ui.screens.model_picker import ModelPicker
    from edgechat_tui.ui.session import Session
    from edgechat_tui.ui.turn import TurnRunner

__all__ = ["ChatDialogs"]


class ChatDialogs:
    """What the chat screen offers its commands to ask the user (the ``CommandHost`` protocol's dialogs)."""

    app: App
    user: str
    session: Session
    turns: TurnRunner
    run_worker: Any
    run_command: Any

    def pick_profile(self, summaries: Sequence[UserSummary],
                     answered: Callable[[str | None], None]) -> None:
        """``/user`` with no name: the profiles in a list over the chat."""
        from edgechat_tui.ui.screens.profiles import ProfilePicker

        self.app.push_screen(ProfilePicker(summaries, current=self.user), answered)

    def action_help(self) -> None:
        from edgechat_tui.ui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen())

    def ask(self, question: str, *, yes: str, no: str, answered: Callable[[bool | None], None]) -> None:
        """A yes/no dialog over the chat (``/clear``)."""
        from edgechat_tui.ui.screens.confirm import ConfirmScreen

        self.app.push_screen(ConfirmScreen(question, yes=yes, no=no), answered)

    def pick_model(self, catalog: Catalog, *, current: str | None, chosen: Callable[[str | None], None],
                   refreshing: bool = False) -> ModelPicker:
        """The model list over the chat (``/model``); ``chosen`` gets the id, or None for Esc."""
        from edgechat_tui.ui.screens.model_picker import ModelPicker

        picker = ModelPicker(catalog, current=current, refreshing=refreshing)
        self.app.push_screen(picker, chosen)
        return picker

    @property
    def credentials_refused(self) -> bool:
        """The last turn failed because the API refused the local agent's credentials (401/403)."""
        return isinstance(self.turns.failure, AuthError) and not self.session.remote

    def _failure_offer(self, error: EdgechatError) -> str | None:
        """What a failed turn's notice offers besides Ctrl+R: new credentials, after a 401."""
        if isinstance(error, AuthError) and not self.session.remote:
            return "Press F2 (or /setup) to enter a new API token; the next message uses it."
        return None

    def action_setup(self) -> None:
        """F2 after a refused token: the setup screen, as ``/setup``."""
        from edgechat_tui.ui.commands.registry import Invocation, find_command

        self.run_worker(self.run_command(Invocation(find_command("setup"), "setup", "")),
                        group="command", exit_on_error=False)
