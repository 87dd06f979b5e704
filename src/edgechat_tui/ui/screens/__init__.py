"""Screens of the edgechat TUI: the chat, first-run setup, help, and confirmations.

Each screen is imported from its module (the setup and help screens load only when shown).
"""

__all__ = ["chat", "confirm", "help", "setup"]
