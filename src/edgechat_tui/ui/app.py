"""The edgechat Textual app: the chat screen, the agent behind it, the setup screen, the theme.

The first frame is drawn before anything slow happens: the agent is created in a thread (it
imports the HTTP client), the history is loaded after that, and nothing touches the network
until the user sends a message (a remote agent's health check aside, which runs in the
background too).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from textual.app import App
from textual.binding import Binding, BindingType
from textual.theme import Theme

from edgechat_tui.backends.base import Agent
from edgechat_tui.config.settings import Settings, update_config_file
from edgechat_tui.core.errors import EdgechatError, MissingCredentials
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.ui.screens.chat import ChatScreen

if TYPE_CHECKING:
    from textual.command import Provider


def _chat_commands() -> type[Provider]:
    # The palette's module (and Textual's) loads when the palette first opens, not at start-up.
    from edgechat_tui.ui.palette import ChatCommands

    return ChatCommands


def _create_agent(settings: Settings, user: str, warn: Callable[[str], None]) -> Agent:
    # Imported here, in the worker's thread: the HTTP client is not needed for the first frame.
    from edgechat_tui.backends.factory import create_agent

    return create_agent(settings, user, warn=warn)


class EdgechatApp(App[None]):
    """The chat TUI for ``user``, with ``settings`` from :func:`~edgechat_tui.config.settings.load_settings`.

    ``cursor_blink=False`` keeps screenshots identical from run to run (the snapshot tests).
    """

    TITLE = "edgechat"
    COMMANDS = App.COMMANDS | {_chat_commands}
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+q", "quit", "Quit", priority=True)]
    CSS = """
    Screen { background: $background; }
    Footer { background: $panel; }
    """

    def __init__(self, settings: Settings, user: str, *, cursor_blink: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self.settings = settings
        self.user = user
        self.agent: Agent | None = None
        #: /model and /system for this session: kept across /user, not saved.
        self.session_model: str | None = None
        self.session_system_prompt: str | None = None
        self.cursor_blink = cursor_blink
        #: Printed on the terminal once the app has exited (the setup screen's advice).
        self.exit_text: str | None = None
        self._saved_theme: str | None = None
        self._code_colours_loaded = False

    # --- the screen ---------------------------------------------------------------------------

    def get_default_screen(self) -> ChatScreen:
        settings = self.settings
        if settings.remote_url:
            mode, model = f"remote {urlsplit(settings.remote_url).hostname or ''}".strip(), None
        else:
            mode, model = "local", settings.model
        return ChatScreen(user=self.user, mode=mode, model=model)

    @property
    def chat(self) -> ChatScreen:
        """The chat screen (the default screen, below any dialog)."""
        screen = self.screen_stack[0]
        assert isinstance(screen, ChatScreen)
        return screen

    @property
    def system_prompt(self) -> str:
        if self.session_system_prompt is not None:
            return self.session_system_prompt
        return self.settings.system_prompt

    def on_mount(self) -> None:
        if not self.cursor_blink:
            self.chat.prompt.cursor_blink = False
        self._apply_saved_theme()
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        # After the first frame: creating the agent imports the HTTP client in a thread, which
        # competes with the drawing for the interpreter.
        self.call_after_refresh(self.run_worker, self._start(), group="agent", exclusive=True,
                                exit_on_error=False)

    async def _start(self) -> None:
        for warning in self.settings.warnings:
            self.chat.warn(warning)
        await self.connect(self.user)

    # --- the agent ----------------------------------------------------------------------------

    async def connect(self, user: str) -> bool:
        """Create the agent for ``user`` and show its conversation. False when that failed (said why)."""
        chat = self.chat
        remote = bool(self.settings.remote_url)
        chat.connecting(f"connecting to {urlsplit(self.settings.remote_url).hostname}…" if remote
                        else "starting…")
        try:
            agent = await asyncio.to_thread(_create_agent, self.settings, user, self.warn)
        except MissingCredentials:
            self._ask_for_credentials()
            return False
        except EdgechatError as error:
            await chat.say_error(error)
            await chat.show_held_warnings()
            chat.status.set_state("not connected", "error")
            return False
        self._apply_session_overrides(agent)
        if agent.info.mode == "remote":
            try:
                await agent.check()
            except EdgechatError as error:
                await chat.say_error(error.message, error.hint)
                # Keep the agent: the server may come back, and the next message will say so.
        old, self.agent, self.user = self.agent, agent, user
        await chat.attach(agent)
        if old is not None:
            await old.aclose()
        # What exists now (modules, widgets, the history) lives as long as the app: keep it out
        # of the garbage collector's scans, whose pauses would otherwise land while a reply streams.
        gc.freeze()
        if not self._code_colours_loaded:
            self._code_colours_loaded = True
            self.run_worker(self._preload_code_colours(), group="preload", exit_on_error=False)
        return True

    async def _preload_code_colours(self) -> None:
        # Once the conversation is shown, so that the first reply with code is coloured at once.
        from edgechat_tui.ui.widgets.reply import preload_code_colours

        await preload_code_colours()

    async def switch_user(self, user: str) -> bool:
        """Use another profile in place (``/user NAME``)."""
        return await self.connect(user)

    def _apply_session_overrides(self, agent: Agent) -> None:
        try:
            if self.session_model:
                agent.set_model(self.session_model)
            if self.session_system_prompt is not None:
                agent.set_system_prompt(self.session_system_prompt)
        except EdgechatError:
            pass  # a remote agent picks its own: the header shows what it says

    def warn(self, message: str) -> None:
        """Shows an agent's warning (a damaged history line, say) in the pane. Safe from any thread."""
        try:
            self.call_from_thread(self.chat.warn, message)
        except RuntimeError:  # already on the app's thread (or the app is not running)
            if self.is_running:
                self.chat.warn(message)

    async def action_quit(self) -> None:
        """Quit; a reply still streaming is stopped first, so it is saved (marked stopped)."""
        worker = self.chat.turn.worker if self.chat.turn is not None else None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(Exception):
                await worker.wait()
        await self.close_agent()
        self.exit()

    async def close_agent(self) -> None:
        agent, self.agent = self.agent, None
        if agent is not None:
            await agent.aclose()

    # --- first run ----------------------------------------------------------------------------

    def _ask_for_credentials(self) -> None:
        from edgechat_tui.ui.screens.setup import ENV_ADVICE, SetupScreen

        def done(settings: Settings | None) -> None:
            if settings is None:
                self.exit_text = "edgechat needs a Cloudflare account id and API token.\n" + ENV_ADVICE
                self.exit(return_code=MissingCredentials.exit_code)
                return
            self.settings = settings
            self.run_worker(self.connect(self.user), group="agent", exclusive=True, exit_on_error=False)

        self.chat.status.set_state("setup needed", "warning")
        self.push_screen(SetupScreen(self.settings), done)

    # --- theme --------------------------------------------------------------------------------

    def _apply_saved_theme(self) -> None:
        name = self.settings.theme
        if not name:
            self._saved_theme = self.theme
            return
        if name in self.available_themes:
            self._saved_theme = name
            self.theme = name
        else:
            self._saved_theme = self.theme
            self.chat.warn(f"The theme {name} in the config is not one edgechat knows; "
                           f"using {self.theme}. /theme lists them.")

    def _theme_changed(self, theme: Theme) -> None:
        """Save a theme the user chose (/theme, or the palette's "Change theme") in the config."""
        name = theme.name
        if name == self._saved_theme:
            return
        self._saved_theme = name

        async def save() -> None:
            try:
                await asyncio.to_thread(update_config_file, self.settings.config_path, {"theme": name})
            except EdgechatError as error:
                self.notify(f"The theme was not saved: {error}", severity="warning", markup=False)

        self.run_worker(save(), group="theme-save", exit_on_error=False)


def run_tui(settings: Settings, user: str) -> int:
    """Run the TUI until the user quits. Returns the process exit code."""
    app = EdgechatApp(settings, user)
    app.run()
    if app.exit_text:
        print(sanitize(app.exit_text), file=sys.stderr)
    return app.return_code or 0
