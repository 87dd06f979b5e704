"""Selecting text in replies: what is highlighted is what is copied, as drawn; Ctrl+C in its three states.

The reply widget is a line-API widget: these tests hold it to Textual's selection contract through
the screen's own API (``screen.selections``, ``get_selected_text``, ``get_widget_and_offset_at``)
and through real mouse events from the Pilot, in the real app over the loopback fake.
"""

from __future__ import annotations

import itertools

from rich.segment import Segment
from textual.geometry import Offset
from textual.selection import SELECT_ALL, Selection

from edgechat_tui.ui.markdown.selection import mark_of
from edgechat_tui.ui.widgets.messages import AssistantMessage, UserMessage
from edgechat_tui.ui.widgets.reply import ReplyMarkdown
from tests.fakes.workers_ai import Reply
from tests.ui.conftest import (
    make_app,
    send,
    stored_messages,
    wait_ready,
    wait_settled,
    wait_until,
    write_history,
)
from tests.ui.recorded_clipboard import record_copies

SIZE = (100, 40)
QUESTION = "show me code"
REPLY = (
    "Here is **the** code, 日本語 too:\n\n"
    "```python\n"
    "def f(x):\n"
    "    return x  # ok\n"
    "```\n\n"
    "| a | b |\n"
    "|---|---|\n"
    "| 1 | 2 |\n\n"
    "- one\n"
    "- two\n\n"
    "> quoted `code`"
)
# The reply as drawn (the widget's lines): the code panel's padding and its label are decoration.
SHOWN = [
    "Here is the code, 日本語 too:",
    "",
    "",  # the code panel's first line: only the label "python", which is not copied
    "def f(x):",
    "    return x  # ok",
    "",  # the panel's last line
    "",
    "┌───┬───┐",
    "│ a │ b │",
    "├───┼───┤",
    "│ 1 │ 2 │",
    "└───┴───┘",
    "",
    "• one",
    "• two",
    "",
    "▌ quoted code",
]


async def open_reply(pilot) -> ReplyMarkdown:
    await wait_ready(pilot)
    await wait_settled(pilot)
    return pilot.app.query_one(ReplyMarkdown)


def cells(strip) -> list[tuple[str, object, object]]:
    """(character, background, foreground) for each character of a drawn line."""
    return [(character, segment.style.bgcolor if segment.style else None,
             segment.style.color if segment.style else None)
            for segment in strip for character in segment.text]


def highlighted_text(plain, strip) -> str:
    """The characters of ``strip`` drawn differently from the same line unselected (``plain``)."""
    before, after = cells(plain), cells(strip)
    assert [c for c, _, _ in before] == [c for c, _, _ in after]  # the same text, only restyled
    return "".join(a[0] for b, a in zip(before, after, strict=True) if a[1:] != b[1:])


def visible(strip) -> bool:
    """No character of the line is drawn in its own background's colour (unreadable)."""
    return all(character == " " or fg is None or fg != bg for character, bg, fg in cells(strip))


def expected_parts(lines: list[str], selection: Selection) -> dict[int, str]:
    """Per line, the part of it a selection covers (Textual's rules: end exclusive, None = edge)."""
    start = selection.start or Offset(0, 0)
    end = selection.end or Offset(len(lines[-1]), len(lines) - 1)
    parts = {}
    for y in range(start.y, min(end.y, len(lines) - 1) + 1):
        text = lines[y]
        first = start.x if y == start.y else 0
        last = end.x if y == end.y else len(text)
        parts[y] = text[first:last]
    return parts


async def test_the_reply_is_drawn_and_copied_as_shown(settings, fake):
    write_history(settings.data_dir, "alice", [(QUESTION, REPLY)])
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        reply = await open_reply(pilot)
        assert reply.shown_text() == SHOWN
        app.screen.selections = {reply: SELECT_ALL}
        await pilot.pause()
        assert app.screen.get_selected_text() == "\n".join(SHOWN)
        assert "ReplyMarkdown" not in app.screen.get_selected_text()


