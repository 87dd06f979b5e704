"""The render cache: the early view's replies drawn from their lines as last drawn, exactly as the
renderer draws them, and rendered as before whenever anything they depend on changed.

The real app, store and files. A first run quits with Ctrl+Q (which writes the cache); the next one
holds the profile's lock while it looks at the early view (tests/ui/test_early_view.py explains).
"""

from __future__ import annotations

import json

from edgechat_tui.storage.tail import current_conversation
from edgechat_tui.ui import render_cache
from edgechat_tui.ui.markdown import selection
from edgechat_tui.ui.widgets.early_reply import EarlyReply
from edgechat_tui.ui.widgets.messages import AssistantMessage
from edgechat_tui.ui.widgets.reply import ReplyMarkdown
from tests.ui.conftest import SIZE, screen_text, wait_ready, wait_settled, wait_until, write_history
from tests.ui.test_early_view import HeldLock, early_app

ANSWER = ("## Step {i}\n\nUse a **loop** and `range`:\n\n"
          "```python\nfor x in range({i}):\n    print(x)\n```\n\n"
          "- it is *simple*\n- it is fast ({i} steps)\n\n> quoted {i}\n")
TURNS = [(f"question {i}", ANSWER.format(i=i)) for i in range(12)]
NEWEST = "it is fast (11 steps)"


def drawn(body) -> list:
    """What a reply's body draws, line by line (segments: text, style, meta)."""
    return [list(body.render_line(y)) for y in range(body.size.height)]


def pane_text(app) -> list[str]:
    """The rows of the screen the conversation pane covers, less its scrollbar (which moves as the
    store's view mounts the earlier messages above)."""
    region = app.chat.chat_log.region
    return [row[region.x:region.right - 2] for row in screen_text(app).split("\n")[region.y:region.bottom]]


def replies(app) -> list[AssistantMessage]:
    return list(app.query(AssistantMessage))


async def laid_out(pilot) -> None:
    """Until every reply has rendered and been laid out (after the upgrade mounted its new body)."""
    await wait_settled(pilot)
    await wait_until(pilot, lambda: all(r.body.size.height for r in replies(pilot.app)), what="the layout")


async def upgraded_as_drawn(pilot, before: dict[str, list]) -> None:
    """Until each reply has taken its ReplyMarkdown (the renderer loaded) and been laid out; then every
    reply drawn early (``before``, by its text) draws what it drew then."""
    app = pilot.app
    await wait_until(pilot, lambda: all(isinstance(r.body, ReplyMarkdown) for r in replies(app)),
                     what="the upgrade")
    await laid_out(pilot)
    for reply in replies(app):
        if reply.body.markdown in before:
            assert drawn(reply.body) == before[reply.body.markdown]


async def first_run(settings, size=SIZE) -> dict[str, list]:
    """Start, show the conversation, quit: the cache is written. What each reply drew, by its text."""
    app = early_app(settings)
    async with app.run_test(size=size) as pilot:
        await wait_ready(pilot)
        await wait_settled(pilot)
        await wait_until(pilot, lambda: app.workers._workers == set() or all(
            isinstance(r.body, ReplyMarkdown) for r in replies(app)), what="the replies")
        shown = {r.body.markdown: drawn(r.body) for r in replies(app) if r.body.size.height}
        await pilot.press("ctrl+q")
    return shown


async def test_the_early_view_draws_replies_from_the_cache_as_the_renderer_draws_them(settings, fake):
    write_history(settings.data_dir, "alice", TURNS)
    before = await first_run(settings)
    path = render_cache.cache_path(settings.data_dir, "alice")
    assert path.exists() and path.stat().st_mode & 0o777 == 0o600
    lock = HeldLock(settings.data_dir)
    try:
        app = early_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: NEWEST in screen_text(app), what="the early view")
            early = [r.body for r in replies(app)]
            assert early and all(isinstance(body, EarlyReply) for body in early)
            assert all(body.fallbacks == 0 for body in early)  # drawn from the cache alone
            for body in early:
                assert drawn(body) == before[body.markdown]
            screen = pane_text(app)
            lock.release()
            await wait_ready(pilot)
            # Once the renderer has loaded, each reply takes its ReplyMarkdown: the screen does not change.
            await upgraded_as_drawn(pilot, before)
            assert pane_text(app) == screen
    finally:
        lock.release()


async def test_another_width_renders_the_reply_as_before(settings, fake):
    write_history(settings.data_dir, "alice", TURNS)
    await first_run(settings)
    narrow = (80, 30)
    lock = HeldLock(settings.data_dir)
    try:
        app = early_app(settings)
        async with app.run_test(size=narrow) as pilot:
            await wait_until(pilot, lambda: NEWEST in screen_text(app), what="the early view")
            early = [r.body for r in replies(app)]
            assert all(isinstance(body, EarlyReply) and body.fallbacks > 0 for body in early)
            shown = {body.markdown: drawn(body) for body in early}
            lock.release()
            await wait_ready(pilot)
            await upgraded_as_drawn(pilot, shown)
    finally:
        lock.release()


