"""ReplyMarkdown: a streamed reply renders exactly as the same text rendered in one go, safely.

The widget is run in a real Textual app (Pilot) inside a chat-like scroll pane. Streams are fed in
small chunks with renders forced between them, so the incremental path (final blocks kept, the
open tail re-rendered) is what gets compared with a one-shot render of the whole text.
"""

from __future__ import annotations

import random
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.style import Style as RichStyle
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.strip import Strip
from textual.widgets import Input, Static

from edgechat_tui.ui.markdown import document as _md_document
from edgechat_tui.ui.markdown import lexers as _md_lexers
from edgechat_tui.ui.markdown.blocks import BlockSplitter
from edgechat_tui.ui.widgets import ReplyMarkdown

SIZE = (90, 30)

CORPUS = {
    "fences": (
        "Intro paragraph with `inline` code.\n\n"
        "```python\ndef area(r: float) -> float:\n    return 3.14159 * r ** 2  # approx\n\n\n"
        'print(area(2), "done")\n```\n\nAfter the code.\n\n'
        "~~~\nplain ``` fence, tildes\n~~~\n\n    indented code\n\n    still code\n\nEnd.\n"
    ),
    "tables": (
        "Text before\n| name | count | note |\n|------|:-----:|-----:|\n| alpha | 1 | first |\n"
        "| beta | 22 | a longer note that wraps when the terminal is narrow enough |\n\n"
        "Text after, with | pipes | but no table.\n\n| only | header |\n|---|---|\n"
    ),
    "nested_lists": (
        "- one\n- two\n  - two.a\n  - two.b\n\n    more of two.b\n- three\n\n"
        "1. first\n2. second\n   1. inner\n   2. inner two\n\n7) seventh, another list\n8) eighth\n\n"
        "* loose\n\n* list\n\nDone.\n"
    ),
    "trailing_spaces": (
        "Line with a hard break  \nnext line\\\nafter a backslash break   \n\n   \n\n"
        "Heading\n=======\n\nSub heading\n-----------\nText with trailing spaces   \n\n# ATX #\n"
    ),
    "quotes_and_rules": (
        "> a quote\nlazy continuation\n> > nested quote\n\n***\n\nFoo\n***x\n\n- - -\n\n"
        "> quote with a list:\n> - item\n> - item two\n"
    ),
    "unclosed_fence": "Start\n\n```js\nconst x = 1;\nconsole.log(x)\n",
    "links": (
        "See [the docs][d] and [inline](https://a.example/x) and <https://auto.example>.\n\n"
        '[d]: https://docs.example/ "Docs"\n\n![a picture](https://i.example/p.png)\n\n'
        "Forward [ref][later] used first.\n\n[later]: https://later.example\n"
    ),
    "markup_and_html": (
        "<div>not <b>html</b></div>\n\n[bold]x[/bold] [@click=app.quit]quit[/] `[red]z[/red]`\n\n"
        "**bold** *em* ~~gone~~ ***both***\n"
    ),
}


class EagerReply(ReplyMarkdown):
    """Renders on every chance (no frame coalescing), so each forced pause is a real render."""

    UPDATE_INTERVAL = 0.0
    STREAM_HEIGHT_STEP = 4


class ReplyApp(App[None]):
    """A chat-like screen: a scroll pane of messages and an input."""

    CSS = "#pane { height: 1fr; }"

    def __init__(self, *widgets: Static | ReplyMarkdown) -> None:
        super().__init__()
        self._widgets = widgets

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="pane"):
            yield from self._widgets
        yield Input(id="input")


def runs(strip: Strip) -> list[tuple[str, RichStyle | None]]:
    """A line as (text, style) runs, adjacent segments of the same style merged."""
    merged: list[tuple[str, RichStyle | None]] = []
    for segment in strip:
        if not segment.text:
            continue
        if merged and merged[-1][1] == segment.style:
            merged[-1] = (merged[-1][0] + segment.text, segment.style)
        else:
            merged.append((segment.text, segment.style))
    return merged


def picture(reply: ReplyMarkdown) -> list[list[tuple[str, RichStyle | None]]]:
    return [runs(line) for line in reply.rendered_lines()]


def assert_same_picture(actual: list, expected: list) -> None:
    """Equal line by line; on failure, say which line and run differ, readably."""
    for number, (got, want) in enumerate(zip(actual, expected, strict=False)):
        if got != want:
            pairs = zip(got, want, strict=False)
            first = next(((g, w) for g, w in pairs if g != w), (got[len(want) :], want[len(got) :]))
            raise AssertionError(f"line {number} differs: {first[0]!r} != {first[1]!r}")
    assert len(actual) == len(expected)


