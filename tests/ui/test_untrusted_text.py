"""Untrusted text: control characters never shown, markup never parsed, links and actions inert."""

from __future__ import annotations

import re

from textual import events

from tests.fakes.workers_ai import ErrorReply, Reply
from tests.ui.conftest import SIZE, make_app, screen_text, send, wait_ready, wait_until

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
HOSTILE = (
    "Hello \x1b]0;PWNED-TITLE\x07world \x1b[2Jcleared \x9b31mred\x1b[0m \x1b]52;c;UFdORUQ=\x07"
    "bell\x07 [@click=app.quit]click me[/] and [bold red]not bold[/] and [a link](https://example.com) end."
)


def find_on_screen(app, text: str) -> tuple[int, int]:
    for y, line in enumerate(screen_text(app).splitlines()):
        x = line.find(text)
        if x >= 0:
            return x, y
    raise AssertionError(f"{text!r} is not on the screen")


async def test_escape_sequences_split_across_chunks_never_reach_the_screen(settings, fake):
    # Three-character pieces cut every escape sequence in two (or three).
    fake.enqueue(Reply(HOSTILE, chunk_size=3, delay=0.002))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "be nasty")
        await wait_ready(pilot)
        reply = app.chat.chat_log.entries[-1].widget
        assert not CONTROL.search(reply.text)
        assert "PWNED" not in reply.text and "UFdORUQ" not in reply.text
        text = screen_text(app)
        assert not CONTROL.search(text)
        assert "Hello world cleared red bell" in text
        # Markup is shown as typed, never interpreted.
        assert "[@click=app.quit]click me[/]" in text
        assert "[bold red]not bold[/]" in text


async def test_clicking_action_markup_or_a_link_does_nothing(settings, fake, monkeypatch):
    opened: list[str] = []
    fake.enqueue(Reply(HOSTILE))
    app = make_app(settings)
    monkeypatch.setattr(app, "open_url", lambda url, **kw: opened.append(url))
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "be nasty")
        await wait_ready(pilot)
        x, y = find_on_screen(app, "click me[/]")
        await pilot.click(offset=(x + 2, y))
        x, y = find_on_screen(app, "a link")
        await pilot.click(offset=(x + 1, y))
        await pilot.pause(0.2)
        assert not app._exit
        assert opened == []
        assert app.chat.status.state == "ready"


async def test_user_text_and_error_text_are_shown_literally(settings, fake):
    fake.enqueue(ErrorReply(400, 5006, "bad input \x1b]0;EVIL\x07 [@click=app.quit]x[/]"))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        # A paste from anywhere: its control characters are dropped as it lands in the input.
        app.post_message(events.Paste("[b]my markup[/b] \x1b[31mred\x1b]0;PASTED\x07"))
        await pilot.pause()
        assert app.chat.prompt.text == "[b]my markup[/b] red"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.failed_text is not None and app.chat.turn is None,
                         what="the failure")
        text = screen_text(app)
        assert "EVIL" not in text and not CONTROL.search(text)
        assert "[@click=app.quit]x[/]" in text
        assert app.chat.prompt.text == "[b]my markup[/b] red"
        app.chat.prompt.set_text("")
        fake.enqueue(Reply("ok"))
        app.chat.prompt.set_text("[b]my markup[/b]")
        await pilot.press("enter")
        await wait_ready(pilot)
        assert "[b]my markup[/b]" in screen_text(app)


async def test_a_model_id_with_brackets_is_shown_as_typed(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        app.chat.prompt.set_text("/model @cf/x/[b]y[/b]")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "[b]y[/b]" in (app.chat.header.model or ""), what="the header")
        await pilot.pause()
        assert "@cf/x/[b]y[/b]" in screen_text(app).splitlines()[0]
