"""Long conversations: only a window of the history is mounted, pages come and go as the user scrolls."""

from __future__ import annotations

from edgechat_tui.ui.widgets.chat_log import INITIAL_WINDOW, MAX_MOUNTED, PAGE
from tests.ui.conftest import (
    SIZE,
    make_app,
    screen_text,
    send,
    type_text,
    wait_ready,
    wait_until,
    write_history,
)

TURNS = 5_000  # 10,000 messages
# Pages to load before the window is full and the far end starts to be unmounted.
PAGES_TO_FILL = (MAX_MOUNTED - INITIAL_WINDOW) // PAGE + 1


async def scroll_to_top(pilot) -> None:
    """Scroll (as the mouse wheel does) to the top of what is mounted: the row under the reserve."""
    log = pilot.app.chat.chat_log
    start = log.window[0]
    log.scroll_to(y=log.reserved_rows[0], animate=False, immediate=True)
    await wait_until(pilot, lambda: log.window[0] < start, what="an earlier page")
    await wait_until(pilot, lambda: not log.busy, what="the page to settle")


async def test_ten_thousand_messages_open_with_only_the_newest_mounted(settings, fake):
    write_history(settings.data_dir, "alice", TURNS)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        assert len(log.entries) == 2 * TURNS
        assert log.window == (2 * TURNS - INITIAL_WINDOW, 2 * TURNS)
        assert "answer 4999" in screen_text(app)
        assert log._earlier.has_class("-shown")
        assert f"{2 * TURNS - INITIAL_WINDOW:,} earlier messages" in str(log._earlier.render())
        await wait_until(pilot, lambda: "of 10,000 messages" in app.chat.status.plain, what="the context")


async def test_scrolling_up_mounts_earlier_pages_and_keeps_the_widget_count_bounded(settings, fake):
    write_history(settings.data_dir, "alice", TURNS)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        top_entry = log.entries[log.window[0]]
        await scroll_to_top(pilot)
        assert log.window[0] == 2 * TURNS - INITIAL_WINDOW - PAGE
        # The view stays where it was: the entry that was at the top is still in view.
        widget = top_entry.widget
        assert widget is not None and widget.is_mounted
        top = widget.virtual_region.y - log.scroll_y
        assert -widget.virtual_region.height <= top <= log.size.height
        counts = []
        for _ in range(PAGES_TO_FILL + 3):
            await scroll_to_top(pilot)
            start, end = log.window
            assert end - start <= MAX_MOUNTED
            counts.append(log.mounted_widget_count)
        assert log.window[1] < 2 * TURNS  # the newest pages were unmounted
        assert log._later.has_class("-shown")
        full = counts[PAGES_TO_FILL - 1]
        assert max(counts[PAGES_TO_FILL:]) <= full * 1.25  # bounded, however far up the user goes
        # Ctrl+End goes back to the newest messages.
        await pilot.press("ctrl+end")
        await wait_until(pilot, lambda: log.window == (2 * TURNS - INITIAL_WINDOW, 2 * TURNS),
                         what="the newest window")


async def test_scrolling_down_from_an_old_window_mounts_later_pages(settings, fake):
    write_history(settings.data_dir, "alice", 200)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        for _ in range(PAGES_TO_FILL + 1):
            await scroll_to_top(pilot)
        end = log.window[1]
        assert end < 400
        log.scroll_to(y=log.max_scroll_y, animate=False, immediate=True)
        await wait_until(pilot, lambda: log.window[1] > end and not log._paging, what="a later page")
        assert log.window[1] - log.window[0] <= MAX_MOUNTED


async def test_the_palette_loads_earlier_messages(settings, fake):
    write_history(settings.data_dir, "alice", 100)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        start = log.window[0]
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await type_text(pilot, "load earlier")
        await wait_until(pilot, lambda: "Load earlier messages" in screen_text(app), what="the action")
        await pilot.press("enter")
        await wait_until(pilot, lambda: log.window[0] == start - PAGE, what="a page from the palette")


async def test_sending_from_an_old_window_jumps_to_the_end(settings, fake):
    write_history(settings.data_dir, "alice", 300)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        for _ in range(PAGES_TO_FILL + 1):
            await scroll_to_top(pilot)
        assert log.window[1] < 600
        await send(pilot, "back to now")
        await wait_ready(pilot)
        assert log.window[1] == len(log.entries) == 602
        assert log.entries[-2].text == "back to now"
        await pilot.pause(0.1)
        assert log.scroll_y == log.max_scroll_y
