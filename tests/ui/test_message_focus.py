"""Messages take focus: Ctrl+Up from the input, Up/Down and j/k between them, c copies one, b its
code blocks in turn, a click on a code block's label copies it; ``/copy N`` copies any reply."""

from __future__ import annotations

from edgechat_tui.ui.markdown.selection import CODE_LABEL, code_top_lines, mark_of
from edgechat_tui.ui.widgets.focusable import FocusableMessage
from edgechat_tui.ui.widgets.messages import AssistantMessage, UserMessage
from edgechat_tui.ui.widgets.reply import ReplyMarkdown
from tests.ui.conftest import SIZE, make_app, wait_ready, wait_settled, wait_until, write_history
from tests.ui.recorded_clipboard import record_copies
from tests.ui.test_commands import notices, run

TWO_BLOCKS = (
    "First:\n\n```python\nprint('one')\n```\n\n- a list with code inside:\n\n"
    "  ```sh\n  echo two\n  echo three\n  ```\n\nAnd plain:\n\n    indented four\n"
)


def focused_entry(app) -> int | None:
    log = app.chat.chat_log
    focused = app.focused
    return next((i for i, e in enumerate(log.entries) if e.widget is not None and e.widget is focused), None)


async def test_focus_moves_from_the_input_through_the_messages_and_back(settings, fake):
    write_history(settings.data_dir, "alice", [("q1", "a1"), ("q2", "a2"), ("q3", "a3")])
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        entries = app.chat.chat_log.entries
        assert app.focused is app.chat.prompt
        await pilot.press("ctrl+up")
        await wait_until(pilot, lambda: app.focused is entries[-1].widget, what="the last message focused")
        for key, expected in [("up", 4), ("k", 3), ("up", 2), ("down", 3), ("j", 4), ("k", 3)]:
            await pilot.press(key)
            await wait_until(pilot, lambda expected=expected: focused_entry(app) == expected,
                             what=f"{key} to focus message {expected}")
        for _ in range(5):
            await pilot.press("k")
        await wait_until(pilot, lambda: focused_entry(app) == 0, what="the first message")
        await pilot.press("k")  # nothing above: the focus stays
        await pilot.pause()
        assert focused_entry(app) == 0
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.focused is app.chat.prompt, what="Esc back to the input")
        await pilot.press("ctrl+up")
        await wait_until(pilot, lambda: focused_entry(app) == 5, what="the last message again")
        await pilot.press("down")  # past the last message: back to the input
        await wait_until(pilot, lambda: app.focused is app.chat.prompt, what="down back to the input")
        # Typing on a message goes to the input (its own keys aside), which takes the focus back.
        app.chat.prompt.set_text("draft ")
        app.chat.prompt.move_cursor((0, 6))
        await pilot.press("ctrl+up", "k")
        await wait_until(pilot, lambda: focused_entry(app) == 4, what="a message focused")
        await pilot.press("h", "i", "space", "!")
        await wait_until(pilot, lambda: app.chat.prompt.text == "draft hi !", what="the typing in the input")
        assert app.focused is app.chat.prompt
        # A click in the pane does not take the focus.
        await pilot.click(entries[1].widget)
        await pilot.pause()
        assert app.focused is app.chat.prompt


async def test_the_focused_message_shows_and_the_footer_offers_its_keys(settings, fake):
    write_history(settings.data_dir, "alice", [("q1", "a1")])
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        footer_keys = {binding.key for _, binding, enabled, _ in app.screen.active_bindings.values()
                       if binding.show and enabled}
        assert "ctrl+up" in footer_keys
        await pilot.press("ctrl+up")
        reply = app.query(AssistantMessage).last()
        await wait_until(pilot, lambda: app.focused is reply, what="the reply focused")
        shown = {binding.action for _, binding, enabled, _ in app.screen.active_bindings.values()
                 if binding.show and enabled}
        assert {"copy_message", "copy_code", "move(-1)", "move(1)"} <= shown
        assert reply.has_pseudo_class("focus")


async def test_moving_up_loads_messages_the_pane_has_not_mounted(settings, fake):
    write_history(settings.data_dir, "alice", 30)  # 60 entries; the newest 16 are mounted
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        log = app.chat.chat_log
        await pilot.press("ctrl+up")
        await wait_until(pilot, lambda: focused_entry(app) == 59, what="the last message")
        start = log.window[0]
        target = start - 3
        for _ in range(59 - target):
            await pilot.press("up")
        await wait_until(pilot, lambda: focused_entry(app) == target, timeout=20,
                         what="the focus on a message that was not mounted")
        assert log.window[0] <= target
        assert isinstance(app.focused, UserMessage | AssistantMessage)


