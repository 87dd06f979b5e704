"""Messages the screens and commands post up to the app (attributes down, messages up).

A screen or a command never imports the app: what only the app can do (create an agent for
another profile, quit) is asked for with one of these, and the app's handler does it.
"""

from __future__ import annotations

from textual.message import Message

__all__ = ["OpenSetup", "QuitRequested", "SwitchUser"]


class SwitchUser(Message):
    """``/user NAME``: use the profile ``user`` (already a valid user id) in place."""

    def __init__(self, user: str) -> None:
        super().__init__()
        self.user = user


class QuitRequested(Message):
    """``/quit`` (or the palette's Quit): stop any reply (so it is saved), close the agent, leave."""


class OpenSetup(Message):
    """``/setup`` (or F2 after the API refused the credentials): the setup screen, over the chat.

    Saving there makes the app create the agent again with the new credentials, for the same
    profile; the input and the message to retry are kept.
    """