def plain(reply: ReplyMarkdown) -> str:
    return "\n".join(line.text for line in reply.rendered_lines())


async def settle(pilot: Pilot, *replies: ReplyMarkdown) -> None:
    """Wait until every reply has rendered all it was given (lexers loaded included)."""
    for _ in range(500):
        await pilot.pause()
        if all(reply.settled for reply in replies):
            await pilot.pause()
            return
    raise AssertionError("the replies did not settle")


async def stream(
    pilot: Pilot, reply: ReplyMarkdown, text: str, seed: int, check=None, every: float = 0.35
) -> None:
    """Feed ``text`` in chunks of 1-8 characters, rendering (then checking) at random points."""
    rnd = random.Random(seed)
    position = 0
    while position < len(text):
        size = rnd.randint(1, 8)
        reply.append(text[position : position + size])
        position += size
        if rnd.random() < every:
            await settle(pilot, reply)  # a render of everything received so far
            if check is not None:
                check()
    reply.finish()


# -- incremental == one-shot ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CORPUS))
@pytest.mark.parametrize("seed", [1, 2])
async def test_streamed_reply_renders_as_the_whole_text_at_once(name: str, seed: int) -> None:
    text = CORPUS[name]
    streamed = EagerReply(final=False)
    app = ReplyApp(streamed)
    async with app.run_test(size=SIZE) as pilot:
        whole = ReplyMarkdown(text)
        await app.query_one("#pane").mount(whole)
        await settle(pilot, whole)

        def final_blocks_match_the_whole_render() -> None:
            # Both sit in the same pane, so they have the same width at every layout.
            final = streamed._document.final_height
            assert_same_picture(picture(streamed)[:final], picture(whole)[:final])

        await stream(pilot, streamed, text, seed, final_blocks_match_the_whole_render)
        await settle(pilot, streamed, whole)
        assert streamed.markdown == text
        expected = picture(whole)
        assert_same_picture(picture(streamed), expected)
        assert streamed.size.height == len(expected) > 0


async def test_a_fence_split_mid_fence_stays_code_while_streaming() -> None:
    reply = EagerReply(final=False)
    app = ReplyApp(reply)
    async with app.run_test(size=SIZE) as pilot:
        reply.append("Here:\n\n``")
        await pilot.pause()
        reply.append("`python\nx = 1\n# a **comment** not markdown\n")
        await settle(pilot, reply)
        # The open fence is rendered as code already: no bold markup taken from inside it.
        assert "# a **comment** not markdown" in plain(reply)
        reply.append("``")
        await pilot.pause()
        reply.append("`\n\nAfter **bold**.\n")
        reply.finish()
        await settle(pilot, reply)
        text = plain(reply)
        assert "After bold." in text
        assert "```" not in text


LONG_SCRIPT = "".join(
    f'def step_{index}(value: int) -> int:\n    """Step {index}."""\n    return value * {index} + 1\n\n'
    for index in range(30)
)


async def test_a_long_code_block_streams_in_pieces_and_ends_exactly_as_one_shot() -> None:
    text = "A long script:\n\n```python\n" + LONG_SCRIPT + "```\n\nThat is all.\n"
    assert len(text) > _md_document.LONG_TAIL + 200
    assert LONG_SCRIPT.count("\n") > 3 * _md_document.FENCE_PIECE
    streamed = EagerReply(final=False)
    app = ReplyApp(streamed)
    async with app.run_test(size=SIZE) as pilot:
        whole = ReplyMarkdown(text)
        await app.query_one("#pane").mount(whole)

        def shows_the_code_so_far() -> None:
            # While the block is open, its panel shows every complete line received, in order.
            received = streamed.markdown
            if "```python\n" not in received or received.count("```") > 1:
                return
            code = received.split("```python\n", 1)[1]
            complete = [line.rstrip() for line in code[: code.rfind("\n") + 1].splitlines()]
            texts = [line.text.rstrip() for line in streamed.rendered_lines()]
            label = next(index for index, line in enumerate(texts) if line.endswith("python"))
            panel = [line[1:] for line in texts[label + 1 : -1]]  # the panel pads code by one
            assert panel[: len(complete)] == complete

        await stream(pilot, streamed, text, seed=3, check=shows_the_code_so_far, every=0.15)
        await settle(pilot, streamed, whole)
        assert_same_picture(picture(streamed), picture(whole))