async def test_c_copies_the_focused_message(settings, fake):
    write_history(settings.data_dir, "alice", [("my **question**", "the *answer*\x1b[2J here")])
    app = make_app(settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_ready(pilot)
        clipboard = record_copies(app)
        await pilot.press("ctrl+up", "c")
        await wait_until(pilot, lambda: len(clipboard.copies) == 1, what="the reply copied")
        await pilot.press("k", "c")
        await wait_until(pilot, lambda: len(clipboard.copies) == 2, what="the question copied")
        assert clipboard.copies == ["the *answer* here", "my **question**"]
        messages = [str(note.message) for note in app._notifications]
        assert any(m.startswith("Copied 17 characters of the reply (OSC 52 only).") for m in messages)
        assert any(m.startswith("Copied 15 characters of your message (OSC 52 only).") for m in messages)


async def test_b_copies_the_code_blocks_in_turn(settings, fake):
    write_history(settings.data_dir, "alice", [("code please", TWO_BLOCKS)])
    app = make_app(settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_ready(pilot)
        await wait_settled(pilot)
        clipboard = record_copies(app)
        await pilot.press("ctrl+up")
        for count in range(1, 5):
            await pilot.press("b")
            await wait_until(pilot, lambda count=count: len(clipboard.copies) == count, what="a block copied")
        assert clipboard.copies == ["print('one')", "echo two\necho three", "indented four", "print('one')"]
        messages = [str(note.message) for note in app._notifications]
        assert any("of code block 2 of 3, sh, 2 lines (OSC 52 only)" in m for m in messages)
        assert any("of code block 3 of 3, 1 line (OSC 52 only)" in m for m in messages)


async def test_b_on_a_reply_without_code_says_so(settings, fake):
    write_history(settings.data_dir, "alice", [("hi", "no code here")])
    app = make_app(settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_ready(pilot)
        clipboard = record_copies(app)
        await pilot.press("ctrl+up", "b")
        await wait_until(pilot, lambda: any("no code block" in str(n.message) for n in app._notifications),
                         what="the notice")
        assert clipboard.copies == []


async def test_a_click_on_a_code_blocks_label_copies_that_block(settings, fake):
    write_history(settings.data_dir, "alice", [("code please", TWO_BLOCKS)])
    app = make_app(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_ready(pilot)
        await wait_settled(pilot)
        clipboard = record_copies(app)
        reply = app.query_one(ReplyMarkdown)
        lines = [reply._document.line(y) for y in range(reply._document.height)]
        tops = code_top_lines(lines)
        assert len(tops) == 3
        labelled = []
        for y in tops:
            x = 0
            for segment in lines[y]:
                if mark_of(segment) == CODE_LABEL:
                    labelled.append((x + 1, y))
                    break
                x += segment.cell_length
        assert len(labelled) == 2  # the indented block has no language, so no label
        for x, y in reversed(labelled):
            await pilot.click(reply, offset=(x, y))
            await pilot.pause()
        await wait_until(pilot, lambda: len(clipboard.copies) == 2, what="both blocks copied")
        assert clipboard.copies == ["echo two\necho three", "print('one')"]
        await pilot.click(reply, offset=(labelled[0][0], labelled[0][1] + 1))  # the code, not the label
        await pilot.pause()
        assert len(clipboard.copies) == 2


async def test_copy_n_counts_replies_from_the_newest(settings, fake):
    turns = [(f"q{i}", f"answer **{i}**") for i in range(30)]
    write_history(settings.data_dir, "alice", turns)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        clipboard = record_copies(app)
        assert app.chat.chat_log.window[0] > 0  # the oldest replies are not mounted
        for line, expected in [("/copy", 29), ("/copy 1", 29), ("/copy 2", 28), ("/copy 30", 0)]:
            await run(pilot, line)
            assert clipboard.copies[-1] == f"answer **{expected}**"
        assert notices(app)[-1].startswith("Copied 12 characters of reply 30 from the newest (OSC 52 only).")
        count = len(clipboard.copies)
        for line, problem in [("/copy 31", "There are only 30 replies to copy."),
                              ("/copy 0", "/copy takes a reply's number, not '0'."),
                              ("/copy two", "/copy takes a reply's number, not 'two'."),
                              ("/copy -1", "/copy takes a reply's number, not '-1'."),
                              ("/copy ３", "/copy takes a reply's number, not '３'.")]:
            await run(pilot, line)
            assert notices(app)[-1] == problem, line
        assert len(clipboard.copies) == count


async def test_focus_moves_and_copies_work_on_every_kind_of_message(settings, fake):
    write_history(settings.data_dir, "alice", [("q1", "a1")])
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        clipboard = record_copies(app)
        await run(pilot, "/copy 5")  # an error notice
        await run(pilot, "/system")  # an info notice
        kinds = [entry.kind for entry in app.chat.chat_log.entries]
        assert kinds == ["user", "assistant", "error", "info"]
        assert all(isinstance(entry.widget, FocusableMessage) for entry in app.chat.chat_log.entries)
        await pilot.press("ctrl+up", "c", "k", "c")
        await wait_until(pilot, lambda: len(clipboard.copies) == 2, what="the notices copied")
        system_notice = app.chat.chat_log.entries[-1].text
        assert system_notice.startswith("System prompt: ")
        assert clipboard.copies == [system_notice,
                                    "There is only 1 reply to copy.\n"
                                    "use /copy for the last reply, /copy 2 for the one before it, and so on"]


async def test_b_scrolls_the_copied_block_into_view(settings, fake):
    filler = "".join(f"Paragraph {i} of a long reply.\n\n" for i in range(40))
    long_reply = (f"```python\nfirst = 1\n```\n\n{filler}```sh\necho middle\n```\n\n{filler}"
                  "```js\nlast()\n```\n")
    write_history(settings.data_dir, "alice", [("long one", long_reply)])
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await wait_settled(pilot)
        clipboard = record_copies(app)
        log = app.chat.chat_log
        reply = app.query_one(ReplyMarkdown)
        await pilot.press("ctrl+up")
        await wait_until(pilot, lambda: isinstance(app.focused, AssistantMessage), what="the reply focused")
        tops = code_top_lines([reply._document.line(y) for y in range(reply._document.height)])
        for count, expected in [(1, "first = 1"), (2, "echo middle"), (3, "last()"), (4, "first = 1")]:
            await pilot.press("b")
            await wait_until(pilot, lambda count=count: len(clipboard.copies) == count, what="a block copied")
            assert clipboard.copies[-1] == expected
            await pilot.pause()
            top = reply.region.y + tops[(count - 1) % 3]
            view = log.content_region
            assert view.y <= top and top + 2 < view.bottom, (expected, top, view)
