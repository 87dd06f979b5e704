"""Run HistoryStore actions as an unprivileged user and report each outcome as JSON.

    python tests/store_probe.py DATA_DIR USER ACTION...     (ACTION: load, refresh, append, archive)

Started as root (as the tests and CI are), it imports what it needs and then becomes ``nobody``, so
file permissions apply as they do to a normal user. Prints one JSON object:
``{"uid": ..., "results": [[action, outcome], ...], "warnings": [...]}`` where an outcome is
``{"ok": value}`` or ``{"error": class name, "message": ..., "hint": ...}``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.core.messages import Message
from edgechat_tui.storage.store import HistoryStore

NOBODY = 65534


def drop_privileges() -> None:
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


def main() -> int:
    data_dir, user, *actions = sys.argv[1:]
    drop_privileges()
    warnings: list[str] = []
    store = HistoryStore(Path(data_dir), user, warn=warnings.append)
    results: list[tuple[str, dict[str, Any]]] = []
    for action in actions:
        try:
            if action == "load":
                value: Any = len(store.load())
            elif action == "refresh":
                value = len(store.refresh())
            elif action == "append":
                value = store.append_turn(Message("user", "probe"), Message("assistant", "probe reply"))
            elif action == "archive":
                archived = store.archive()
                value = str(archived) if archived else None
            else:
                raise SystemExit(f"unknown action {action}")
            outcome: dict[str, Any] = {"ok": value}
        except EdgechatError as exc:
            outcome = {"error": type(exc).__name__, "message": exc.message, "hint": exc.hint}
        results.append((action, outcome))
    print(json.dumps({"uid": os.geteuid(), "results": results, "warnings": warnings}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
