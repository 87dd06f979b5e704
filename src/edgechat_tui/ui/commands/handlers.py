"""What each slash command does, on any screen that satisfies :class:`CommandHost` (the chat screen).

Every result is said in the chat pane as a notice; every failure as an error with its hint. Text
from the user, the agent or the disk is shown through ``Content``, never markup. What only the app
can do (``/user``, ``/quit``) is asked for with a message posted up (:mod:`edgechat_tui.ui.messages`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from edgechat_tui.backends.base import Agent
from edgechat_tui.core.errors import EdgechatError, InvalidUserId
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.ui.commands.host import CommandHost
from edgechat_tui.ui.commands.registry import Invocation, Suggestion, invocation_problem, suggest
from edgechat_tui.ui.messages import QuitRequested

__all__ = ["BUSY", "HANDLERS", "complete", "run_command"]

BUSY = "A reply is still coming: wait for it, or press Esc to stop it, then try again."

Handler = Callable[[CommandHost, str], Awaitable[None]]


async def run_command(host: CommandHost, invocation: Invocation) -> None:
    """Run a parsed command line, or say why it cannot run. The caller clears the input."""
    problem = invocation_problem(invocation)
    if problem is not None:
        await host.say_error(*problem)
        return
    assert invocation.command is not None
    await HANDLERS[invocation.command.name](host, invocation.arg)


def complete(text: str, *, themes: Iterable[str]) -> list[Suggestion]:
    """Completions for the input's text: command names, and model ids or themes as arguments."""
    models: list[str] = []
    if text.startswith("/model"):
        from edgechat_tui.backends.local.context import CONTEXT_WINDOWS

        models = list(CONTEXT_WINDOWS)
    return suggest(text, themes=list(themes) if text.startswith("/theme") else [], models=models)


def _agent_or_say(host: CommandHost) -> Agent | None:
    session = host.session
    if not session.ready:
        host.notify("Not connected yet: try again in a moment.", severity="warning", markup=False)
        return None
    return session.agent


async def command_help(host: CommandHost, arg: str) -> None:
    host.action_help()


async def command_quit(host: CommandHost, arg: str) -> None:
    host.post_message(QuitRequested())


async def command_retry(host: CommandHost, arg: str) -> None:
    if host.failed_text is None:
        await host.say("Nothing to retry: no message has failed.")
        return
    host.retry()


async def command_clear(host: CommandHost, arg: str) -> None:
    if host.streaming:
        await host.say_error(BUSY)
        return
    agent = _agent_or_say(host)
    if agent is None:
        return
    if not agent.info.can_reset:
        await host.say_error("This agent cannot start a new conversation.",
                             "its server does not offer reset; the conversation stays as it is")
        return

    def answered(yes: bool | None) -> None:
        if yes:
            host.run_worker(_reset_conversation(host), group="command", exit_on_error=False)
        else:
            host.status.set_detail("/clear cancelled: nothing changed")

    question = (f"Archive {host.user}'s conversation and start a new one?\n"
                "The messages are kept in an archive, not deleted.")
    host.ask(question, yes="Archive", no="Cancel", answered=answered)


async def _reset_conversation(host: CommandHost) -> None:
    agent = host.session.agent
    if agent is None:
        return
    try:
        archived = await agent.reset()
    except EdgechatError as error:
        await host.say_error(error)
        return
    await host.chat_log.show_conversation([], user=host.user)
    where = f" to {archived}" if archived else ""
    await host.say(f"Conversation archived{where}. This is a new conversation.")
    host.refresh_context()


async def command_user(host: CommandHost, arg: str) -> None:
    try:
        name = validate_user_id(arg)
    except InvalidUserId as error:
        await host.say_error(error)
        return
    if host.streaming:
        await host.say_error(BUSY)
        return
    if name == host.user and host.session.agent is not None:
        await host.say(f"You are already using the profile {name}.")
        return
    # The app creates the agent and says when the switch is done; until then nothing is sent.
    host.request_switch(name)


