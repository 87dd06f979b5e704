"""What each slash command does, on any screen that satisfies :class:`CommandHost` (the chat screen).

Every result is said in the chat pane as a notice; every failure as an error with its hint. Text
from the user, the agent or the disk is shown through ``Content``, never markup. What only the app
can do (``/user``, ``/quit``) is asked for with a message posted up (:mod:`edgechat_tui.ui.messages`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from edgechat_tui.core.errors import EdgechatError, InvalidUserId
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.ui.commands.account import command_setup, pick_profile
from edgechat_tui.ui.commands.copying import command_copy
from edgechat_tui.ui.commands.host import CommandHost, agent_or_say, conversation_or_shown
from edgechat_tui.ui.commands.models import command_model, command_usage
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


def complete(text: str, *, themes: Iterable[str], models: Iterable[str] | None = None) -> list[Suggestion]:
    """Completions for the input's text: command names, and model ids (``models``, else the built-in
    table's) or themes as arguments."""
    ids: list[str] = []
    if text.startswith("/model"):
        if models is None:
            from edgechat_tui.backends.local.context import CONTEXT_WINDOWS

            models = CONTEXT_WINDOWS
        ids = list(models)
    return suggest(text, themes=list(themes) if text.startswith("/theme") else [], models=ids)


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
    agent = agent_or_say(host)
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
    library = getattr(host, "library", None)  # the conversation library's header and list follow
    if library is not None:
        await library.refresh_current()
    where = f" to {archived}" if archived else ""
    await host.say(f"Conversation archived{where}. This is a new conversation.")
    # What the status line said (the last reply's figures, a failure) was about the old one.
    host.show_ready("new conversation")
    host.refresh_context()


async def command_user(host: CommandHost, arg: str) -> None:
    if not arg:
        await pick_profile(host)
        return
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


async def command_system(host: CommandHost, arg: str) -> None:
    agent = agent_or_say(host)
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

    agent = agent_or_say(host)
    if agent is None:
        return
    found = await conversation_or_shown(host, agent)
    if found is None:
        return
    messages, session_only = found
    note = " (this agent does not share its history: only this session's messages)" if session_only else ""
    path = Path(arg) if arg else default_export_path(host.user)
    library = getattr(host, "library", None)
    current = library.current if library is not None and not session_only else None
    try:
        written = await asyncio.to_thread(export_conversation, path, host.user, messages,
                                          model=agent.info.model,
                                          title=current.title if current is not None else None,
                                          chat=current.id if current is not None else None)
    except EdgechatError as error:
        await host.say_error(error)
        return
    kind = "JSON" if written.suffix.lower() == ".json" else "Markdown"
    await host.say(f"Exported {len(messages):,} messages as {kind} to {written}{note}.")


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
    "usage": command_usage,
    "system": command_system,
    "export": command_export,
    "copy": command_copy,
    "retry": command_retry,
    "theme": command_theme,
    "setup": command_setup,
    "quit": command_quit,
}

from edgechat_tui.ui.commands.library import LIBRARY_HANDLERS  # noqa: E402 - the library's commands

HANDLERS.update(LIBRARY_HANDLERS)