async def test_other_styles_or_a_changed_message_are_not_drawn_from_the_cache(settings, fake):
    write_history(settings.data_dir, "alice", TURNS)
    await first_run(settings)
    history = current_conversation(settings.data_dir, "alice")  # moved into the library by the first run
    path = render_cache.cache_path(settings.data_dir, "alice")
    data = json.loads(path.read_text())
    for reply in data["replies"]:
        reply["styles"] = reply["styles"].replace("dark=True", "dark=False").replace("dark=False", "dark=?")
    path.write_text(json.dumps(data))
    # And the newest reply is not the one cached any more (another process rewrote it).
    history.write_bytes(history.read_bytes().replace(b"fast (11 steps)", b"fast (eleven steps)"))
    lock = HeldLock(settings.data_dir)
    try:
        app = early_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "it is fast (eleven steps)" in screen_text(app),
                             what="the early view")
            bodies = [r.body for r in replies(app)]
            assert all(isinstance(b, ReplyMarkdown) or b.fallbacks > 0 for b in bodies)
            assert isinstance(bodies[-1], ReplyMarkdown)  # its text is in no cached reply
    finally:
        lock.release()


def _cached(settings) -> tuple:
    path = render_cache.cache_path(settings.data_dir, "alice")
    return path, json.loads(path.read_text())


async def test_a_cache_holding_what_it_may_not_is_not_used(settings, fake):
    write_history(settings.data_dir, "alice", TURNS)
    await first_run(settings)
    path, data = _cached(settings)
    assert render_cache.load(path)  # as written: used
    original = json.dumps(data)

    def tampered(change) -> dict:
        copy = json.loads(original)
        line = next(line for reply in copy["replies"] for lines in reply["lines"].values() for line in lines
                    if line)
        change(line[0])
        path.write_text(json.dumps(copy))
        return render_cache.load(path)

    assert tampered(lambda segment: segment.__setitem__(0, "\x1b]52;c;aGk=\x07")) == {}  # an escape sequence
    assert tampered(lambda segment: segment.__setitem__(1, "bold link https://example.com")) == {}
    assert tampered(lambda segment: segment.__setitem__(2, {"@click": "app.quit"})) == {}
    assert tampered(lambda segment: segment.__setitem__(2, {"offset": ["0", 1]})) == {}
    # Every other shape a damaged or edited file may have: never used, never an error.
    for change in (lambda segment: segment.__setitem__(1, "not a colour zzz"),
                   lambda segment: segment.__setitem__(1, "on #zzzzzz"),
                   lambda segment: segment.__setitem__(1, 7),
                   lambda segment: segment.__setitem__(0, 7),
                   lambda segment: segment.__setitem__(0, None),
                   lambda segment: segment.__setitem__(2, "offset"),
                   lambda segment: segment.__setitem__(2, {"offset": [0, 1, 2]}),
                   lambda segment: segment.__setitem__(0, "\ud800"),  # a lone surrogate
                   lambda segment: segment.__setitem__(0, segment[0] + "x"),  # wider than drawn
                   lambda segment: segment.__setitem__(0, "界" * len(segment[0])),  # wide cells
                   lambda segment: segment.append("extra"),
                   lambda segment: segment.clear()):
        assert tampered(change) == {}
    for document in ([], {"version": data["version"], "code": data["code"], "replies": "x"},
                     {"version": data["version"], "code": data["code"], "replies": ["x"]},
                     {"version": data["version"], "code": data["code"],
                      "replies": [{"text": "t", "styles": "s", "lines": {"wide": []}}]},
                     {"version": data["version"], "code": data["code"],
                      "replies": [{"text": "t", "styles": "s", "lines": {"80": [7]}}]}):
        path.write_text(json.dumps(document))
        assert render_cache.load(path) == {}, document
    path.write_bytes(b"\xff\xfe not utf-8")
    assert render_cache.load(path) == {}
    copy = json.loads(original)
    copy["code"] += "another version"
    path.write_text(json.dumps(copy))
    assert render_cache.load(path) == {}
    path.write_bytes(b"{not json")
    assert render_cache.load(path) == {}


def test_the_cache_keeps_the_decoration_marks_the_renderer_sets():
    assert render_cache.MARK_KEY == selection.MARK
    assert render_cache.MARK_KINDS == {selection.PAD, selection.CODE_TOP, selection.CODE_LABEL}


async def test_b_on_a_reply_drawn_from_the_cache_copies_its_code(settings, fake):
    from tests.ui.recorded_clipboard import record_copies

    write_history(settings.data_dir, "alice", TURNS)
    await first_run(settings)
    lock = HeldLock(settings.data_dir)
    try:
        app = early_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: NEWEST in screen_text(app), what="the early view")
            newest = replies(app)[-1]
            assert isinstance(newest.body, EarlyReply)
            clipboard = record_copies(app)
            await pilot.press("ctrl+up", "b")  # the newest reply focused, its code block copied
            await wait_until(pilot, lambda: clipboard.copies != [], what="the copy")
            assert clipboard.copies == ["for x in range(11):\n    print(x)"]
            assert isinstance(newest.body, ReplyMarkdown)  # it took its ReplyMarkdown to do it
    finally:
        lock.release()
