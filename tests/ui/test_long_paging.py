"""Moving through a long conversation: pages, held keys, the start and the end, the scrollbar.

The history is 300 numbered turns whose messages take rows the pane can estimate exactly, so the
view's ``scroll_y`` is its row in the whole conversation (the reserves stand for what is not
mounted): a page moves it by the pane's height, whatever is mounted at the time.
"""

from __future__ import annotations

import itertools
import math

from textual import events

from edgechat_tui.ui.widgets.chat_log import MAX_MOUNTED
from tests.ui.conftest import SIZE, make_app, screen_text, wait_ready, wait_until, write_history

TURNS = 300


def view_top(log) -> tuple[int, float]:
    """The index of the entry at the top of the view, and how far the view's top is into it."""
    hold = log._current_hold()
    assert hold is not None
    return log.entries.index(hold.entry), -hold.offset


async def settle(pilot) -> None:
    log = pilot.app.chat.chat_log
    await wait_until(pilot, lambda: not log.busy, what="the pane to settle")
    await pilot.pause()
    await wait_until(pilot, lambda: not log.busy, what="the pane to settle")


def hold_keys(app, key: str, count: int) -> None:
    """``count`` presses of ``key`` queued at once, as a held key's repeats arrive."""
    for _ in range(count):
        event = events.Key(key, None)
        event.set_sender(app)
        app._driver.send_message(event)


async def open_long(settings, turns: int = TURNS):
    write_history(settings.data_dir, "alice", turns)
    app = make_app(settings)
    return app


