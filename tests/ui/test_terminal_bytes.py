"""The real app in a pseudo-terminal: what a hostile reply sends never reaches the terminal's bytes."""

from __future__ import annotations

import os

from tests.fakes.workers_ai import Reply
from tests.ui.pty_app import ROOT, PtyApp

HOSTILE = (
    "Title \x1b]0;PWNED-TITLE\x07set. Clipboard \x1b]52;c;UFdORUQ=\x07set. "
    "Colour \x1b[38;5;196mred\x1b[0m and C1 \x9b38;5;202morange. Clear \x1b[2J\x1b[3J. END-OF-REPLY"
)


def test_escape_sequences_in_a_reply_never_reach_the_terminal(tmp_path, fake):
    fake.enqueue(Reply(HOSTILE, chunk_size=3))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGECHAT_", "CLOUDFLARE_"))}
    env |= {
        "PYTHONPATH": str(ROOT / "src"),
        "EDGECHAT_API_BASE": fake.api_base,
        "CLOUDFLARE_ACCOUNT_ID": fake.account_id,
        "CLOUDFLARE_API_TOKEN": fake.token,
        "EDGECHAT_DATA_DIR": str(tmp_path / "data"),
        "EDGECHAT_CONFIG": str(tmp_path / "config.toml"),
    }
    app = PtyApp(env)
    try:
        assert app.read_until(b"ready"), bytes(app.output[-2000:])
        mark = len(app.output)
        app.write(b"go\r")
        assert app.read_until(b"END-OF-REPLY", start=mark), bytes(app.output[-2000:])
        app.drain(0.3)
    finally:
        status = app.close()
    out = bytes(app.output)
    assert b"PWNED" not in out
    assert b"UFdORUQ" not in out
    assert b"38;5;196m" not in out and b"38;5;202m" not in out
    assert b"\xc2\x9b" not in out  # C1 CSI, as UTF-8
    assert fake.token.encode() not in out
    assert status == 0