async def test_finish_closes_an_open_code_block_as_a_one_shot_render_does() -> None:
    text = "Start\n\n```python\nx = 1\nprint(x)\n"
    streamed = EagerReply(final=False)
    app = ReplyApp(streamed)
    async with app.run_test(size=SIZE) as pilot:
        await stream(pilot, streamed, text, seed=5)
        whole = ReplyMarkdown(text)
        await app.query_one("#pane").mount(whole)
        await settle(pilot, streamed, whole)
        assert picture(streamed) == picture(whole)
        code_line = next(line for line in streamed.rendered_lines() if "print(x)" in line.text)
        assert code_line.cell_length == streamed.content_size.width  # the full-width code panel


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(CORPUS)), cuts=st.lists(st.integers(1, 12), min_size=1, max_size=200))
def test_block_splitting_does_not_depend_on_how_the_text_was_cut(name: str, cuts: list[int]) -> None:
    text = CORPUS[name]
    one = BlockSplitter()
    one.feed(text)
    expected = one.take_final() + one.close()
    assert "".join(expected) == text

    splitter = BlockSplitter()
    blocks: list[str] = []
    position, index = 0, 0
    while position < len(text):
        size = cuts[index % len(cuts)]
        splitter.feed(text[position : position + size])
        position += size
        index += 1
        blocks += splitter.take_final()
        assert "".join(blocks) + splitter.tail == text[:position]
    blocks += splitter.close()
    assert blocks == expected


# -- untrusted text ------------------------------------------------------------------------------

ESCAPES = (
    "Hello \x1b]0;evil title\x07world \x1b[31mred\x1b[0m and \x9b2Jclear "
    "\x1bP1$tdcs payload\x1b\\ tail\x07\x08 \x00end\r\n"
)


async def test_escape_sequences_split_across_chunks_never_reach_the_screen() -> None:
    reply = EagerReply(final=False)
    app = ReplyApp(reply)
    async with app.run_test(size=SIZE) as pilot:
        for character in ESCAPES:  # one character per chunk: every sequence is split
            reply.append(character)
            await pilot.pause()
        reply.finish()
        await settle(pilot, reply)
        assert reply.markdown == "Hello world red and clear  tail end\n"
        assert plain(reply) == "Hello world red and clear  tail end"
        for line in reply.rendered_lines():
            for segment in line:
                assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in segment.text)
        # What the terminal would be sent for the whole screen carries no escape from the reply.
        screen = app.export_screenshot()
        assert "evil title" not in screen and "payload" not in screen


async def test_markup_in_a_reply_is_shown_as_text_and_does_nothing_when_clicked() -> None:
    text = "[bold]x[/bold] [@click=app.quit]quit now[/] [link=https://evil.example]y[/link]\n"
    reply = ReplyMarkdown(text)
    app = ReplyApp(reply)
    opened: list[str] = []
    app.open_url = lambda url, **_: opened.append(url)  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, reply)
        first = reply.rendered_lines()[0]
        assert first.text.startswith("[bold]x[/bold] [@click=app.quit]quit now[/] [link=")
        for segment in first:
            assert segment.style is None or (not segment.style.meta and segment.style.link is None)
        column = first.text.index("quit now")
        assert await pilot.click(ReplyMarkdown, offset=(column + 2, 0))
        await pilot.pause()
        assert app.is_running and app.return_code is None
        assert opened == []


async def test_links_show_their_address_and_do_not_open_on_click() -> None:
    text = "Read [the docs](https://docs.example/guide) now.\n\nSee [ref][r].\n\n[r]: https://r.example/\n"
    reply = ReplyMarkdown(text)
    app = ReplyApp(reply)
    opened: list[str] = []
    app.open_url = lambda url, **_: opened.append(url)  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, reply)
        line = reply.rendered_lines()[0]
        assert line.text == "Read the docs (https://docs.example/guide) now."
        # A reference definition is shown as written, so its address is never hidden.
        assert plain(reply).endswith("See [ref][r].\n\n[r]: https://r.example/")
        assert all(segment.style is None or segment.style.link is None for segment in line)
        await pilot.click(ReplyMarkdown, offset=(line.text.index("docs") + 1, 0))
        await pilot.pause()
        assert opened == []


# -- layout, resize, theme -----------------------------------------------------------------------

LONG_PARAGRAPH = " ".join(f"word{index}" for index in range(120)) + "\n"