async def test_every_page_up_moves_up_a_screen_and_never_back_until_the_first_message(settings, fake):
    app = await open_long(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        await settle(pilot)
        page = log.scrollable_content_region.height
        total = log.virtual_size.height
        positions = [log.scroll_y]
        tops = [view_top(log)]
        presses = 0
        while log.scroll_y > 0 or log.window[0] > 0:
            await pilot.press("pageup")
            await settle(pilot)
            presses += 1
            positions.append(log.scroll_y)
            tops.append(view_top(log))
            assert log.window[1] - log.window[0] <= MAX_MOUNTED
            assert presses <= math.ceil(total / page) + 2, "more presses than the conversation has screens"
        # Every press moved up by a screen (the last by what was left), never down.
        steps = [before - after for before, after in itertools.pairwise(positions)]
        assert all(step == page for step in steps[:-1]), steps
        assert 0 < steps[-1] <= page
        assert all(later < earlier for earlier, later in itertools.pairwise(tops)), tops
        assert log.window[0] == 0 and log.scroll_y == 0
        assert "question 0" in screen_text(app)


async def test_the_entry_at_the_top_stays_on_its_row_while_a_page_mounts_above(settings, fake):
    app = await open_long(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        await settle(pilot)
        for _ in range(8):
            index, into = view_top(log)
            row = log.entries[index].widget.region.y  # on screen
            start = log.window[0]
            assert await log.load_earlier() > 0
            await settle(pilot)
            assert log.window[0] < start
            widget = log.entries[index].widget
            assert widget is not None and widget.region.y == row
            assert view_top(log) == (index, into)


async def test_held_page_up_counts_every_press_while_pages_load(settings, fake):
    app = await open_long(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        await settle(pilot)
        page = log.scrollable_content_region.height
        start_y, start_window = log.scroll_y, log.window
        presses = 12  # well past the mounted window: pages load while the presses are queued
        hold_keys(app, "pageup", presses)
        await wait_until(pilot, lambda: log.window[0] < start_window[0], what="pages to load")
        await settle(pilot)
        # Every press moved a screen: a lost press would be a screen short (a row or two may
        # differ where a marker line comes or goes).
        assert abs((start_y - log.scroll_y) - presses * page) <= 2, (start_y, log.scroll_y, page)
        # The rest of the way to the first message, held: every press counted, none lost.
        left = math.ceil(log.scroll_y / page)
        hold_keys(app, "pageup", left)
        await wait_until(pilot, lambda: log.window[0] == 0 and log.scroll_y == 0, timeout=30,
                         what="the first message")
        await settle(pilot)
        assert "question 0" in screen_text(app)
        # And down again, held, to the newest.
        hold_keys(app, "pagedown", math.ceil(log.max_scroll_y / page) + 1)
        at_end = lambda: log.window[1] == len(log.entries) and log.scroll_y == log.max_scroll_y  # noqa: E731
        await wait_until(pilot, at_end, timeout=30, what="the newest message")
        await settle(pilot)
        await wait_until(pilot, at_end, what="the newest message, settled")
        assert f"answer {TURNS - 1}" in screen_text(app)


async def test_ctrl_home_and_ctrl_end_jump_to_the_start_and_the_end_from_the_input(settings, fake):
    app = await open_long(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        assert app.focused is app.chat.prompt
        await pilot.press("ctrl+home")
        await wait_until(pilot, lambda: log.window[0] == 0, what="the oldest window")
        await settle(pilot)
        assert log.scroll_y == 0
        assert "question 0" in screen_text(app) and "answer 0" in screen_text(app)
        assert f"answer {TURNS - 1}" not in screen_text(app)
        assert app.focused is app.chat.prompt  # typing goes on where it was
        await pilot.press("ctrl+end")
        await wait_until(pilot, lambda: log.window[1] == len(log.entries), what="the newest window")
        await settle(pilot)
        assert log.scroll_y == log.max_scroll_y
        assert f"answer {TURNS - 1}" in screen_text(app)


async def test_home_and_end_jump_when_the_focus_is_on_a_message(settings, fake):
    app = await open_long(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log

        def focus_a_message() -> None:
            # Messages take focus on the select branch; here one is made focusable for the test.
            widget = log.entries[log.window[1] - 1].widget
            widget.can_focus = True
            widget.focus()

        focus_a_message()
        await pilot.pause()
        await pilot.press("home")
        await wait_until(pilot, lambda: log.window[0] == 0, what="the oldest window")
        await settle(pilot)
        assert log.scroll_y == 0 and "question 0" in screen_text(app)
        focus_a_message()
        await pilot.pause()
        await pilot.press("end")
        await wait_until(pilot, lambda: log.window[1] == len(log.entries), what="the newest window")
        await settle(pilot)
        assert log.scroll_y == log.max_scroll_y and f"answer {TURNS - 1}" in screen_text(app)
        # In the input, Home and End stay the cursor's.
        app.chat.prompt.focus()
        await pilot.pause()
        await pilot.press("home")
        await pilot.pause()
        assert log.window[1] == len(log.entries)


async def test_the_scrollbar_spans_the_whole_conversation(settings, fake):
    app = await open_long(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        await settle(pilot)
        # Open at the end: the scroll range is the whole conversation's, not the 16 mounted.
        rows_each_turn = 3 + 5  # a question: margin, name, text; an answer: margin, label, 3 lines
        assert abs(log.virtual_size.height - TURNS * rows_each_turn) <= rows_each_turn
        assert log.scroll_y == log.max_scroll_y
        assert log.vertical_scrollbar.position == log.scroll_y
        # Dragging the thumb to the middle shows the middle of the conversation.
        log.scroll_to(y=log.max_scroll_y / 2, animate=False, immediate=True)
        await wait_until(pilot, lambda: log.window[0] > 0 and log.window[1] < len(log.entries),
                         what="a window in the middle")
        await settle(pilot)
        index, _ = view_top(log)
        assert abs(index - len(log.entries) / 2) <= 8
        turn = index // 2
        text = screen_text(app)
        assert any(f"{word} {turn}" in text for word in ("question", "answer", "item")), text


async def test_the_palette_jumps_to_the_first_message(settings, fake):
    from tests.ui.conftest import type_text

    app = await open_long(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        await pilot.press("ctrl+p")
        await type_text(pilot, "first message")
        await wait_until(pilot, lambda: "Jump to the first message" in screen_text(app), what="the action")
        await pilot.press("enter")
        await wait_until(pilot, lambda: log.window[0] == 0 and "question 0" in screen_text(app),
                         what="the first message")


async def test_ctrl_home_while_a_reply_streams_says_why_and_paging_still_works(settings, fake):
    from tests.fakes.workers_ai import Reply
    from tests.ui.conftest import send

    fake.enqueue(Reply("word " * 400, chunk_size=4, delay=0.01))
    app = await open_long(settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        await send(pilot, "a long one")
        await wait_until(pilot, lambda: app.chat.turn is not None and app.chat.turn.shown_text,
                         what="streaming")
        await pilot.press("ctrl+home")
        notices = app._notifications
        await wait_until(pilot, lambda: any("once the reply has ended" in n.message for n in notices),
                         what="the notice")
        assert log.window[1] == len(log.entries)
        y = log.scroll_y
        await pilot.press("pageup")
        await pilot.pause()
        assert log.scroll_y < y
        await wait_ready(pilot)
