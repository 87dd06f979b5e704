"""The rough edges of issue 13's "polish seen", each held as a class: notices mounted once,
an empty chat's context, the header at every width, help rows that keep their indent, repeated
errors collapsed, the status line after /clear and a failure, and a refused connection said at once."""

from __future__ import annotations

import pytest
from rich.cells import cell_len

from edgechat_tui.ui.screens.help import NAME_CELLS, HelpRow, HelpScreen
from edgechat_tui.ui.widgets.chat_log import ChatLog
from edgechat_tui.ui.widgets.header import SEPARATOR, header_parts
from edgechat_tui.ui.widgets.messages import ErrorNotice, InfoNotice
from tests.fakes.raw_server import closed_port
from tests.fakes.workers_ai import quota_error, server_error
from tests.ui.conftest import (
    SIZE,
    make_app,
    make_settings,
    screen_text,
    send,
    type_text,
    wait_ready,
    wait_until,
)

MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def mounted_notices(log: ChatLog) -> list:
    return [child for child in log.children if isinstance(child, InfoNotice | ErrorNotice)]


def assert_one_widget_per_entry(log: ChatLog) -> None:
    start, end = log.window
    window = log.entries[start:end]
    widgets = [entry.widget for entry in window]
    assert all(widget is not None and widget.parent is log for widget in widgets)
    notices = mounted_notices(log)
    assert len(notices) == sum(1 for e in window if e.kind in ("info", "warning", "error"))
    assert len({id(widget) for widget in widgets}) == len(widgets)


async def enter(pilot, line: str) -> None:
    app = pilot.app
    app.chat.prompt.clear()  # an unknown command stays in the input
    await type_text(pilot, line)  # typed: the completion list opens and closes, the pane resizes
    await pilot.press("enter")
    await wait_until(pilot, lambda: not any(w.is_running for w in app.chat.workers
                                              if w.group == "command"), what=f"{line} to run")
    await pilot.pause()


async def test_every_notice_is_mounted_once_whatever_the_command(settings, fake):
    """A theme change (or any notice) used to be shown twice: a scroll while the notice mounted
    loaded it again as a 'later' entry."""
    app = make_app(settings)
    lines = ["/theme nord", "/theme dracula", "/usage", "/system", "/theme nord", "/theme textual-dark",
             "/copy", "/retry", "/theme", "/usage", "/frobnicate", "/theme gruvbox"]
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        for count, line in enumerate(lines, 1):
            await enter(pilot, line)
            await wait_until(pilot, lambda c=count: len(log.entries) == c, what=f"the notice of {line}")
            await pilot.pause(0.05)
            assert_one_widget_per_entry(log)
        shown = screen_text(app)
        assert shown.count("Theme gruvbox (saved in the config).") == 1, (shown, log.entries[-1].text)


