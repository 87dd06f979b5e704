"""The app process of one browser tab: ``python -m edgechat_tui.serve.child --user U [...]``.

``edgechat serve`` starts one per websocket, with Textual's web driver in the environment
(``TEXTUAL_DRIVER``), the flags it validated on the command line (see ``options.child_command``)
and everything secret in the environment or the config file, never on the command line.

It is the same chat app as ``edgechat``'s, with two differences. The message input takes the
keyboard when the page gets focus (a web app starts blurred, so Textual skips its auto-focus).
And SIGTERM (what serve sends when the
tab closes or serve stops), SIGINT and SIGHUP quit it as Ctrl+Q does, so a reply still streaming is
stopped and saved, marked stopped. The web driver's own handlers would exit without that. If serve
itself dies, the kernel sends this process SIGTERM too (Linux's parent-death signal).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from textual import events

from edgechat_tui.config.settings import load_settings
from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.ui.app import EdgechatApp

QUIT_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class ServedApp(EdgechatApp):
    """The chat app, quitting gracefully on a signal."""

    _quitting = False

    def on_mount(self) -> None:
        # After the web driver has put in its own handlers (they exit at once): these replace them.
        loop = asyncio.get_running_loop()
        for sig in QUIT_SIGNALS:
            loop.add_signal_handler(sig, self._quit_on_signal)

    def on_app_focus(self, event: events.AppFocus) -> None:
        # A web app starts blurred (the page has not got the keyboard yet), so the screen's
        # AUTO_FOCUS (the message input) was skipped: give it focus when the page gets focus.
        self._focus_default()

    def _focus_default(self) -> None:
        screen = self.screen
        selector = screen.AUTO_FOCUS if screen.AUTO_FOCUS is not None else self.AUTO_FOCUS
        if screen.focused is not None or not selector:
            return
        for widget in screen.query(selector):
            if widget.focusable:
                widget.focus(scroll_visible=False)
                return

    def _quit_on_signal(self) -> None:
        if self._quitting:
            return
        self._quitting = True
        self.run_worker(self.action_quit(), group="quit-on-signal", exit_on_error=False)


def _end_with_parent() -> None:
    """Ask Linux for SIGTERM when serve goes away, however it goes; leave at once if it already has."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    expected = os.environ.get("EDGECHAT_SERVE_PID")
    if expected and str(os.getppid()) != expected:
        raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgechat-serve-app", description=__doc__)
    parser.add_argument("--user", required=True)
    parser.add_argument("--config")
    parser.add_argument("--data-dir")
    parser.add_argument("--model")
    args = parser.parse_args(argv)
    _end_with_parent()
    try:
        settings = load_settings(config_path=args.config,
                                 flags={"data_dir": args.data_dir, "model": args.model})
        user = validate_user_id(args.user)
    except EdgechatError as error:
        print(f"edgechat: error: {sanitize(str(error))}", file=sys.stderr)
        return error.exit_code
    app = ServedApp(settings, user)
    app.run()
    if app.exit_text:
        print(sanitize(app.exit_text), file=sys.stderr)
    return app.return_code or 0


if __name__ == "__main__":
    raise SystemExit(main())
