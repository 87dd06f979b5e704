"""The conversation library in the chat screen with ``--remote`` against our Worker in workerd: the
RemoteAgent, its ``conversations`` and ``search`` extensions, real HTTP to real workerd and SQLite.

The list panel (open, rename, archive, delete to the trash), /new, /search opening a hit at its
message, /regen and Alt+←/→ between the versions with the ‹2/3› marker, /edit making a branch of the question,
/title and the header, and the TUI's --chat ID and --new. The
Worker runs as in tests/test_worker_e2e.py; its Workers AI stub answers 'You said "<message>". …', and
``[[vary]]`` ends each reply with its call number, so regenerated replies differ.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from edgechat_tui.ui.app import EdgechatApp
from edgechat_tui.ui.screens.ask_text import AskTextScreen
from edgechat_tui.ui.screens.confirm import ConfirmScreen
from edgechat_tui.ui.screens.search import MATCH_STYLE, SearchScreen
from tests.test_worker_e2e import WorkerProcess
from tests.ui.conftest import SIZE, make_settings, screen_text, send, type_text, wait_until
from tests.ui.library_helpers import open_panel, pane, wait_library

#: A Worker answers over loopback from another process: give a busy machine room.
WAIT = 30.0


@pytest.fixture(scope="module")
def worker() -> Iterator[str]:
    server = WorkerProcess()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def app(tmp_path, worker, request) -> EdgechatApp:
    settings = make_settings(tmp_path, None, EDGECHAT_REMOTE_URL=worker)
    user = "tui-" + hashlib.sha1(request.node.name.encode()).hexdigest()[:8]  # short: the header fits
    return EdgechatApp(settings, user, cursor_blink=False)


def notices(app) -> list[str]:
    return [e.text for e in app.chat.chat_log.entries if e.kind in ("info", "warning", "error")]


def errors(app) -> list[str]:
    return [e.text for e in app.chat.chat_log.entries if e.kind == "error"]


async def run(pilot, line: str) -> None:
    pilot.app.chat.prompt.set_text(line)
    await pilot.press("enter")


async def ready(pilot) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: app.agent is not None and app.agent.conversations is not None
                     and "connected" in app.chat.status.state, timeout=WAIT, what="the connection")
    await wait_library(pilot)


async def turn(pilot, text: str) -> None:
    """Send ``text``; wait for the Worker's answer to it in the pane."""
    app = pilot.app
    await send(pilot, text)
    await wait_until(pilot, lambda: app.chat.turn is None and pane(app)
                     and pane(app)[-1][0] == "assistant" and f'You said "{text}"' in pane(app)[-1][1],
                     timeout=WAIT, what=f"the reply to {text!r}")
    await wait_library(pilot)


async def new_conversation(pilot) -> str:
    app = pilot.app
    before = app.chat.library.current.id if app.chat.library.current else None
    await run(pilot, "/new")
    await wait_until(pilot, lambda: app.chat.library.current is not None
                     and app.chat.library.current.id != before and pane(app) == [],
                     timeout=WAIT, what="the new conversation")
    return app.chat.library.current.id


# --- the list ------------------------------------------------------------------------------------