async def test_resize_rewraps_to_the_new_width() -> None:
    reply = ReplyMarkdown(LONG_PARAGRAPH + "\n| a | b |\n|---|---|\n| " + "x " * 30 + "| y |\n")
    app = ReplyApp(reply)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, reply)
        wide = reply.rendered_lines()
        await pilot.resize_terminal(44, 30)
        await settle(pilot, reply)
        narrow = reply.rendered_lines()
        width = reply.content_size.width
        assert width < 44
        assert len(narrow) > len(wide)
        assert all(line.cell_length <= width for line in narrow)
        assert " ".join(" ".join(line.text.split()) for line in narrow).startswith(
            " ".join(f"word{index}" for index in range(120))
        )
        fresh = ReplyMarkdown(reply.markdown)
        await app.query_one("#pane").mount(fresh)
        await settle(pilot, fresh)
        assert picture(fresh) == picture(reply)


async def test_replies_stack_in_a_chat_pane_with_their_full_height() -> None:
    first = ReplyMarkdown("# Title\n\n" + LONG_PARAGRAPH)
    user = Static("a user message", markup=False)
    live = EagerReply(final=False)
    app = ReplyApp(first, user, live)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, first, live)
        assert first.size.height == len(first.rendered_lines()) > 3
        assert user.region.y == first.region.bottom
        assert live.size.height == 0
        live.append("Streaming *now*\n\n- a\n- b\n- c\n")
        await settle(pilot, live)
        assert len(live.rendered_lines()) == 5
        # While streaming the height grows a few lines at a time: spare lines are blank.
        assert live.size.height == 8 == 2 * ReplyMarkdown.STREAM_HEIGHT_STEP
        assert live.region.y == user.region.bottom
        live.finish()
        await settle(pilot, live)
        assert live.size.height == 5


async def test_theme_change_recolours_the_reply() -> None:
    text = "# Heading\n\nSome `code` here.\n\n```python\nx = 1\n```\n"
    reply = ReplyMarkdown(text)
    app = ReplyApp(reply)
    async with app.run_test(size=SIZE) as pilot:
        app.theme = "textual-dark"
        await settle(pilot, reply)
        dark = picture(reply)
        app.theme = "textual-light"
        await settle(pilot, reply)
        light = picture(reply)
        assert [line.text for line in reply.rendered_lines()] == [
            "".join(text for text, _ in line) for line in dark
        ]
        assert light != dark
        fresh = ReplyMarkdown(text)
        await app.query_one("#pane").mount(fresh)
        await settle(pilot, fresh)
        assert picture(fresh) == light
        app.theme = "ansi-dark"  # terminal colours: code falls back to the ANSI highlight theme
        await settle(pilot, reply)
        assert [line.text for line in reply.rendered_lines()] == [
            line.text for line in fresh.rendered_lines()
        ]
        assert picture(reply) != light


async def test_only_the_lines_on_screen_are_drawn() -> None:
    drawn: list[int] = []

    class CountingReply(ReplyMarkdown):
        def render_line(self, y: int) -> Strip:
            drawn.append(y)
            return super().render_line(y)

    text = "\n\n".join(f"Paragraph {index} of a long reply." for index in range(400)) + "\n"
    reply = CountingReply(text)
    app = ReplyApp(reply)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, reply)
        assert reply.size.height == 799
        assert drawn and max(drawn) < 24 and len(set(drawn)) <= 24
        drawn.clear()
        app.query_one("#pane").scroll_end(animate=False)
        await settle(pilot, reply)
        assert drawn and min(drawn) >= 799 - 24


# -- code colours --------------------------------------------------------------------------------


def foreground_colours(reply: ReplyMarkdown, needle: str) -> set[str]:
    line = next(line for line in reply.rendered_lines() if needle in line.text)
    return {str(segment.style.color) for segment in line if segment.style and segment.text.strip()}


async def test_code_is_coloured_with_its_lexer_loaded_off_the_event_loop(monkeypatch) -> None:
    monkeypatch.setattr(_md_lexers, "_loaded", {})  # as in a fresh process: nothing loaded yet
    loaded_in: list[str] = []
    real_load = _md_lexers.load

    def recording_load(language: str):
        loaded_in.append(threading.current_thread().name)
        return real_load(language)

    monkeypatch.setattr(_md_lexers, "load", recording_load)
    reply = ReplyMarkdown("```python\ndef f(x):\n    return x + 1  # one more\n```\n")
    app = ReplyApp(reply)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, reply)
        assert loaded_in and threading.main_thread().name not in loaded_in
        assert len(foreground_colours(reply, "return x + 1")) >= 3


