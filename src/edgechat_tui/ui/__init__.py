"""The chat TUI (Textual): the app, its session, a turn's life, the commands, screens, widgets and the
reply renderer. Imports point down: ``app`` → ``screens`` → ``commands``, ``turn`` → ``widgets`` →
``markdown``; nothing here imports the app. Start it with :func:`edgechat_tui.ui.app.run_tui`.

The app is loaded on first use (module ``__getattr__``), so importing a pure module of this package
(the command registry, the meter) does not load Textual's app machinery.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EdgechatApp", "run_tui"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from edgechat_tui.ui import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