async def test_list_opens_renames_archives_and_deletes(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        library = app.agent.conversations
        assert await library.list() == []
        await turn(pilot, "first topic about zebras")
        first = (await library.current()).id
        await wait_until(pilot, lambda: app.chat.header.title == "first topic about zebras",
                         timeout=WAIT, what="the first words as the title")
        second = await new_conversation(pilot)
        assert any("stays in the list" in text for text in notices(app))
        await turn(pilot, "second topic about yaks")
        third = await new_conversation(pilot)
        await turn(pilot, "third topic about owls")

        # The list: newest first, the open one marked, titles and counts from the Worker.
        await open_panel(pilot)
        panel = app.chat.panel
        assert [s.id for s in panel.summaries] == [third, second, first]
        assert panel.current_id == third and panel.highlighted.id == third
        shown = screen_text(app)
        for text in ("Conversations (3)", "● third topic about owls", "second topic about yaks",
                     "first topic about zebras", "2 messages"):
            assert text in shown, text

        # Open the oldest: its messages, its title; the next message goes into it.
        await pilot.press("down", "down")
        assert panel.highlighted.id == first
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.header.title == "first topic about zebras",
                         timeout=WAIT, what="the conversation to open")
        await wait_library(pilot)
        assert [kind for kind, _, _ in pane(app)] == ["user", "assistant"]
        assert pane(app)[0][1] == "first topic about zebras"
        assert not panel.is_open and app.chat.prompt.has_focus
        await turn(pilot, "more on zebras")
        assert 'the first was "first topic about zebras"' in pane(app)[-1][1]  # its own context
        assert (await library.current()).id == first
        assert (await library.get(first)).message_count == 4
        assert (await library.get(third)).message_count == 2

        # Rename from the list (the highlighted one is the open one, now the most recent).
        await open_panel(pilot)
        assert panel.highlighted.id == first
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, AskTextScreen), what="the rename dialog")
        assert app.screen.field.value == "first topic about zebras"
        app.screen.field.value = ""
        await type_text(pilot, "Zebras [b]and[/b] stripes")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.header.title == "Zebras [b]and[/b] stripes",
                         timeout=WAIT, what="the new title in the header")
        assert (await library.get(first)).title == "Zebras [b]and[/b] stripes"
        await wait_until(pilot, lambda: panel.summaries and panel.summaries[0].title
                         == "Zebras [b]and[/b] stripes", timeout=WAIT, what="the list")
        assert "Zebras [b]and[/b] stripes" in screen_text(app)  # as typed, never markup

        # Archive the second: gone from the list, in the archive, where it opens read-only.
        await pilot.press("down", "down")
        assert panel.highlighted.id == second
        await pilot.press("a")
        await wait_until(pilot, lambda: [s.id for s in panel.summaries] == [first, third],
                         timeout=WAIT, what="the list without it")
        assert (await library.get(second)).archived
        assert any(text.startswith("Archived “second topic about yaks”") for text in notices(app))
        await pilot.press("v")
        await wait_until(pilot, lambda: panel.view == "archived" and [s.id for s in panel.summaries]
                         == [second], timeout=WAIT, what="the archive")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.header.title == "second topic about yaks (archived)",
                         timeout=WAIT, what="it to open")
        await wait_library(pilot)
        assert pane(app)[0][1] == "second topic about yaks"
        await send(pilot, "can I write here?")
        await wait_until(pilot, lambda: app.chat.failed_text is not None and app.chat.turn is None,
                         timeout=WAIT, what="the refusal")
        assert app.chat.prompt.text == "can I write here?"  # the text typed comes back
        assert (await library.get(second)).message_count == 2
        app.chat.prompt.clear()
        await open_panel(pilot)
        assert panel.view == "archived"
        await pilot.press("u")
        await wait_until(pilot, lambda: not panel.summaries, timeout=WAIT, what="the archive to empty")
        assert not (await library.get(second)).archived
        await pilot.press("escape")

        # Delete the third, after the question: to the trash, restorable.
        await open_panel(pilot)
        for _ in range(3):  # v goes round: active, archived, trash
            if panel.view == "active":
                break
            panel.loaded = False
            await pilot.press("v")
            await wait_until(pilot, lambda: panel.loaded, timeout=WAIT, what="the next view")
        assert panel.view == "active" and {s.id for s in panel.summaries} == {first, second, third}
        target = next(i for i, s in enumerate(panel.summaries) if s.id == third)
        while panel.highlighted.id != panel.summaries[target].id:
            await pilot.press("down")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert "trash" in app.screen.question
        await pilot.press("n")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="the answer")
        assert third in [s.id for s in await library.list()]
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("y")
        await wait_until(pilot, lambda: third not in [s.id for s in panel.summaries], timeout=WAIT,
                         what="the list without it")
        assert {s.id for s in await library.list()} == {first, second}
        trash = await library.list(deleted=True)
        assert [s.id for s in trash] == [third] and trash[0].purge_at
        assert any("trash" in text and "third topic about owls" in text for text in notices(app))
        assert len(errors(app)) == 1  # the archived conversation's refusal, nothing else went wrong


