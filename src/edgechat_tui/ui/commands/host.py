"""What the commands need of the screen they run on: a small protocol the chat screen satisfies.

The commands and the palette are typed against this, not against the chat screen (or the app), so
they import neither: the screen imports the commands, never the other way round.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from textual.app import App
from textual.message import Message as TextualMessage

from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.core.messages import Message
from edgechat_tui.ui.clipboard import Clipboard
from edgechat_tui.ui.session import Session
from edgechat_tui.ui.widgets.chat_log import ChatLog
from edgechat_tui.ui.widgets.prompt import PromptArea
from edgechat_tui.ui.widgets.status import StatusLine

if TYPE_CHECKING:
    from edgechat_tui.backends.local.catalog import Catalog
    from edgechat_tui.storage.users import UserSummary
    from edgechat_tui.ui.screens.model_picker import ModelPicker

__all__ = ["CommandHost", "agent_or_say", "conversation_or_shown"]


@runtime_checkable
class CommandHost(Protocol):
    """The chat screen, as the commands see it."""

    session: Session
    clipboard: Clipboard

    @property
    def app(self) -> App[Any]: ...
    @property
    def user(self) -> str: ...
    @property
    def streaming(self) -> bool: ...
    @property
    def failed_text(self) -> str | None: ...
    @property
    def chat_log(self) -> ChatLog: ...
    @property
    def prompt(self) -> PromptArea: ...
    @property
    def status(self) -> StatusLine: ...

    async def say(self, text: str, *, warning: bool = False) -> None: ...
    async def say_error(self, error: EdgechatError | str, hint: str | None = None) -> None: ...
    def retry(self) -> bool: ...
    def messages_shown(self) -> list[Message]: ...
    def refresh_context(self, next_text: str = "") -> None: ...
    def show_ready(self, detail: str | None = None) -> None: ...
    def show_info_header(self) -> None: ...
    def post_message(self, message: TextualMessage) -> bool: ...
    def request_switch(self, user: str) -> None: ...
    def notify(self, message: str, **kwargs: Any) -> None: ...
    def run_worker(self, work: Awaitable[Any], **kwargs: Any) -> Any: ...
    def ask(self, question: str, *, yes: str, no: str, answered: Callable[[bool | None], None]) -> None: ...
    def pick_model(self, catalog: Catalog, *, current: str | None, chosen: Callable[[str | None], None],
                   refreshing: bool = False) -> ModelPicker: ...

    def pick_profile(self, summaries: Sequence[UserSummary],
                     answered: Callable[[str | None], None]) -> None: ...
    def action_help(self) -> None: ...
    def action_stop(self) -> None: ...
    async def action_load_earlier(self) -> None: ...
    async def action_latest(self) -> None: ...
    async def action_first(self) -> None: ...


def agent_or_say(host: CommandHost) -> Any:
    """The session's agent, or None (and a notice) while it is still connecting."""
    session = host.session
    if not session.ready:
        host.notify("Not connected yet: try again in a moment.", severity="warning", markup=False)
        return None
    return session.agent


async def conversation_or_shown(host: CommandHost, agent: Any) -> tuple[list[Message], bool] | None:
    """The stored conversation, or this session's messages when the agent does not share it (the bool
    says which: True for the session's own). None after saying why the history could not be read."""
    try:
        messages = await agent.history()
    except EdgechatError as error:
        await host.say_error(error)
        return None
    if messages is None:
        return host.messages_shown(), True
    return messages, False
