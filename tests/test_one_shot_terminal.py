"""``edgechat -m`` as a person sees it: a real process on a real pty renders the reply's Markdown;
piped, or with ``--raw``, it prints the text as it came. The bytes the terminal receives are fed to
an emulated screen (tests/term_screen.py), which refuses any sequence but colour, cursor-up and
erase-line: a model's escape sequences cannot reach the terminal through the rendering."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.fakes.workers_ai import FakeWorkersAI, Reply
from tests.reliability.pty_driver import PtyProcess
from tests.term_screen import Screen

COLS, ROWS = 80, 40
MARKDOWN = (
    "# Fibonacci\n\nHere is **the function**:\n\n"
    "```python\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n```\n\n"
    "| n | fib(n) |\n|---|---|\n| 10 | 55 |\n\n- one\n- two\n\nDone, *quickly*."
)
HOSTILE = ("Safe **bold** \x1b]8;;http://evil.example\x07click\x1b]8;;\x07 \x1b[2J\x1b[31mred\x1b[0m "
           "\x9b6n and [b]markup[/b] [@click=app.quit]x[/click]\n\n```\n\x1b]52;c;cGF3bmVk\x07code\n```")


@pytest.fixture
def fake():
    with FakeWorkersAI() as server:
        yield server


@pytest.fixture
def env(isolated_env, fake):
    return dict(isolated_env, CLOUDFLARE_ACCOUNT_ID=fake.account_id, CLOUDFLARE_API_TOKEN=fake.token,
                EDGECHAT_API_BASE=fake.api_base)


def run_in_pty(env: dict[str, str], *args: str) -> bytes:
    with PtyProcess([sys.executable, "-m", "edgechat_tui", *args], env, cols=COLS, rows=ROWS) as proc:
        assert proc.proc.wait(60) == 0, proc.output[-400:]
        proc.wait_for(b"", timeout=5)
        proc._reader.join(5)
        return proc.output


def screen_of(output: bytes) -> str:
    screen = Screen(COLS, ROWS)
    screen.feed(output.decode("utf-8"))
    return "\n".join(screen.lines)


def test_at_a_terminal_the_reply_is_rendered_markdown(fake, env):
    fake.enqueue(Reply(MARKDOWN, chunk_size=5))
    output = run_in_pty(env, "-m", "fib please")
    shown = screen_of(output)
    assert b"\x1b[1m" in output  # Rich's bold
    for mark in ("**", "```", "|---|", "# Fib", "- one"):
        assert mark not in shown, shown
    for text in ("Fibonacci", "Here is the function:", "def fib(n):", "• one", "55", "Done, quickly."):
        assert text in shown, shown
    assert shown.count("Here is the function:") == 1  # the raw block was taken back, not left above


def test_piped_the_reply_is_the_text_as_it_came(fake, env):
    fake.enqueue(Reply(MARKDOWN, chunk_size=5))
    result = subprocess.run([sys.executable, "-m", "edgechat_tui", "-m", "fib please"], env=env,
                            capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    assert result.returncode == 0
    assert result.stdout.decode() == MARKDOWN + "\n"


def test_raw_at_a_terminal_prints_the_text_as_it_came(fake, env):
    fake.enqueue(Reply(MARKDOWN, chunk_size=5))
    output = run_in_pty(env, "-m", "fib please", "--raw")
    assert b"\x1b[" not in output  # no styling, no cursor movement
    assert output.decode().replace("\r\n", "\n") == MARKDOWN + "\n"


def test_a_hostile_reply_reaches_the_terminal_without_its_sequences(fake, env):
    fake.enqueue(Reply(HOSTILE, chunk_size=3))
    output = run_in_pty(env, "-m", "hi")
    for sequence in (b"\x1b]", b"\x1b[2J", b"\x1b[31m", b"\x9b", "\x9b".encode(), b"\x07", b"\x1b[6n"):
        assert sequence not in output
    shown = screen_of(output)  # and nothing but SGR, cursor up and erase line
    assert "Safe bold" in shown and "[b]markup[/b]" in shown and "[@click=app.quit]x[/click]" in shown
    assert "code" in shown and b"cGF3bmVk" not in output  # the clipboard write removed whole


def test_piped_or_raw_the_one_shot_never_loads_rich_markdown(fake, env):
    fake.enqueue(Reply(MARKDOWN), Reply(MARKDOWN))
    code = ("import sys, runpy\nsys.argv=['edgechat'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('edgechat_tui', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('LOADED' if 'rich.markdown' in sys.modules else 'CLEAN', file=sys.stderr)")
    for args in (["-m", "hi"], ["-m", "hi", "--json"]):
        result = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=60)
        assert result.stderr.strip().endswith("CLEAN"), result.stderr
