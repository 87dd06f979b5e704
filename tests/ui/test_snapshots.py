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


def test_long_conversation_with_the_context_marker(snap_compare, tmp_path, fake):
    # A small window: the newest messages are sent, a line marks where they begin; the scrollbar
    # spans the whole conversation, most of it not mounted.
    from tests.ui.conftest import make_settings

    settings = make_settings(tmp_path, fake, EDGECHAT_MAX_TOKENS="21500")
    write_history(settings.data_dir, "alice", [(f"Question {i}: what comes after {i}?",
                                                f"After {i} comes **{i + 1}**.") for i in range(40)])

    async def ready(pilot):
        await wait_ready(pilot)
        marker = pilot.app.chat.chat_log.context_marker
        # Shown and laid out: before its first layout the marker's region is empty, at y 0, and a
        # scroll there would be a jump to the conversation's start.
        await wait_until(pilot, lambda: marker.has_class("-shown") and marker.virtual_region.height > 0
                         and marker.virtual_region.y > 0, what="the context marker laid out")
        await wait_settled(pilot)
        log = pilot.app.chat.chat_log
        log.scroll_to(y=marker.virtual_region.y - 4, animate=False, immediate=True)
        await wait_until(pilot, lambda: not log.busy, what="the pane to settle")
        await pilot.pause()

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=ready)


def test_model_list(snap_compare, settings, fake):
    from edgechat_tui.ui.screens.model_picker import ModelPicker

    async def listed(pilot):
        app = pilot.app
        await wait_ready(pilot)
        app.chat.prompt.set_text("/model")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPicker)
                         and app.screen.catalog.source == "account", what="the account's model list")
        await pilot.press("down")

    assert snap_compare(make_app(settings), terminal_size=(100, 30), run_before=listed)


def test_replies_with_their_usage_line(snap_compare, settings):
    from edgechat_tui.core.messages import Message, Usage
    from edgechat_tui.storage.store import encode_header, encode_turn

    settings.data_dir.mkdir(parents=True)
    when = "2025-01-01T10:00:00.000Z"
    model = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
    lines = [encode_header("alice", created=when)]
    for question, answer, usage in (("What is 2 + 2?", "**4**.", Usage(1210, 4)),
                                    ("And in Roman numerals?", "IV.", Usage(1230, 3))):
        lines.append(encode_turn(Message("user", question, time=when),
                                 Message("assistant", answer, time=when, model=model, usage=usage)))
    (settings.data_dir / "alice.jsonl").write_bytes(b"".join(lines))

    async def ready(pilot):
        await wait_ready(pilot)
        await wait_until(pilot, lambda: "ctx" in pilot.app.chat.status.plain, what="the context")
        await wait_settled(pilot)

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=ready)


def test_narrow_header_at_60_columns(snap_compare, settings):
    # The model cut to fit (no prefix, an ellipsis), no separator left without a word after it.
    write_history(settings.data_dir, "alice", [("Hello", "Hi! How can I help?")])

    async def ready(pilot):
        await wait_ready(pilot)
        await wait_until(pilot, lambda: "ctx" in pilot.app.chat.status.plain, what="the context")
        await wait_settled(pilot)

    assert snap_compare(make_app(settings), terminal_size=(60, 20), run_before=ready)


def test_help_wrapped_at_60_columns(snap_compare, settings):
    # Descriptions that wrap keep their indent (a hanging indent under the description's column).
    async def ready(pilot):
        await wait_ready(pilot)

    assert snap_compare(make_app(settings), terminal_size=(60, 50), run_before=ready, press=["f1"])


def test_profile_picker(snap_compare, settings):
    write_history(settings.data_dir, "alice", [("Hello", "Hi!")])
    write_history(settings.data_dir, "bob", 3)

    async def picker(pilot):
        from edgechat_tui.ui.screens.profiles import ProfilePicker

        await wait_ready(pilot)
        pilot.app.chat.prompt.set_text("/user")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ProfilePicker), what="the profiles")

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=picker)


def test_early_view_before_the_store_has_loaded(snap_compare, settings):
    """The first frame's conversation (the early view), while the store waits for another process's
    lock: the pane as the store's view will show it (test_conversation_with_code_and_table)."""
    from edgechat_tui.storage.tail import EarlyTail, current_conversation
    from edgechat_tui.ui.app import EdgechatApp
    from edgechat_tui.ui.early import EARLY_MESSAGES
    from tests.ui.test_early_view import HeldLock

    question = "Write fib in Python, with a table of values."
    write_history(settings.data_dir, "alice", [(question, CODE_AND_TABLE)])
    early = EarlyTail(current_conversation(settings.data_dir, "alice"), "alice", EARLY_MESSAGES)
    early.wait(10)
    lock = HeldLock(settings.data_dir)

    class HeldBack(EdgechatApp):
        def exit(self, *args, **kwargs) -> None:  # the screenshot is taken: let the store go
            lock.release()
            super().exit(*args, **kwargs)

    app = HeldBack(settings, "alice", cursor_blink=False, early=early)

    async def early_view(pilot):
        await wait_until(pilot, lambda: "loading history" in pilot.app.chat.status.plain, what="the store")
        await wait_settled(pilot)

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=early_view)
    finally:
        lock.release()