async def test_what_is_highlighted_is_exactly_what_is_copied(settings, fake):
    """Every selection from a set of start and end points across text, code, table, wide characters,
    decoration and blank lines: per line, the cells drawn in the selection style are the characters
    copied, and nothing else is."""
    write_history(settings.data_dir, "alice", [(QUESTION, REPLY)])
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        reply = await open_reply(pilot)
        plain = [reply.render_line(y) for y in range(len(SHOWN))]
        points = [Offset(0, 0), Offset(5, 0), Offset(19, 0), Offset(3, 1), Offset(0, 2), Offset(4, 3),
                  Offset(2, 4), Offset(40, 4), Offset(3, 8), Offset(0, 13), Offset(4, 16)]
        selections = [Selection(a, b) for a, b in itertools.combinations(points, 2)]
        selections += [Selection(None, Offset(6, 3)), Selection(Offset(7, 8), None), SELECT_ALL]
        for selection in selections:
            app.screen.selections = {reply: selection}
            await pilot.pause()
            parts = expected_parts(SHOWN, selection)
            for y in range(len(SHOWN)):
                line = reply.render_line(y)
                assert highlighted_text(plain[y], line) == parts.get(y, ""), (selection, y)
                assert visible(line), (selection, y)
            copied = app.screen.get_selected_text()
            assert copied == "\n".join(parts[y] for y in sorted(parts)).rstrip("\n"), selection
        app.screen.clear_selection()
        await pilot.pause()
        assert all(highlighted_text(plain[y], reply.render_line(y)) == "" for y in range(len(SHOWN)))


async def test_every_character_on_screen_maps_back_to_its_place_in_the_text(settings, fake):
    """The offsets on each drawn line: the cell where a character starts maps to that character."""
    write_history(settings.data_dir, "alice", [(QUESTION, REPLY)])
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        reply = await open_reply(pilot)
        region = reply.region
        assert region.height == len(SHOWN) and region.bottom <= SIZE[1]
        checked = 0
        for y in range(len(SHOWN)):
            x = 0
            for segment in reply.render_line(y):
                decoration = mark_of(segment) is not None
                for character in segment.text:
                    widget, offset = app.screen.get_widget_and_offset_at(region.x + x, region.y + y)
                    assert widget is reply
                    assert offset is not None and offset.y == y
                    if not decoration and offset.x < len(SHOWN[y]):
                        assert SHOWN[y][offset.x] == character, (x, y)
                        checked += 1
                    x += Segment(character).cell_length
        assert checked >= sum(len(line) for line in SHOWN)  # every copied character was reached


async def test_a_mouse_drag_highlights_and_copies(settings, fake):
    write_history(settings.data_dir, "alice", [(QUESTION, REPLY)])
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        reply = await open_reply(pilot)
        plain = [reply.render_line(y) for y in range(len(SHOWN))]
        clipboard = record_copies(app)
        # From "is" on the first line to "return" in the code (the panel's padding is column 0).
        await pilot.mouse_down(reply, offset=(5, 0))
        await pilot.hover(reply, offset=(7, 4))
        await pilot.mouse_up(reply, offset=(7, 4))
        await pilot.pause()
        expected = "is the code, 日本語 too:\n\n\ndef f(x):\n    ret"  # the end cell is included
        assert app.screen.get_selected_text() == expected
        assert highlighted_text(plain[0], reply.render_line(0)) == SHOWN[0][5:]
        assert highlighted_text(plain[4], reply.render_line(4)) == "    ret"
        assert app.focused is app.chat.prompt  # selecting does not take the focus from the input
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: clipboard.copies, what="the copy")
        assert clipboard.copies == [expected]
        assert app.clipboard == expected  # what went out as OSC 52


