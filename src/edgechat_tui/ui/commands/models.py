"""``/model`` and ``/usage``: the account's models, choosing one, and what the replies cost.

``/model`` with no argument opens the picker (local mode) on what the session knows now, the cached
catalog or the built-in table, and refreshes the catalog in the background when it is old or
missing; choosing a model is ``/model ID``. Either way the context budget then comes from the
catalog's window for that model when it gives one. In remote mode the agent chooses its model, and
``/model`` says so.

``/usage`` sums the stored replies' usage: this conversation's, and today's (since local midnight) in
every conversation of the profile, on every branch, where the backend can tell (the local library);
elsewhere today's of this conversation.
"""

from __future__ import annotations

from datetime import datetime

from edgechat_tui.backends.base import Agent
from edgechat_tui.core.catalog import USD_PER_NEURON
from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.core.messages import Message
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.ui.commands.host import CommandHost, agent_or_say, conversation_or_shown
from edgechat_tui.ui.usage_text import sum_usage

__all__ = ["command_model", "command_usage", "use_model"]

REMOTE_MODEL = "In remote mode the agent chooses its model"


async def command_model(host: CommandHost, arg: str) -> None:
    agent = agent_or_say(host)
    if agent is None:
        return
    if arg:
        await use_model(host, arg)
        return
    if agent.info.mode != "local" or not host.session.catalog.available:
        model = sanitize(agent.info.model) if agent.info.model else "it does not say which"
        await host.say(f"{REMOTE_MODEL}: {model}. edgechat cannot change it from here.")
        return
    await open_picker(host, agent)


async def open_picker(host: CommandHost, agent: Agent) -> None:
    """The picker on the catalog known now; the fresh one replaces it when the refresh ends."""
    catalog = host.session.catalog
    known = catalog.current or await catalog.load_cached()
    if known is None:
        return
    refreshing = known.stale

    def chosen(model: str | None) -> None:
        if model and host.session.agent is agent:
            host.run_worker(use_model(host, model), group="command", exit_on_error=False)

    picker = host.pick_model(known, current=agent.info.model, chosen=chosen, refreshing=refreshing)
    if refreshing:
        async def refresh() -> None:
            fresh = await catalog.refresh()
            if fresh is not None and picker.is_attached:
                picker.show_catalog(fresh)

        host.run_worker(refresh(), group="catalog", exclusive=True, exit_on_error=False)


async def use_model(host: CommandHost, model: str) -> None:
    """``/model ID`` (or a choice in the picker): this session's replies come from ``model``."""
    from edgechat_tui.backends.local.context import CONTEXT_WINDOWS, context_window_for

    session = host.session
    try:
        session.use_model(model)
    except EdgechatError as error:
        await host.say_error(error)
        return
    host.show_info_header()
    shown = sanitize(model)
    window = session.catalog.window_of(model)
    text = f"Replies now come from {shown} (for this session; to keep it: edgechat config set model {shown})."
    if window is not None:
        text += f" Its context window: {window:,} tokens (from your account's model list)."
    await host.say(text)
    if window is None and model not in CONTEXT_WINDOWS and not session.settings.context_window:
        assumed = context_window_for(model)
        await host.say(f"edgechat does not know the context window of {shown}; it assumes {assumed:,} "
                       "tokens (set context_window in the config to change that).", warning=True)
    host.refresh_context()


async def command_usage(host: CommandHost, arg: str) -> None:
    agent = agent_or_say(host)
    if agent is None:
        return
    found = await conversation_or_shown(host, agent)
    if found is None:
        return
    messages, session_only = found
    note = " (this agent does not share its history: this session's replies only)" if session_only else ""
    price_of = host.session.catalog.price_of
    conversation, today_here = sum_usage(messages, price_of)
    lines = [f"This conversation{note}: {conversation.text()}."]
    today_all = await _replies_today(host, agent)
    if today_all is not None:
        everywhere, _ = sum_usage(today_all, price_of)
        lines.append(f"Today (since local midnight), every conversation: {everywhere.text()}.")
    else:
        lines.append(f"Today (since local midnight) in it: {today_here.text()}.")
    if conversation.replies and not conversation.priced and conversation.counted:
        lines.append("Costs are left out where the model's price is not known.")
    lines.append("Costs are estimates from the model list's prices (Workers AI bills in neurons, "
                 f"${USD_PER_NEURON * 1000:g} per 1,000).")
    await host.say("\n".join(lines))


async def _replies_today(host: CommandHost, agent: Agent) -> list[Message] | None:
    """Every reply of the profile since local midnight, or None where the agent cannot tell (no library,
    or one that does not say) or reading failed (said)."""
    library = getattr(agent, "conversations", None)
    if library is None:
        return None
    midnight = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        return await library.replies_since(midnight)
    except EdgechatError as error:
        await host.say_error(error)
        return None
