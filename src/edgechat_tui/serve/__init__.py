"""``edgechat serve``: the chat screen in a browser tab, one app process per tab.

This package is imported by the CLI to build its ``serve`` parser, so only ``options`` (plain
argparse and ``ipaddress``) is imported up front; the web server and its dependencies (aiohttp,
textual-serve's browser client) load only when ``serve`` runs. See docs/serve.md.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["run_serve"]


def run_serve(args: argparse.Namespace, settings: Any, user: str) -> int:
    """Run ``edgechat serve`` with the parsed ``args``, the effective ``settings`` and the profile."""
    from edgechat_tui.serve.options import serve_config

    config = serve_config(args, settings, user)  # every check that can fail, before anything starts
    from edgechat_tui.serve.server import run

    return run(config)