async def test_deleting_the_open_conversation_starts_a_new_one(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await turn(pilot, "the only one")
        only = (await app.agent.conversations.current()).id
        await open_panel(pilot)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("y")
        await wait_until(pilot, lambda: app.chat.library.current is not None
                         and app.chat.library.current.id != only, timeout=WAIT, what="a new conversation")
        assert pane(app) == []
        await pilot.press("escape")
        await turn(pilot, "fresh start")
        assert "This is the first message" in pane(app)[-1][1]
        current = await app.agent.conversations.current()
        assert current.id != only and current.message_count == 2
        assert [s.id for s in await app.agent.conversations.list(deleted=True)] == [only]


# --- /new, /title and the header --------------------------------------------------------------


async def test_new_keeps_the_old_one_and_sends_no_old_context(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await turn(pilot, "the first conversation")
        first = app.chat.library.current.id
        second = await new_conversation(pilot)
        await run(pilot, "/new")  # an empty one is not made again
        await wait_until(pilot, lambda: any("new already" in text for text in notices(app)),
                         timeout=WAIT, what="the answer")
        assert app.chat.library.current.id == second
        await turn(pilot, "the second one")
        assert "This is the first message" in pane(app)[-1][1]  # the first's messages were not sent
        assert {s.id for s in await app.agent.conversations.list()} == {first, second}
        await wait_until(pilot, lambda: app.chat.header.title == "the second one", timeout=WAIT,
                         what="the title")


async def test_title_sets_the_title_and_the_header_shows_it(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.chat.header.title is None
        await turn(pilot, "what about tides")
        await wait_until(pilot, lambda: app.chat.header.title == "what about tides", timeout=WAIT,
                         what="the first words as the title")
        assert "what about tides" in screen_text(app).splitlines()[0]
        await run(pilot, "/title  Tides\x1b[31m [i]of[/i] the Moon ")
        await wait_until(pilot, lambda: (app.chat.header.title or "").startswith("Tides")
                         and (app.chat.header.title or "").endswith("the Moon"), timeout=WAIT,
                         what="the title")
        current = await app.agent.conversations.current()
        assert current.title == app.chat.header.title and "\x1b" not in current.title
        assert "[i]of[/i]" in current.title  # kept as written ...
        assert "[i]of[/i]" in screen_text(app).splitlines()[0]  # ... and shown as written, not as markup
        # Another run of edgechat (a new agent) finds the title on the Worker.
        await open_panel(pilot)
        assert app.chat.panel.summaries[0].title == current.title


# --- search ----------------------------------------------------------------------------------


async def test_search_highlights_and_opens_the_conversation_at_the_message(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await turn(pilot, "what about the zeppelin rides")
        old = app.chat.library.current.id
        for i in range(12):
            await turn(pilot, f"filler question {i}")
        await new_conversation(pilot)
        await turn(pilot, "nothing here to find")
        other = app.chat.library.current.id
        await run(pilot, "/search zeppelin")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen), timeout=WAIT,
                         what="the results")
        screen = app.screen
        # The question and, quoting it, its answer; the later answers quote "the first was …" too.
        assert screen.hits and {hit.chat for hit in screen.hits} == {old}
        assert all(hit.chat != other for hit in screen.hits)
        times = [hit.time for hit in screen.hits]
        assert times == sorted(times, reverse=True)  # newest first
        for index in range(len(screen.hits)):
            prompt = screen.results.get_option_at_index(index).prompt
            marked = [prompt.plain[s.start:s.end] for s in prompt.spans if s.style == MATCH_STYLE]
            assert marked and all(word.lower() == "zeppelin" for word in marked), marked
        # Choose the question itself: the oldest hit.
        question = next(i for i, hit in enumerate(screen.hits) if hit.role == "user")
        for _ in range(question):
            await pilot.press("down")
        hit_id = screen.hits[question].message_id
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.library.current is not None
                         and app.chat.library.current.id == old, timeout=WAIT, what="the conversation")
        await wait_library(pilot)
        log = app.chat.chat_log
        entry = next(e for e in log.entries if e.message_id == hit_id)
        assert entry.kind == "user" and "zeppelin" in entry.text

        def hit_in_view() -> bool:
            widget = entry.widget
            return (widget is not None and widget.region.height > 0
                    and log.region.y <= widget.region.y < log.region.bottom)

        await wait_until(pilot, hit_in_view, timeout=WAIT, what="the hit in view")
        assert "zeppelin" in screen_text(app)
        # Nothing found says so.
        await run(pilot, "/search xylophone")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen), timeout=WAIT,
                         what="the results")
        assert app.screen.hits == [] and "Nothing matches" in screen_text(app)
        await pilot.press("escape")


