"""What each slash command does on the chat screen (mixed into :class:`ChatScreen`).

Every result is said in the chat pane as a notice; every failure as an error with its hint. Text
from the user, the agent or the disk is shown through ``Content``, never markup.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from edgechat_tui.core.errors import EdgechatError, InvalidUserId
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.ui.slash import Invocation, invocation_problem

if TYPE_CHECKING:
    from edgechat_tui.backends.base import Agent
    from edgechat_tui.ui.app import EdgechatApp

BUSY = "A reply is still coming: wait for it, or press Esc to stop it, then try again."


class ChatCommandsMixin:
    """The ``/command`` handlers. ``self`` is the :class:`~edgechat_tui.ui.screens.chat.ChatScreen`."""

    @property
    def edgechat(self) -> EdgechatApp:
        return self.app

    async def run_command(self, invocation: Invocation) -> None:
        """Run a parsed command line, or say why it cannot run. The caller clears the input."""
        problem = invocation_problem(invocation)
        if problem is not None:
            await self.say_error(*problem)
            return
        assert invocation.command is not None
        handler = getattr(self, f"command_{invocation.command.name}")
        await handler(invocation.arg)

    def _agent_or_say(self) -> Agent | None:
        if self.agent is None:
            self.notify("Not connected yet: try again in a moment.", severity="warning", markup=False)
        return self.agent

    # --- the commands -------------------------------------------------------------------------

    async def command_help(self, arg: str) -> None:
        self.action_help()

    async def command_quit(self, arg: str) -> None:
        await self.edgechat.action_quit()

    async def command_retry(self, arg: str) -> None:
        if self.failed_text is None:
            await self.say("Nothing to retry: no message has failed.")
            return
        self.retry()

    async def command_clear(self, arg: str) -> None:
        if self.streaming:
            await self.say_error(BUSY)
            return
        agent = self._agent_or_say()
        if agent is None:
            return
        if not agent.info.can_reset:
            await self.say_error("This agent cannot start a new conversation.",
                                 "its server does not offer reset; the conversation stays as it is")
            return
        from edgechat_tui.ui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._reset_conversation(), group="command", exit_on_error=False)
            else:
                self.status.set_detail("/clear cancelled: nothing changed")

        question = (f"Archive {self.user}'s conversation and start a new one?\n"
                    "The messages are kept in an archive, not deleted.")
        self.app.push_screen(ConfirmScreen(question, yes="Archive", no="Cancel"), answered)

    async def _reset_conversation(self) -> None:
        agent = self.agent
        if agent is None:
            return
        try:
            archived = await agent.reset()
        except EdgechatError as error:
            await self.say_error(error)
            return
        await self.chat_log.show_conversation([], user=self.user)
        where = f" to {archived}" if archived else ""
        await self.say(f"Conversation archived{where}. This is a new conversation.")
        self.refresh_context()

    async def command_user(self, arg: str) -> None:
        try:
            name = validate_user_id(arg)
        except InvalidUserId as error:
            await self.say_error(error)
            return
        if self.streaming:
            await self.say_error(BUSY)
            return
        if name == self.user and self.agent is not None:
            await self.say(f"You are already using the profile {name}.")
            return
        if await self.edgechat.switch_user(name):
            await self.say(f"Switched to the profile {name}.")

    async def command_model(self, arg: str) -> None:
        from edgechat_tui.backends.local.context import CONTEXT_WINDOWS, context_window_for

        agent = self._agent_or_say()
        if agent is None:
            return
        settings = self.edgechat.settings
        if not arg:
            model = agent.info.model or "chosen by the agent"
            text = f"Model: {model}."
            if agent.info.mode == "local" and agent.info.model:
                window = context_window_for(agent.info.model, settings.context_window)
                text += f" Context window: {window:,} tokens."
            text += " Change it for this session with /model ID. Known: " + ", ".join(CONTEXT_WINDOWS)
            await self.say(text)
            return
        try:
            agent.set_model(arg)
        except EdgechatError as error:
            await self.say_error(error)
            return
        self.edgechat.session_model = arg
        self._show_info_header()
        await self.say(f"Replies now come from {arg} (for this session; to keep it: "
                       f"edgechat config set model {arg}).")
        if arg not in CONTEXT_WINDOWS and not settings.context_window:
            window = context_window_for(arg)
            await self.say(f"edgechat does not know the context window of {arg}; it assumes {window:,} "
                           "tokens (set context_window in the config to change that).", warning=True)
        self.refresh_context()

    async def command_system(self, arg: str) -> None:
        agent = self._agent_or_say()
        if agent is None:
            return
        if not arg:
            current = self.edgechat.system_prompt
            await self.say(f"System prompt: {current}" if current else "No system prompt is set.")
            return
        try:
            agent.set_system_prompt(arg)
        except EdgechatError as error:
            await self.say_error(error)
            return
        self.edgechat.session_system_prompt = arg
        await self.say(f"System prompt for this session: {arg}")
        self.refresh_context()

    async def command_export(self, arg: str) -> None:
        from edgechat_tui.storage.export import default_export_path, export_conversation

        agent = self._agent_or_say()
        if agent is None:
            return
        try:
            messages = await agent.history()
        except EdgechatError as error:
            await self.say_error(error)
            return
        note = ""
        if messages is None:
            messages = self.messages_shown()
            note = " (this agent does not share its history: only this session's messages)"
        path = Path(arg) if arg else default_export_path(self.user)
        try:
            written = await asyncio.to_thread(export_conversation, path, self.user, messages,
                                              model=agent.info.model)
        except EdgechatError as error:
            await self.say_error(error)
            return
        kind = "JSON" if written.suffix.lower() == ".json" else "Markdown"
        await self.say(f"Exported {len(messages):,} messages as {kind} to {written}{note}.")

    async def command_copy(self, arg: str) -> None:
        reply = next((entry for entry in reversed(self.chat_log.entries)
                      if entry.kind == "assistant" and entry.text and not entry.live), None)
        if reply is None:
            await self.say("There is no reply to copy yet.")
            return
        text = sanitize(reply.text)
        self.app.copy_to_clipboard(text)
        await self.say(f"Copied the last reply ({len(text):,} characters) to the clipboard. It travels "
                       "as an OSC 52 sequence: if it does not arrive, your terminal does not let programs "
                       "set the clipboard.")

    async def command_theme(self, arg: str) -> None:
        themes = sorted(self.app.available_themes)
        if not arg:
            await self.say(f"Theme: {self.app.theme}. Change it with /theme NAME (saved), or pick one "
                           f"with Ctrl+P → Theme. Themes: {', '.join(themes)}")
            return
        if arg not in self.app.available_themes:
            await self.say_error(f"There is no theme called {sanitize(arg)}.", f"themes: {', '.join(themes)}")
            return
        self.app.theme = arg
        await self.say(f"Theme {arg} (saved in the config).")