async def test_a_selection_across_messages_copies_each_as_shown(settings, fake):
    write_history(settings.data_dir, "alice", [(QUESTION, REPLY), ("and more?", "That is **all**.")])
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_reply(pilot)
        first_user = app.query(UserMessage).first()
        last_reply = app.query(AssistantMessage).last().body
        plain = last_reply.render_line(0)
        # From the "h" of "show" (after the bar and the padding) to the "s" of "is", which ends a
        # selection of several widgets without being in it (Textual's rule for the last widget).
        await pilot.mouse_down(first_user, offset=(3, 1))
        await pilot.hover(last_reply, offset=(6, 0))
        await pilot.mouse_up(last_reply, offset=(6, 0))
        await pilot.pause()
        text = app.screen.get_selected_text()
        model = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
        assert text == "\n".join([
            "how me code",
            f"assistant  {model}",
            *SHOWN,
            "alice",
            "and more?",
            f"assistant  {model}",
            "That i",
        ])
        assert highlighted_text(plain, last_reply.render_line(0)) == "That i"


async def test_ctrl_c_copies_a_selection_even_while_a_reply_streams(settings, fake):
    write_history(settings.data_dir, "alice", [(QUESTION, REPLY)])
    fake.enqueue(Reply("slow " * 400, chunk_size=5, delay=0.02))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        reply = await open_reply(pilot)
        clipboard = record_copies(app)
        await send(pilot, "go on")
        await wait_until(pilot, lambda: app.chat.turn is not None and app.chat.turn.reply is not None
                         and app.chat.turn.reply.text, what="the reply to start")
        app.screen.selections = {reply: Selection(Offset(0, 3), Offset(9, 3))}
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: clipboard.copies, what="the copy")
        assert clipboard.copies == ["def f(x):"]
        assert app.chat.turn is not None  # the reply was not stopped
        app.chat.action_stop()
        await wait_ready(pilot)


async def test_ctrl_c_without_a_selection_stops_the_reply_as_esc_does(settings, fake):
    fake.enqueue(Reply("streaming " * 400, chunk_size=6, delay=0.02))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        clipboard = record_copies(app)
        await send(pilot, "tell me")
        await wait_until(pilot, lambda: app.chat.turn is not None and app.chat.turn.reply is not None
                         and app.chat.turn.reply.text, what="the reply to start")
        await pilot.press("ctrl+c")
        await wait_ready(pilot)
        reply = app.query(AssistantMessage).last()
        assert reply.stopped
        assert stored_messages(settings.data_dir, "alice")[-1]["stopped"] is True
        assert clipboard.copies == []
        assert app.is_running


async def test_ctrl_c_when_idle_says_how_to_quit(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_ready(pilot)
        clipboard = record_copies(app)
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert any("to quit" in str(note.message) and "ctrl+q" in str(note.message)
                   for note in app._notifications)
        assert clipboard.copies == []
        assert app.is_running


async def test_ctrl_c_copies_the_text_selected_in_the_input(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_ready(pilot)
        clipboard = record_copies(app)
        app.chat.prompt.set_text("draft to keep")
        app.chat.prompt.select_all()
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: clipboard.copies, what="the copy")
        assert clipboard.copies == ["draft to keep"]
        assert app.chat.prompt.text == "draft to keep"
        assert any("Copied 13 characters of the selected input (OSC 52 only)" in str(note.message)
                   for note in app._notifications)


async def test_a_hostile_reply_copies_only_what_is_shown(settings, fake):
    hostile = "safe\x1b]52;c;aGk=\x07 text\x1b[2J and \x9b31m more\n\n```\n\x1b]0;title\x07code\n```"
    write_history(settings.data_dir, "alice", [(QUESTION, hostile)])
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        reply = await open_reply(pilot)
        clipboard = record_copies(app)
        app.screen.selections = {reply: SELECT_ALL}
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: clipboard.copies, what="the copy")
        copied = clipboard.copies[0]
        assert copied == "safe text and  more\n\n\ncode"  # whole sequences gone, C1 CSI too
        assert not any((ord(ch) < 0x20 and ch != "\n") or 0x7f <= ord(ch) < 0xa0 for ch in copied)
        assert "\x1b" not in app.clipboard
        for y in range(len(reply.shown_text())):
            for segment in reply.render_line(y):  # the only meta: offsets and decoration marks
                assert segment.style is None or set(segment.style.meta) <= {"offset", "edgechat"}