# --- branches --------------------------------------------------------------------------------


async def test_regen_makes_versions_and_alt_arrows_switch_them(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await turn(pilot, "tell me a joke [[vary]]")
        [(_, one, position)] = [p for p in pane(app) if p[0] == "assistant"]
        assert position is None  # one version: no marker
        await run(pilot, "/regen")
        await wait_until(pilot, lambda: pane(app)[-1][2] == (2, 2) and app.chat.turn is None,
                         timeout=WAIT, what="the second version")
        await wait_library(pilot)
        two = pane(app)[-1][1]
        assert two != one and two.startswith('You said "tell me a joke [[vary]]"')
        assert "This is the first message" in two  # asked again without the first answer
        assert "‹2/2›" in screen_text(app)
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: pane(app)[-1][2] == (3, 3) and app.chat.turn is None,
                         timeout=WAIT, what="the third version")
        await wait_library(pilot)
        three = pane(app)[-1][1]
        assert len({one, two, three}) == 3
        await pilot.press("alt+left")
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", two, (2, 3)), timeout=WAIT,
                         what="version 2")
        assert "‹2/3›" in screen_text(app)
        await pilot.press("alt+left")
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", one, (1, 3)), timeout=WAIT,
                         what="version 1")
        assert "‹1/3›" in screen_text(app)
        await pilot.press("alt+left")  # wraps round
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", three, (3, 3)), timeout=WAIT,
                         what="version 3")
        await pilot.press("alt+right")
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", one, (1, 3)), timeout=WAIT,
                         what="version 1 again")
        await wait_library(pilot)
        # The branch switched to is what the Worker keeps and what the model sees next.
        branch = await app.agent.conversations.branch()
        assert [b.message.content for b in branch] == ["tell me a joke [[vary]]", one]
        await turn(pilot, "explain it")
        assert 'the first was "tell me a joke [[vary]]"' in pane(app)[-1][1]
        branch = await app.agent.conversations.branch()
        assert [b.message.content for b in branch][:2] == ["tell me a joke [[vary]]", one]
        assert len(branch[1].siblings) == 3


async def test_edit_makes_a_branch_of_the_question(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await turn(pilot, "tell me about cats")
        await run(pilot, "/edit")
        await wait_until(pilot, lambda: app.chat.library.editing is not None, timeout=WAIT, what="the edit")
        assert app.chat.prompt.text == "tell me about cats"
        app.chat.prompt.set_text("tell me about dogs")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.turn is None and pane(app)
                         and 'You said "tell me about dogs"' in pane(app)[-1][1], timeout=WAIT,
                         what="the new branch")
        await wait_library(pilot)
        assert [(kind, position) for kind, _, position in pane(app)] == [("user", (2, 2)),
                                                                         ("assistant", None)]
        assert "This is the first message" in pane(app)[-1][1]  # the edited question alone
        assert "‹2/2›" in screen_text(app)
        await pilot.press("alt+left")
        await wait_until(pilot, lambda: pane(app)[0] == ("user", "tell me about cats", (1, 2)), timeout=WAIT,
                         what="the first version back")
        await wait_library(pilot)
        assert 'You said "tell me about cats"' in pane(app)[-1][1]


