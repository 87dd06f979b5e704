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
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.theme import Theme

from edgechat_tui.backends.base import Agent
from edgechat_tui.config.settings import Settings, update_config_file
from edgechat_tui.core.errors import EdgechatError, MissingCredentials
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.ui.messages import OpenSetup, QuitRequested, SwitchUser
from edgechat_tui.ui.screens.chat import ChatScreen
from edgechat_tui.ui.session import Session

__all__ = ["EdgechatApp", "run_tui"]

if TYPE_CHECKING:
    from textual.command import Provider

    from edgechat_tui.storage.tail import EarlyTail


def _chat_commands() -> type[Provider]:
    # The palette's module (and Textual's) loads when the palette first opens, not at start-up.
    from edgechat_tui.ui.commands.palette import ChatCommands

    return ChatCommands


def _create_agent(settings: Settings, user: str, warn: Callable[[str], None]) -> Agent:
    # Imported here, in the worker's thread: the HTTP client is not needed for the first frame.
    from edgechat_tui.backends.factory import create_agent

    return create_agent(settings, user, warn=warn)


def _collect_again() -> None:
    """After the first frame: garbage collection back on, if start-up turned it off (``cli/entry``),
    with what start-up made kept out of its scans (it lives as long as the app)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _load_commands() -> None:
    from edgechat_tui.ui.commands import handlers  # noqa: F401 - loaded ahead of the first command


class EdgechatApp(App[None]):
    """The chat TUI for ``user``, with ``settings`` from :func:`~edgechat_tui.config.settings.load_settings`.

    The app owns the :class:`~edgechat_tui.ui.session.Session` and is the only one that moves it
    from one agent to another; the chat screen is given it and shows it, and asks for a switch or
    to quit with a message (:class:`~edgechat_tui.ui.messages.SwitchUser`, ``QuitRequested``).

    ``cursor_blink=False`` keeps screenshots identical from run to run (the snapshot tests).
    """

    TITLE = "edgechat"
    COMMANDS = App.COMMANDS | {_chat_commands}
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+q", "quit", "Quit", priority=True)]
    CSS = """
    Screen { background: $background; }
    Footer { background: $panel; }
    """

    def get_driver_class(self) -> Any:
        # Input bytes that are not UTF-8 become U+FFFD instead of ending the app (ui/terminal_input.py).
        from edgechat_tui.ui.terminal_input import lenient_input

        return lenient_input(super().get_driver_class())

    def __init__(self, settings: Settings, user: str, *, cursor_blink: bool = True,
                 handle_signals: bool = False, early: EarlyTail | None = None,
                 chat: str | None = None, new: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        #: The conversation's newest messages, read in a thread since before Textual loaded
        #: (:mod:`edgechat_tui.ui.early`): drawn in the first frame, until the store's view is shown.
        self._early = early
        #: SIGTERM and SIGHUP end the app as Ctrl+Q does (``run_tui`` sets it; a test's app,
        #: sharing the test's event loop, leaves the process's signals alone).
        self.handle_signals = handle_signals
        self.session = Session(settings, user)
        self.session.start_chat, self.session.start_new = chat, new  # --chat ID, --new
        self.cursor_blink = cursor_blink
        #: Printed on the terminal once the app has exited (the setup screen's advice).
        self.exit_text: str | None = None
        self._saved_theme: str | None = None
        self._code_colours_loaded = False
        self._quitting = False

    # --- the screen ---------------------------------------------------------------------------

    def get_default_screen(self) -> ChatScreen:
        return ChatScreen(self.session, early=self._early)

    @property
    def chat(self) -> ChatScreen:
        """The chat screen (the default screen, below any dialog)."""
        screen = self.screen_stack[0]
        assert isinstance(screen, ChatScreen)
        return screen

    @property
    def settings(self) -> Settings:
        return self.session.settings

    @property
    def agent(self) -> Agent | None:
        """The session's agent (None before the first exists, and once closed)."""
        return self.session.agent

    @property
    def user(self) -> str:
        return self.session.user

    def on_mount(self) -> None:
        if self.handle_signals:
            self._handle_end_signals()
        if not self.cursor_blink:
            self.chat.prompt.cursor_blink = False
        self._apply_saved_theme()
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.call_after_refresh(_collect_again)
        # After the first frame: creating the agent imports the HTTP client in a thread, which
        # competes with the drawing for the interpreter.
        self.call_after_refresh(self.run_worker, self._start(), group="agent", exclusive=True,
                                exit_on_error=False)

    async def _start(self) -> None:
        for warning in self.settings.warnings:
            self.chat.warn(warning)
        await self.connect(self.session.user)

    # --- messages from the screens ------------------------------------------------------------

    def on_switch_user(self, message: SwitchUser) -> None:
        async def switch() -> None:
            try:
                if await self.connect(message.user):
                    await self.chat.say(f"Switched to the profile {message.user}.")
            finally:
                self.chat.switch_finished()

        self.run_worker(switch(), group="agent", exclusive=True, exit_on_error=False)

    async def on_quit_requested(self, message: QuitRequested) -> None:
        await self.action_quit()

    def on_open_setup(self, message: OpenSetup) -> None:
        self._open_setup()

    # --- the agent ----------------------------------------------------------------------------

    async def connect(self, user: str) -> bool:
        """Create the agent for ``user`` and show its conversation. False when that failed (said why).

        From the start until the conversation is shown the session is not ready: nothing is sent.
        """
        chat, session = self.chat, self.session
        session.begin_switch()
        chat.connecting(f"connecting to {session.remote_host}…" if session.remote else "starting…")
        try:
            agent = await asyncio.to_thread(_create_agent, self.settings, user, self.warn)
        except MissingCredentials:
            session.abandon_switch()
            self._ask_for_credentials()
            return False
        except EdgechatError as error:
            session.abandon_switch()
            await chat.say_error(error)
            await chat.show_held_warnings()
            if session.ready:
                chat.show_ready()
            else:
                chat.status.set_state("not connected", "error")
            return False
        session.apply_overrides(agent)
        if agent.info.mode == "remote":
            try:
                await agent.check()
            except EdgechatError as error:
                await chat.say_error(error.message, error.hint)
                # Keep the agent: the server may come back, and the next message will say so.
        old = session.attach(agent, user)
        try:
            await session.catalog.load_cached()  # the cached model list: windows and prices (no network)
            await chat.show_conversation()
        finally:
            session.mark_ready()
        chat.show_ready()
        chat.refresh_context()
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
        # Once the conversation is shown, so that the first reply with code is coloured at once;
        # and the commands, which the first frame does not need, before the first Enter.
        await asyncio.to_thread(_load_commands)
        from edgechat_tui.ui.widgets.reply import preload_code_colours

        await preload_code_colours()
        # The replies the first frame drew from the render cache: now with the renderer's widget.
        await self.chat.chat_log.upgrade_early_replies()

    def warn(self, message: str) -> None:
        """Shows an agent's warning (a damaged history line, say) in the pane. Safe from any thread."""
        try:
            self.call_from_thread(self.chat.warn, message)
        except RuntimeError:  # already on the app's thread (or the app is not running)
            if self.is_running:
                self.chat.warn(message)

    def _handle_end_signals(self) -> None:
        """SIGTERM and SIGHUP (the terminal closed) end the app as Ctrl+Q does: a reply under way
        is stopped and saved, marked stopped, before the process exits. Without this the default
        action killed the process on the spot and the turn was lost."""
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(number, self._on_end_signal, number)

    def _on_end_signal(self, number: int) -> None:
        if self._quitting:
            return
        self._quitting = True

        async def end() -> None:
            try:
                await self.stop_turn_and_close()
            finally:
                self.exit(return_code=128 + number)

        self.run_worker(end(), group="quit", exit_on_error=False)

    async def action_quit(self) -> None:
        """Quit; a reply still streaming is stopped first, so it is saved (marked stopped). The newest
        replies' lines go to the render cache, for the next start's first frame."""
        await self.stop_turn_and_close()
        self.chat.chat_log.save_drawn()
        self.exit()

    async def stop_turn_and_close(self) -> None:
        """Stop a reply under way (the agent saves it, marked stopped) and close the agent."""
        turn = self.chat.turn
        worker = turn.worker if turn is not None else None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(Exception):
                await worker.wait()
        await self.close_agent()

    async def close_agent(self) -> None:
        agent = self.session.detach()
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
            self.session.settings = settings
            self.run_worker(self.connect(self.session.user), group="agent", exclusive=True,
                            exit_on_error=False)

        self.chat.status.set_state("setup needed", "warning")
        self.push_screen(SetupScreen(self.settings), done)

    def _open_setup(self) -> None:
        """``/setup`` inside the app: new credentials, checked and saved, then the agent again.

        The profile stays; the chat's input is untouched and the message to retry is kept (a new
        agent of the same profile would otherwise forget it). Esc goes back to the chat as it was.
        """
        from edgechat_tui.ui.screens.setup import SetupScreen, env_override_notice

        chat = self.chat

        def done(settings: Settings | None) -> None:
            if settings is None:
                self.run_worker(chat.say("Setup closed: nothing was changed."), exit_on_error=False)
                return
            warning = env_override_notice(self.session.settings)  # where the old ones came from
            self.session.settings = settings

            async def reconnect() -> None:
                retry = chat.failed_text
                try:
                    if await self.connect(self.session.user):
                        chat.turns.failure = None  # no longer "the credentials were refused": F2 goes
                        await chat.say(f"New credentials saved to {settings.config_path}; the next "
                                       "message uses them.")
                        if warning:
                            await chat.say(warning, warning=True)
                finally:
                    if retry is not None and chat.failed_text is None:
                        chat.turns.retry_text = retry
                        chat.refresh_bindings()

            self.run_worker(reconnect(), group="agent", exclusive=True, exit_on_error=False)

        self.push_screen(SetupScreen(self.settings, in_app=True), done)

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


def run_tui(settings: Settings, user: str, *, early: EarlyTail | None = None, chat: str | None = None,
            new: bool = False) -> int:
    """Run the TUI until the user quits. Returns the process exit code.

    ``early``: the newest messages being read (:func:`~edgechat_tui.ui.early.start_early_tail`);
    ``chat``/``new``: ``--chat ID``/``--new``.
    """
    app = EdgechatApp(settings, user, handle_signals=True, early=early, chat=chat, new=new)
    app.run()
    if app.exit_text:
        print(sanitize(app.exit_text), file=sys.stderr)
    return app.return_code or 0
