"""The ``edgechat`` command: the parser, one-shot mode, the subcommands, and starting the chat screen."""

from edgechat_tui.cli.entry import build_parser, main

__all__ = ["build_parser", "main"]