async def test_unknown_language_is_shown_plainly() -> None:
    reply = ReplyMarkdown("```no-such-language\nsome code\n```\n")
    app = ReplyApp(reply)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, reply)
        assert any("some code" in line.text for line in reply.rendered_lines())
        assert len(foreground_colours(reply, "some code")) == 1


# -- API -----------------------------------------------------------------------------------------


async def test_append_after_finish_is_refused_and_markdown_is_the_sanitised_text() -> None:
    reply = ReplyMarkdown(final=False)
    app = ReplyApp(reply)
    async with app.run_test(size=SIZE) as pilot:
        reply.append("a\x1b[")
        assert reply.markdown == "a"  # the unfinished sequence is held back, not shown
        reply.append("1mb")
        reply.finish()
        assert reply.final and reply.markdown == "ab"
        with pytest.raises(RuntimeError):
            reply.append("more")
        await settle(pilot, reply)
        assert plain(reply) == "ab"


async def test_empty_reply_takes_no_room() -> None:
    reply = ReplyMarkdown("")
    app = ReplyApp(reply, Static("below", markup=False))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, reply)
        assert reply.size.height == 0
        assert reply.rendered_lines() == []


async def test_tables_fit_the_width_and_fall_back_to_rows_when_too_narrow() -> None:
    table = (
        "| key | value | description |\n|---|---|---|\n"
        "| a | 1 | the first entry, described at some length so it must wrap |\n| b | 22 | short |\n"
    )
    reply = ReplyMarkdown(table)
    app = ReplyApp(reply)
    async with app.run_test(size=(40, 30)) as pilot:
        await settle(pilot, reply)
        lines = [line.text for line in reply.rendered_lines()]
        width = reply.content_size.width
        assert all(len(line) <= width for line in lines)
        assert lines[0].startswith("┌─────┬───────┬") and lines[-1].startswith("└")
        # Short columns keep their natural width; the long one wraps.
        assert lines[1].startswith("│ key │ value │ description")
        assert lines[3:6] == [
            "│ a   │ 1     │ the first entry,       │",
            "│     │       │ described at some      │",
            "│     │       │ length so it must wrap │",
        ]
        # 12 columns: too narrow for a three-column grid whether or not the pane shows a scrollbar
        # (at 14, the grid's height brings the scrollbar, which makes the pane narrow enough for rows).
        await pilot.resize_terminal(12, 30)
        await settle(pilot, reply)
        # The widget lays out again at its next paint after the resize: wait for that, not a fixed time.
        for _ in range(500):
            lines = [line.text for line in reply.rendered_lines()]
            if reply.content_size.width <= 12 and lines[0] == "key: a":
                break
            await pilot.pause()
        # Too narrow for a grid: each row as "header: value" lines, a blank line between rows.
        assert lines[:3] == ["key: a", "value: 1", "description:"]
        assert lines[lines.index("key: b") - 1 :] == ["", "key: b", "value: 22", "description:", "short"]
        assert all(len(line) <= reply.content_size.width for line in lines)


async def test_fence_names_from_a_reply_cannot_grow_the_lexer_cache_without_bound(monkeypatch) -> None:
    monkeypatch.setattr(_md_lexers, "_loaded", {})
    text = "".join(f"```lang{index}\nx\n```\n\n" for index in range(300))
    text += "```" + "y" * 200 + "\nlong name\n```\n\n```python\nprint(1)\n```\n"
    reply = ReplyMarkdown(text)
    app = ReplyApp(reply)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, reply)
        assert len(_md_lexers._loaded) <= _md_lexers._MAX_REMEMBERED
        assert "y" * 200 not in _md_lexers._loaded
        assert any("long name" in line.text for line in reply.rendered_lines())


async def test_holding_a_reply_never_keeps_its_text_off_screen_for_long() -> None:
    # The chat screen holds the reply's next render while the user types; a hold far longer than
    # MAX_HOLD (or one renewed on every key) must still let the text through.
    reply = ReplyMarkdown("", final=False)
    app = ReplyApp(reply)
    async with app.run_test(size=(60, 20)) as pilot:
        reply.append("First paragraph.\n\n")
        await settle(pilot, reply)
        for index in range(5):
            reply.hold(3600)
            reply.append(f"word{index} ")
            await pilot.pause()
        await settle(pilot, reply)
        lines = [line.text for line in reply.rendered_lines()]
        assert any("word4" in line for line in lines), lines
        reply.finish()
        reply.hold(3600)  # a finished reply is never held
        await settle(pilot, reply)
        assert reply.markdown.endswith("word4 ")
