"""Bytes from the terminal that are not UTF-8, in a real terminal (``python -m edgechat_tui``).

Textual decodes the terminal's input strictly: one such byte ended the app (exit status 0) with
the text in the input box lost. Each kind of bad sequence, pasted (bracketed paste) and typed: the
app stays up, the text around it is kept, and the bytes arrive as U+FFFD in the message sent.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.histories import conversations
from tests.ui.pty_app import PtyApp
from tests.ui.test_early_view_pty import env_for, screen_rows

#: Byte sequences that are not UTF-8, one of each kind the decoder refuses.
BAD = {
    "a byte no UTF-8 has": b"\xff",
    "a lone continuation byte": b"\x80",
    "C1 CSI as a raw byte": b"\x9b",
    "a character cut short": b"\xe2\x82",
    "an overlong encoding": b"\xc0\xaf",
    "an encoded surrogate": b"\xed\xa0\x80",
    "Latin-1 text": "café".encode("latin-1"),
}


def wait_for_message(fake, count: int, what, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while len(fake.run_requests) < count:
        assert time.monotonic() < deadline, (what[0], "\n".join(screen_rows(bytes(what[1].output))))
        what[1].drain(0.02)
    return fake.run_requests[count - 1].body["messages"][-1]["content"]


def wait_stored(data: Path, messages: int, what, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(len(state.messages()) for state in conversations(data, "alice")) < messages:
        assert time.monotonic() < deadline, (what[0], "\n".join(screen_rows(bytes(what[1].output))))
        what[1].drain(0.02)


@pytest.mark.parametrize("pasted", [True, False], ids=["pasted", "typed"])
def test_bytes_that_are_not_utf8_never_end_the_app_and_the_text_is_kept(tmp_path, fake, pasted):
    env = env_for(tmp_path, fake) | {"EDGECHAT_AUTO_TITLE": "false"}
    app = PtyApp(env, cli=True)
    try:
        assert app.read_until(b"ready"), bytes(app.output[-2000:])
        for number, (kind, bad) in enumerate(BAD.items(), start=1):
            text = b"before " + bad + b" after"
            app.write(b"\x1b[200~" + text + b"\x1b[201~" if pasted else text)
            mark = len(app.output)
            app.write(b"\r")
            sent = wait_for_message(fake, number, what=(kind, app))
            assert sent == "before " + bad.decode("utf-8", "replace") + " after", (kind, sent)
            assert "\ufffd" in sent
            # The turn ends before the next message is typed: the reply's own words on screen (the
            # fake's reply counts the messages, so no other reply has them), then the status's
            # "ready" after them (one drawn before them may be a repaint of the status before).
            words = b"You said: before" if number == 1 else f"you have said {number} things".encode()
            assert app.read_until(words, start=mark), (kind, bytes(app.output[-2000:]))
            shown = app.output.index(words, mark)
            assert app.read_until(b"ready", start=shown), (kind, bytes(app.output[-2000:]))
            wait_stored(tmp_path / "data", 2 * number, (kind, app))
    finally:
        status = app.close()
    assert status == 0
