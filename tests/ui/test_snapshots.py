"""SVG snapshots of the key screens at a fixed size (pytest-textual-snapshot).

Deterministic: histories have fixed timestamps, nothing shows a clock, the cursor does not blink,
and the model's answers come from the loopback fake. Refresh after a reviewed change with
``pytest tests/ui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path

from edgechat_tui.config.settings import load_settings
from tests.fakes.workers_ai import quota_error
from tests.ui.conftest import SIZE, make_app, wait_ready, wait_settled, wait_until, write_history

CODE_AND_TABLE = (
    "Here is the function, and how it behaves:\n\n"
    "```python\n"
    "def fib(n: int) -> int:\n"
    "    a, b = 0, 1\n"
    "    for _ in range(n):\n"
    "        a, b = b, a + b\n"
    "    return a\n"
    "```\n\n"
    "| n | fib(n) |\n"
    "|---|--------|\n"
    "| 1 | 1      |\n"
    "| 10 | 55    |\n\n"
    "It runs in **linear** time."
)


def test_empty_chat(snap_compare, settings):
    async def ready(pilot):
        await wait_ready(pilot)

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=ready)


def test_conversation_with_code_and_table(snap_compare, settings):
    question = "Write fib in Python, with a table of values."
    write_history(settings.data_dir, "alice", [(question, CODE_AND_TABLE)])

    async def ready(pilot):
        await wait_ready(pilot)
        await wait_until(pilot, lambda: "ctx" in pilot.app.chat.status.plain, what="the context")
        await wait_settled(pilot)

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=ready)


def test_stopped_reply(snap_compare, settings):
    partial = "Once upon a time, in a terminal far away,"
    write_history(settings.data_dir, "alice", [("Tell me a long story.", partial)], stopped_last=True)

    async def ready(pilot):
        await wait_ready(pilot)
        await wait_until(pilot, lambda: "ctx" in pilot.app.chat.status.plain, what="the context")
        await wait_settled(pilot)

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=ready)


def test_error(snap_compare, settings, fake):
    fake.enqueue(quota_error())

    async def fail(pilot):
        app = pilot.app
        await wait_ready(pilot)
        app.chat.prompt.set_text("Are you there?")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.failed_text is not None and app.chat.turn is None,
                         what="the failure")
        await wait_until(pilot, lambda: "ctx" in app.chat.status.plain, what="the context")

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=fail)


def test_setup_screen(snap_compare, tmp_path, fake):
    # A fixed config path: the screen shows where it will save.
    env = {"EDGECHAT_DATA_DIR": str(tmp_path / "data"), "EDGECHAT_API_BASE": fake.api_base}
    settings = load_settings(config_path=Path("/home/user/.config/edgechat/config.toml"), env=env)

    async def shown(pilot):
        from edgechat_tui.ui.screens.setup import SetupScreen

        await wait_until(pilot, lambda: isinstance(pilot.app.screen, SetupScreen)
                         and bool(pilot.app.screen.query("#api_token")), what="the setup screen")

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=shown)


def test_help(snap_compare, settings):
    async def ready(pilot):
        await wait_ready(pilot)

    assert snap_compare(make_app(settings), terminal_size=(100, 40), run_before=ready, press=["f1"])
