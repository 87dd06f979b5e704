"""The early view in a real terminal: ``python -m edgechat_tui``, as the ``edgechat`` command runs it.

The test holds the profile's lock (as another process saving a turn would), so the store's view
cannot come: what the terminal shows then is the early view alone.
"""

from __future__ import annotations

import os
import re

from edgechat_tui.core.messages import Message
from edgechat_tui.storage.format import encode_header, encode_turn
from tests.ui.pty_app import ROOT, PtyApp
from tests.ui.test_early_view import HeldLock

HOSTILE = ("Title \x1b]0;PWNED-TITLE\x07set. Clipboard \x1b]52;c;UFdORUQ=\x07set. "
           "Colour \x1b[38;5;196mred\x1b[0m and C1 \x9b38;5;202morange. Clear \x1b[2J. END-OF-REPLY")


_SEQUENCE = re.compile(rb"\x1b\[([0-9;?<>=]*)([A-Za-z])|\x1b[\]P_^][^\x07\x1b]*(?:\x07|\x1b\\\\)|\x1b.")


def screen_rows(output: bytes, size: tuple[int, int] = (100, 30)) -> list[str]:
    """What a terminal shows after ``output``: the text of each row (enough of a terminal for
    Textual's output, which places every run of text with a cursor position)."""
    columns, rows = size
    grid = [[" "] * columns for _ in range(rows)]
    row = col = 0
    text = output.decode("utf-8", "replace")
    pos = 0
    pattern = re.compile(_SEQUENCE.pattern.decode())
    while pos < len(text):
        match = pattern.match(text, pos)
        if match:
            if match.group(2) == "H":
                parts = (match.group(1) or "1;1").split(";")
                row, col = int(parts[0] or 1) - 1, int(parts[1] or 1) - 1 if len(parts) > 1 else 0
            pos = match.end()
            continue
        char = text[pos]
        pos += 1
        if char == "\n":
            row, col = min(row + 1, rows - 1), 0
        elif char == "\r":
            col = 0
        elif char >= " " and 0 <= row < rows and 0 <= col < columns:
            grid[row][col] = char
            col += 1
    return ["".join(line) for line in grid]


def env_for(tmp_path, fake) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGECHAT_", "CLOUDFLARE_"))}
    return env | {
        "PYTHONPATH": str(ROOT / "src"),
        "EDGECHAT_API_BASE": fake.api_base,
        "CLOUDFLARE_ACCOUNT_ID": fake.account_id,
        "CLOUDFLARE_API_TOKEN": fake.token,
        "EDGECHAT_DATA_DIR": str(tmp_path / "data"),
        "EDGECHAT_CONFIG": str(tmp_path / "config.toml"),
    }


def write(tmp_path, turns: list[tuple[str, str, str]]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    lines = [encode_header("alice")]
    for question, answer, model in turns:
        lines.append(encode_turn(Message("user", question, time="2025-01-01T10:00:00.000Z"),
                                 Message("assistant", answer, time="2025-01-01T10:00:01.000Z", model=model)))
    (data / "alice.jsonl").write_bytes(b"".join(lines))


def test_the_newest_messages_reach_the_terminal_before_the_store_and_are_not_redrawn(tmp_path, fake):
    write(tmp_path, [(f"question {i}", f"answer number {i} here", "m") for i in range(400)])
    lock = HeldLock(tmp_path / "data")
    app = PtyApp(env_for(tmp_path, fake), cli=True)
    try:
        assert app.read_until(b"answer number 399 here"), bytes(app.output[-2000:])
        assert app.read_until(b"question 399")
        assert b"ready" not in app.output  # the store waits for the lock: this is the early view
        app.drain(0.3)
        assert b"ready" not in app.output
        mark = len(app.output)
        lock.release()
        assert app.read_until(b"ready", start=mark), bytes(app.output[-2000:])
        app.drain(0.5)
        before, after = screen_rows(bytes(app.output[:mark])), screen_rows(bytes(app.output))
        # The store's view kept the widgets on screen: the pane (rows 2-25, less the scrollbar)
        # shows exactly what it showed, the newest messages once each.
        pane = slice(1, 25)
        assert [line[:97] for line in before[pane]] == [line[:97] for line in after[pane]]
        assert sum("answer number 399 here" in line for line in before) == 1
        assert sum("answer number 399 here" in line for line in after) == 1
        assert sum("question 399" in line for line in after) == 1
        assert any("ready" in line for line in after[25:])
    finally:
        lock.release()
        status = app.close()
    assert status == 0


def test_escape_sequences_in_the_early_view_never_reach_the_terminal(tmp_path, fake):
    write(tmp_path, [("hello \x1b]0;PWNED-Q\x07 there", HOSTILE, "model \x1b]0;PWNED-M\x07 \x1b[38;5;196m")])
    lock = HeldLock(tmp_path / "data")
    app = PtyApp(env_for(tmp_path, fake), cli=True)
    try:
        assert app.read_until(b"END-OF-REPLY"), bytes(app.output[-2000:])
        assert b"ready" not in app.output
        app.drain(0.3)
    finally:
        lock.release()
        status = app.close()
    out = bytes(app.output)
    assert b"PWNED" not in out
    assert b"UFdORUQ" not in out
    assert b"38;5;196m" not in out and b"38;5;202m" not in out
    assert b"\xc2\x9b" not in out
    assert fake.token.encode() not in out
    assert status == 0
