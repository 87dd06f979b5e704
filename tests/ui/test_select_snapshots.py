"""SVG snapshots of selecting and focusing: a selection highlighted across a reply's text, code and
table, and a focused reply with its keys in the footer. Refresh after a reviewed change with
``pytest tests/ui/test_select_snapshots.py --snapshot-update``."""

from __future__ import annotations

from textual.geometry import Offset
from textual.selection import Selection

from edgechat_tui.ui.widgets.messages import AssistantMessage
from edgechat_tui.ui.widgets.reply import ReplyMarkdown
from tests.ui.conftest import SIZE, make_app, wait_ready, wait_settled, wait_until, write_history
from tests.ui.test_snapshots import CODE_AND_TABLE

QUESTION = "Write fib in Python, with a table of values."


def test_a_selection_in_a_reply(snap_compare, settings):
    write_history(settings.data_dir, "alice", [(QUESTION, CODE_AND_TABLE)])

    async def select(pilot):
        app = pilot.app
        await wait_ready(pilot)
        await wait_until(pilot, lambda: "ctx" in app.chat.status.plain, what="the context")
        await wait_settled(pilot)
        reply = app.query_one(ReplyMarkdown)
        # From "function" on the first line, through the code, into the table's third row.
        app.screen.selections = {reply: Selection(Offset(12, 0), Offset(6, 12))}
        await pilot.pause()

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=select)


def test_a_focused_reply(snap_compare, settings):
    write_history(settings.data_dir, "alice", [(QUESTION, CODE_AND_TABLE)])

    async def focus(pilot):
        app = pilot.app
        await wait_ready(pilot)
        await wait_until(pilot, lambda: "ctx" in app.chat.status.plain, what="the context")
        await wait_settled(pilot)
        await pilot.press("ctrl+up")
        await wait_until(pilot, lambda: isinstance(app.focused, AssistantMessage), what="the reply focused")
        await pilot.pause()

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=focus)
