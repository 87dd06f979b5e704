"""``/setup`` and ``/user`` without a name: the credentials and the profile, chosen from inside the chat.

``/setup`` asks the app for the setup screen (:class:`~edgechat_tui.ui.messages.OpenSetup`); the
app saves what it checked and creates the agent again. ``/user`` with no name lists the profiles
of the data folder (``storage/users.py``, read in a thread) in a picker, the current one marked;
the one chosen is switched to as ``/user NAME`` would.
"""

from __future__ import annotations

import asyncio

from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.ui.commands.host import CommandHost
from edgechat_tui.ui.messages import OpenSetup

__all__ = ["BUSY_SETUP", "REMOTE_SETUP", "command_setup", "pick_profile"]

BUSY_SETUP = "A reply is still coming: wait for it, or press Esc to stop it, then open /setup."
REMOTE_SETUP = ("This chat talks to a remote agent: /setup sets the Cloudflare credentials of the "
                "local agent, which is not in use.")
REMOTE_SETUP_HINT = ("the agent's token is the remote_token setting: edgechat config set remote_token "
                     "(it reads the token from stdin)")


async def command_setup(host: CommandHost, arg: str) -> None:
    if host.session.remote:
        await host.say_error(REMOTE_SETUP, REMOTE_SETUP_HINT)
        return
    if host.streaming:
        await host.say_error(BUSY_SETUP)
        return
    host.post_message(OpenSetup())


async def pick_profile(host: CommandHost) -> None:
    """``/user`` with no name: a list of the profiles to choose from; the choice is switched to."""
    from edgechat_tui.storage.users import list_users

    if host.session.remote:
        await host.say(f"You are {host.user} on the remote agent. A remote agent does not list its "
                       "profiles: switch with /user NAME.")
        return
    try:
        summaries = await asyncio.to_thread(list_users, host.session.settings.data_dir)
    except EdgechatError as error:
        await host.say_error(error)
        return

    def chosen(user: str | None) -> None:
        if user is None:
            host.status.set_detail("no profile chosen: nothing changed")
        elif user == host.user:
            host.run_worker(host.say(f"You are already using the profile {user}."), exit_on_error=False)
        elif host.streaming:
            host.run_worker(host.say_error("A reply is still coming: wait for it, or press Esc to stop "
                                           "it, then switch."), exit_on_error=False)
        else:
            host.request_switch(user)

    host.pick_profile(summaries, chosen)