async def command_model(host: CommandHost, arg: str) -> None:
    from edgechat_tui.backends.local.context import CONTEXT_WINDOWS, context_window_for

    agent = _agent_or_say(host)
    if agent is None:
        return
    settings = host.session.settings
    if not arg:
        model = agent.info.model or "chosen by the agent"
        text = f"Model: {model}."
        if agent.info.mode == "local" and agent.info.model:
            window = context_window_for(agent.info.model, settings.context_window)
            text += f" Context window: {window:,} tokens."
        text += " Change it for this session with /model ID. Known: " + ", ".join(CONTEXT_WINDOWS)
        await host.say(text)
        return
    try:
        host.session.use_model(arg)
    except EdgechatError as error:
        await host.say_error(error)
        return
    host.show_info_header()
    await host.say(f"Replies now come from {arg} (for this session; to keep it: "
                   f"edgechat config set model {arg}).")
    if arg not in CONTEXT_WINDOWS and not settings.context_window:
        window = context_window_for(arg)
        await host.say(f"edgechat does not know the context window of {arg}; it assumes {window:,} "
                       "tokens (set context_window in the config to change that).", warning=True)
    host.refresh_context()


async def command_system(host: CommandHost, arg: str) -> None:
    agent = _agent_or_say(host)
    if agent is None:
        return
    if not arg:
        current = host.session.system_prompt
        await host.say(f"System prompt: {current}" if current else "No system prompt is set.")
        return
    try:
        host.session.use_system_prompt(arg)
    except EdgechatError as error:
        await host.say_error(error)
        return
    await host.say(f"System prompt for this session: {arg}")
    host.refresh_context()


async def command_export(host: CommandHost, arg: str) -> None:
    from edgechat_tui.storage.export import default_export_path, export_conversation

    agent = _agent_or_say(host)
    if agent is None:
        return
    try:
        messages = await agent.history()
    except EdgechatError as error:
        await host.say_error(error)
        return
    note = ""
    if messages is None:
        messages = host.messages_shown()
        note = " (this agent does not share its history: only this session's messages)"
    path = Path(arg) if arg else default_export_path(host.user)
    try:
        written = await asyncio.to_thread(export_conversation, path, host.user, messages,
                                          model=agent.info.model)
    except EdgechatError as error:
        await host.say_error(error)
        return
    kind = "JSON" if written.suffix.lower() == ".json" else "Markdown"
    await host.say(f"Exported {len(messages):,} messages as {kind} to {written}{note}.")


async def command_copy(host: CommandHost, arg: str) -> None:
    reply = next((entry for entry in reversed(host.chat_log.entries)
                  if entry.kind == "assistant" and entry.text and not entry.live), None)
    if reply is None:
        await host.say("There is no reply to copy yet.")
        return
    text = sanitize(reply.text)
    host.app.copy_to_clipboard(text)
    await host.say(f"Copied the last reply ({len(text):,} characters) to the clipboard. It travels "
                   "as an OSC 52 sequence: if it does not arrive, your terminal does not let programs "
                   "set the clipboard.")


async def command_theme(host: CommandHost, arg: str) -> None:
    themes = sorted(host.app.available_themes)
    if not arg:
        await host.say(f"Theme: {host.app.theme}. Change it with /theme NAME (saved), or pick one "
                       f"with Ctrl+P → Theme. Themes: {', '.join(themes)}")
        return
    if arg not in host.app.available_themes:
        await host.say_error(f"There is no theme called {sanitize(arg)}.", f"themes: {', '.join(themes)}")
        return
    host.app.theme = arg
    await host.say(f"Theme {arg} (saved in the config).")


HANDLERS: dict[str, Handler] = {
    "help": command_help,
    "clear": command_clear,
    "user": command_user,
    "model": command_model,
    "system": command_system,
    "export": command_export,
    "copy": command_copy,
    "retry": command_retry,
    "theme": command_theme,
    "quit": command_quit,
}
