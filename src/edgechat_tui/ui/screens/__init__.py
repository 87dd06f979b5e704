"""Screens of the edgechat TUI: the chat, first-run setup, help, and confirmations."""