# --- --chat and --new ------------------------------------------------------------------------


async def _prepare(worker: str, user: str) -> tuple[str, str]:
    """Two conversations of ``user`` on the Worker, made by another client: (older, newer)."""
    from edgechat_tui.backends.remote.agent import RemoteAgent

    async with RemoteAgent(worker, user) as agent:
        await agent.check()
        async for _ in agent.send("an old question"):
            pass
        old = (await agent.conversations.current()).id
        newer = await agent.conversations.create("Newer one")
        return old, newer.id


@pytest.mark.parametrize("option", ["chat", "new", "unknown"])
async def test_tui_chat_and_new_against_the_worker(tmp_path, worker, option):
    user = f"tui-start-{option}"
    old, newer = await _prepare(worker, user)
    settings = make_settings(tmp_path, None, EDGECHAT_REMOTE_URL=worker)
    kw = {"chat": {"chat": old}, "new": {"new": True}, "unknown": {"chat": "0000000000zzzz"}}[option]
    app = EdgechatApp(settings, user, cursor_blink=False, **kw)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        library = app.agent.conversations
        if option == "chat":
            await wait_until(pilot, lambda: app.chat.header.title == "an old question", timeout=WAIT,
                             what="the conversation chosen")
            assert pane(app)[0][1] == "an old question"
            assert (await library.current()).id == old
        elif option == "new":
            await wait_until(pilot, lambda: app.chat.library.current is not None
                             and app.chat.library.current.id not in (old, newer), timeout=WAIT,
                             what="a new conversation")
            assert pane(app) == []
            assert {old, newer} <= {s.id for s in await library.list()}
        else:
            await wait_until(pilot, lambda: errors(app), timeout=WAIT, what="the error")
            error = next(e for e in app.chat.chat_log.entries if e.kind == "error")
            assert "most recent" in (error.advice or ""), (error.text, error.advice)
            assert app.chat.header.title == "Newer one"


async def test_a_search_hit_on_another_branch_opens_that_branch(app):
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await turn(pilot, "hello there [[vary]]")
        one = pane(app)[-1][1]
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: pane(app)[-1][2] == (2, 2) and app.chat.turn is None,
                         timeout=WAIT, what="the second version")
        await wait_library(pilot)
        two = pane(app)[-1][1]
        await pilot.press("alt+left")
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", one, (1, 2)), timeout=WAIT,
                         what="version 1")
        await wait_library(pilot)
        await run(pilot, "/search hello")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen), timeout=WAIT,
                         what="the results")
        screen = app.screen
        target = next(i for i, hit in enumerate(screen.hits)
                      if hit.role == "assistant" and hit.snippet == two)
        for _ in range(target):
            await pilot.press("down")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, SearchScreen), what="the search to close")
        await wait_until(pilot, lambda: pane(app) and pane(app)[-1] == ("assistant", two, (2, 2)),
                         timeout=WAIT, what="the hit's branch")
        await wait_library(pilot)
        assert pane(app) == [("user", "hello there [[vary]]", None), ("assistant", two, (2, 2))]
        assert two in screen_text(app) and "‹2/2›" in screen_text(app)
        assert (await app.agent.conversations.branch())[-1].message.content == two
        # The status line speaks of the version shown, not of the one Alt+← showed before.
        assert app.chat.status.detail == "version 2 of 2 · Alt+←/→ for the others"