async def test_an_empty_chat_says_no_messages_yet_not_0_of_0(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await wait_until(pilot, lambda: "ctx" in app.chat.status.plain, what="the context")
        assert "no messages yet" in app.chat.status.plain
        assert "0 of 0" not in app.chat.status.plain
        await send(pilot, "hello")
        await wait_ready(pilot)
        await wait_until(pilot, lambda: "2 of 2 messages" in app.chat.status.plain, what="the new context")
        assert "no messages yet" not in app.chat.status.plain


@pytest.mark.parametrize("user, mode, model", [
    ("alice", "local", MODEL),
    ("a" * 64, "local", MODEL),
    ("bob", "remote agent.example.workers.dev", None),
    ("bob", "remote agent.example.workers.dev", "@cf/qwen/qwen3-30b-a3b-fp8"),
    ("carol", "local", "@cf/x/" + "界" * 30),  # wide characters count two cells
])
def test_the_header_fits_every_width_and_never_ends_in_a_separator(user, mode, model):
    for width in range(1, 160):
        words = header_parts(user, mode, model, width)
        line = SEPARATOR.join(words)
        assert cell_len(line) <= width or words == [""], (width, line)
        assert all(word for word in words) or words == [""], (width, words)
        assert not line.rstrip().endswith("│")
        if cell_len(user) <= width:
            assert user in words  # the user is the last to go
        full = SEPARATOR.join(["edgechat", user, mode] + ([model] if model else []))
        if cell_len(full) <= width:
            assert line == full
        if model and len(words) == 4:
            assert words[3] in (model, model.rsplit("/", 1)[-1]) or words[3].endswith("…")


@pytest.mark.parametrize("width", [60, 80, 100, 140])
async def test_the_header_on_screen_at_each_width(settings, fake, width):
    app = make_app(settings)
    async with app.run_test(size=(width, 30)) as pilot:
        await wait_ready(pilot)
        top = screen_text(app).splitlines()[0].rstrip()
        assert not top.endswith("│"), top
        assert "alice" in top and cell_len(top) <= width
        if width >= 80:
            assert MODEL in top
        else:  # 60 columns: the model without its prefix, cut with an ellipsis
            assert "llama-3.3" in top and top.endswith("…")


@pytest.mark.parametrize("width", [44, 60, 80])
async def test_help_descriptions_keep_their_indent_when_they_wrap(settings, fake, width):
    app = make_app(settings)
    async with app.run_test(size=(width, 200)) as pilot:  # tall enough for the whole help
        await wait_ready(pilot)
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        await pilot.pause()
        rows = list(app.screen.query(HelpRow))
        assert rows
        columns = {row.query_one(".what").region.x for row in rows}
        assert len(columns) == 1  # every description starts in the same column
        column = columns.pop()
        lines = screen_text(app).splitlines()
        wrapped = 0
        for row in rows:
            what = row.query_one(".what").region
            if what.height <= 1 or what.y + what.height > len(lines) or len(row._name) > NAME_CELLS:
                continue  # (a name longer than its cell wraps within it: under it is not blank)
            for y in range(what.y + 1, what.y + what.height):
                wrapped += 1
                line = lines[y]
                assert line[row.region.x:column].strip() == "", line  # under the name: blank
                assert line[column] != " ", line  # the text starts in the description's column
        assert wrapped > 0  # the test saw wrapped lines at this width


async def test_the_same_error_again_and_again_is_one_block_with_a_count(settings, fake):
    fake.enqueue(quota_error(), quota_error(), quota_error(), server_error(400))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        for attempt in range(1, 4):
            if attempt == 1:
                await send(pilot, "are you there?")
            else:
                await pilot.press("enter")  # the text is back in the input
            await wait_until(pilot, lambda: app.chat.failed_text is not None and app.chat.turn is None,
                             what=f"failure {attempt}")
            await pilot.pause()
            errors = [e for e in app.chat.chat_log.entries if e.kind == "error"]
            assert len(errors) == 1 and errors[0].repeat == attempt
            assert len(app.query(ErrorNotice)) == 1
            text = screen_text(app)
            assert (f"×{attempt}" in text) == (attempt > 1)
        await pilot.press("enter")  # a different failure: a block of its own
        await wait_until(pilot, lambda: len([e for e in app.chat.chat_log.entries if e.kind == "error"]) == 2,
                         what="the second kind of error")
        assert [e.repeat for e in app.chat.chat_log.entries if e.kind == "error"] == [3, 1]


async def test_clear_leaves_no_stale_status(settings, fake):
    from edgechat_tui.ui.screens.confirm import ConfirmScreen

    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hello")
        await wait_until(pilot, lambda: "last reply" in app.chat.status.plain, what="the reply's figures")
        fake.enqueue(quota_error())
        await send(pilot, "again")
        await wait_until(pilot, lambda: app.chat.status.state == "failed", what="the failure")
        app.chat.prompt.clear()
        for _ in range(2):
            app.chat.prompt.set_text("/clear")
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
            await pilot.press("y")
            await wait_until(pilot, lambda: "new conversation" in app.chat.status.plain, what="the status")
            status = app.chat.status.plain
            assert app.chat.status.state == "ready"
            assert "last reply" not in status and "failed" not in status and "Ctrl+R" not in status
            await wait_until(pilot, lambda: "no messages yet" in app.chat.status.plain, what="the context")
            await send(pilot, "hello")
            await wait_until(pilot, lambda: "last reply" in app.chat.status.plain, what="the reply")


async def test_a_refused_connection_is_said_at_once_and_reported_soon(tmp_path):
    settings = make_settings(tmp_path, None, CLOUDFLARE_ACCOUNT_ID="a" * 32, CLOUDFLARE_API_TOKEN="tok",
                             EDGECHAT_API_BASE=f"http://127.0.0.1:{closed_port()}/client/v4")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hello")
        # While it retries, the reply's label says why, not only "retrying".
        await wait_until(pilot, lambda: app.chat.turn is not None and app.chat.turn.reply is not None
                         and "refused the connection" in str(app.chat.turn.reply.label.render()),
                         what="the reason in the pane")
        await wait_until(pilot, lambda: app.chat.failed_text == "hello" and app.chat.turn is None,
                         what="the failure")
        assert any("refused the connection" in e.text for e in app.chat.chat_log.entries if e.kind == "error")


async def test_a_failure_that_keeps_part_of_the_reply_updates_the_context(settings, fake):
    """The status line's context is about the next request: after a cut-off reply was kept in the
    history, it counts those messages, not the ones before the failure."""
    from tests.fakes.workers_ai import CutStream

    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await wait_until(pilot, lambda: "no messages yet" in app.chat.status.plain, what="the context")
        fake.enqueue(CutStream("This reply will be cut off before it is complete, mid sentence.",
                               after_chunks=4))
        assert app.chat.send("tell me")  # not typed: no preview of the typing is pending to refresh it
        await wait_until(pilot, lambda: app.chat.status.state == "failed", what="the cut")
        await wait_until(pilot, lambda: "2 of 2 messages" in app.chat.status.plain, what="the new context")
        assert "cut off" in app.chat.status.plain


@pytest.mark.parametrize("typed", ["rose-pine", "nord", "gruvbox", "textual-dark"])
async def test_a_theme_typed_in_full_is_the_one_enter_takes(settings, fake, typed):
    """``/theme rose-pine`` + Enter used to take the highlighted ``rose-pine-dawn``: a longer name
    containing what was typed. What was typed in full comes first."""
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        assert typed in app.available_themes
        await enter(pilot, f"/theme {typed}")
        await wait_until(pilot, lambda: bool(app.chat.chat_log.entries), what="the notice")
        assert app.theme == typed
        assert app.chat.chat_log.entries[-1].text == f"Theme {typed} (saved in the config)."
