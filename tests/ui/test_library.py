"""The conversation library in the chat screen, driven through the real LocalAgent and its library
(files under ``tmp_path``) and the loopback Workers AI fake: the list panel, /new, /title, /search,
branches (/regen, /edit, Alt+←/→), /continue, the header's title, --chat and --new."""

from __future__ import annotations

import pytest

from edgechat_tui.ui.app import EdgechatApp
from edgechat_tui.ui.library import EDITING
from edgechat_tui.ui.screens.ask_text import AskTextScreen
from edgechat_tui.ui.screens.confirm import ConfirmScreen
from edgechat_tui.ui.screens.search import MATCH_STYLE, SearchScreen
from tests.fakes.workers_ai import Reply, quota_error
from tests.ui.conftest import SIZE, make_settings, screen_text, send, type_text, wait_until
from tests.ui.library_helpers import open_panel, pane, wait_library, write_conversation


@pytest.fixture
def settings(tmp_path, fake):
    return make_settings(tmp_path, fake, EDGECHAT_AUTO_TITLE="false")


def make_app(settings, **options) -> EdgechatApp:
    return EdgechatApp(settings, "alice", cursor_blink=False, **options)


def notices(app) -> list[str]:
    return [e.text for e in app.chat.chat_log.entries if e.kind in ("info", "warning", "error")]


async def run(pilot, line: str) -> None:
    pilot.app.chat.prompt.set_text(line)
    await pilot.press("enter")


async def summaries(app, **kw):
    return await app.agent.conversations.list(**kw)


async def conversation_ids(app, **kw) -> list[str]:
    return [s.id for s in await summaries(app, **kw)]


# --- the list --------------------------------------------------------------------------------


async def test_list_shows_every_conversation_and_opens_one(settings):
    data = settings.data_dir
    old = write_conversation(data, "alice", [("first topic", "first answer")], day=1, title="First")
    mid = write_conversation(data, "alice", [("second topic", "second answer")], day=2, title="Second")
    new = write_conversation(data, "alice", 3, day=3, title="Third")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        assert app.chat.header.title == "Third"  # the most recent is open
        assert not app.chat.panel.is_open
        await open_panel(pilot)
        panel = app.chat.panel
        assert [s.id for s in panel.summaries] == [new, mid, old]  # newest first
        assert panel.current_id == new
        shown = screen_text(app)
        for title in ("Conversations (3)", "● Third", "Second", "First", "6 messages", "2 messages",
                      "2025-01-02"):
            assert title in shown, title
        assert panel.highlighted.id == new
        await pilot.press("down")
        assert panel.highlighted.id == mid
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.header.title == "Second", what="the conversation to open")
        await wait_library(pilot)
        assert pane(app) == [("user", "second topic", None), ("assistant", "second answer", None)]
        assert not panel.is_open
        assert app.chat.prompt.has_focus
        # The next message goes into the conversation opened.
        await send(pilot, "more on that")
        await wait_library(pilot)
        assert (await app.agent.conversations.current()).id == mid
        assert (await app.agent.conversations.get(mid)).message_count == 4
        assert (await app.agent.conversations.get(new)).message_count == 6


async def test_rename_from_the_list(settings):
    chat = write_conversation(settings.data_dir, "alice", 1, day=1, title="Old name")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        await open_panel(pilot)
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, AskTextScreen), what="the rename dialog")
        assert app.screen.field.value == "Old name"
        app.screen.field.value = "   "
        await pilot.press("enter")  # an empty title is refused in place
        assert isinstance(app.screen, AskTextScreen)
        app.screen.field.value = ""
        await type_text(pilot, "New [b]name[/b]")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.header.title == "New [b]name[/b]", what="the new title")
        assert (await app.agent.conversations.get(chat)).title == "New [b]name[/b]"
        await wait_until(pilot, lambda: app.chat.panel.summaries
                         and app.chat.panel.summaries[0].title == "New [b]name[/b]", what="the list")
        assert "New [b]name[/b]" in screen_text(app)  # shown as typed, never as markup
        # Esc in the dialog changes nothing.
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, AskTextScreen), what="the dialog")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, AskTextScreen), what="the dialog to close")
        assert (await app.agent.conversations.get(chat)).title == "New [b]name[/b]"


async def test_archive_view_reopen_and_restore(settings):
    data = settings.data_dir
    keep = write_conversation(data, "alice", [("keep me", "kept")], day=1, title="Keep")
    aside = write_conversation(data, "alice", [("put aside", "aside answer")], day=2, title="Aside")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        assert app.chat.header.title == "Aside"
        await open_panel(pilot)
        await pilot.press("down")  # Keep
        assert app.chat.panel.highlighted.id == keep
        await pilot.press("a")
        await wait_until(pilot, lambda: [s.id for s in app.chat.panel.summaries] == [aside],
                         what="the list without it")
        assert (await app.agent.conversations.get(keep)).archived
        assert any(text.startswith("Archived “Keep”") for text in notices(app))
        # v shows the archive, where it can be opened to read.
        await pilot.press("v")
        await wait_until(pilot, lambda: app.chat.panel.view == "archived"
                         and [s.id for s in app.chat.panel.summaries] == [keep], what="the archive")
        assert "Archived conversations (1)" in screen_text(app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.header.title == "Keep (archived)", what="it to open")
        await wait_library(pilot)
        assert pane(app) == [("user", "keep me", None), ("assistant", "kept", None)]
        assert any("archived" in text and "restored" in text for text in notices(app))
        # Sending into it is refused by the agent; the text comes back.
        await send(pilot, "can I write here?")
        await wait_until(pilot, lambda: app.chat.failed_text is not None and app.chat.turn is None,
                         what="the refusal")
        assert app.chat.prompt.text == "can I write here?"
        refusal = next(e for e in app.chat.chat_log.entries if e.kind == "error")
        assert "archived" in refusal.text and f"edgechat chats restore {keep}" in (refusal.hint or "")
        assert refusal.advice == "Your message is back in the input."  # no retry that cannot help
        assert "refused" in app.chat.status.plain and "Ctrl+R retries" not in app.chat.status.plain
        # Restore it from the archive as the notice says: it is active again, and sending works.
        app.chat.prompt.clear()
        note = next(text for text in notices(app) if "is archived" in text)
        assert "(/chats archived, then u)" in note
        await run(pilot, "/chats archived")
        await wait_until(pilot, lambda: app.chat.panel.is_open and app.chat.panel.view == "archived"
                         and [s.id for s in app.chat.panel.summaries] == [keep], what="the archive")
        await pilot.press("u")
        await wait_until(pilot, lambda: not app.chat.panel.summaries, what="the archive to empty")
        assert not (await app.agent.conversations.get(keep)).archived
        assert app.chat.header.title == "Keep"
        await pilot.press("escape")
        await send(pilot, "now I can")
        await wait_library(pilot)
        assert (await app.agent.conversations.get(keep)).message_count == 4


async def test_delete_asks_and_goes_to_the_trash_restorable(settings):
    data = settings.data_dir
    gone = write_conversation(data, "alice", [("delete me", "bye")], day=1, title="Doomed")
    stay = write_conversation(data, "alice", 1, day=2, title="Stays")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        await open_panel(pilot)
        await pilot.press("down", "d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert "trash" in app.screen.question and "restored" in app.screen.question
        await pilot.press("n")  # No: nothing changes
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="the answer")
        assert set(await conversation_ids(app)) == {gone, stay}
        assert app.chat.status.detail == "nothing was deleted"
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("right", "left")  # the arrows move between the buttons: back on Cancel
        assert app.screen.focused.id == "no"
        await pilot.press("right", "enter")  # the action's button, chosen with Enter
        await wait_until(pilot, lambda: [s.id for s in app.chat.panel.summaries] == [stay],
                         what="the list without it")
        assert app.chat.status.detail != "nothing was deleted"  # it was, this time
        assert await conversation_ids(app) == [stay]
        trash = await summaries(app, deleted=True)
        assert [s.id for s in trash] == [gone] and trash[0].purge_at
        assert any("trash" in text and "Doomed" in text for text in notices(app))
        # v v: the trash; u restores it.
        await pilot.press("v")
        await wait_until(pilot, lambda: app.chat.panel.view == "archived" and app.chat.panel.loaded,
                         what="the archive")
        app.chat.panel.loaded = False
        await pilot.press("v")
        await wait_until(pilot, lambda: app.chat.panel.view == "trash"
                         and [s.id for s in app.chat.panel.summaries] == [gone], what="the trash")
        assert "Trash (1)" in screen_text(app)
        await pilot.press("u")
        await wait_until(pilot, lambda: not app.chat.panel.summaries, what="the trash to empty")
        assert set(await conversation_ids(app)) == {gone, stay}
        assert (await app.agent.conversations.get(gone)).message_count == 2


async def test_deleting_the_open_conversation_starts_a_new_one(settings):
    only = write_conversation(settings.data_dir, "alice", [("the only one", "yes")], day=1, title="Only")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        await open_panel(pilot)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("y")
        await wait_until(pilot, lambda: app.chat.library.current is not None
                         and app.chat.library.current.id != only, what="a new conversation")
        assert pane(app) == []
        said = notices(app)
        assert not any("stays in the list" in text for text in said), said  # it does not: it went
        assert any(text.startswith("Moved “Only” to the trash") and "/chats trash" in text for text in said)
        assert app.chat.panel.is_open  # the list stays, for more changes; Esc goes back to the input
        await pilot.press("escape")
        assert not app.chat.panel.is_open and app.chat.prompt.has_focus
        await send(pilot, "fresh start")
        await wait_library(pilot)
        current = await app.agent.conversations.current()
        assert current.id != only and current.message_count == 2
        assert [s.id for s in await summaries(app, deleted=True)] == [only]
        await run(pilot, "/chats trash")  # as the notice says: there, u restores it
        await wait_until(pilot, lambda: app.chat.panel.is_open and app.chat.panel.view == "trash"
                         and [s.id for s in app.chat.panel.summaries] == [only], what="the trash")
        await pilot.press("u")
        await wait_until(pilot, lambda: not app.chat.panel.summaries, what="the trash to empty")
        assert only in await conversation_ids(app)


# --- /new, /title, the header ----------------------------------------------------------------


async def test_new_starts_a_conversation_and_the_old_one_stays(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        await send(pilot, "the first conversation")
        await wait_library(pilot)
        first = (await app.agent.conversations.current()).id
        await wait_until(pilot, lambda: app.chat.header.title == "the first conversation",
                         what="the first words as the title")
        await run(pilot, "/new")
        await wait_until(pilot, lambda: app.chat.library.current is not None
                         and app.chat.library.current.id != first, what="the new conversation")
        assert pane(app) == []
        assert any("stays in the list" in text for text in notices(app))
        second = app.chat.library.current.id
        await run(pilot, "/new")  # an empty one is not made again: no pile of empty conversations
        await wait_until(pilot, lambda: any("new already" in text for text in notices(app)),
                         what="the answer")
        assert app.chat.library.current.id == second
        await send(pilot, "the second one")
        await wait_library(pilot)
        # The second conversation's request did not carry the first one's messages.
        sent = [m["content"] for m in fake.run_requests[-1].body["messages"] if m["role"] == "user"]
        assert sent == ["the second one"]
        ids = await conversation_ids(app)
        assert len(ids) == 2 and first in ids
        assert app.chat.header.title == "the second one"


async def test_title_sets_the_title_and_the_header_shows_it(settings):
    write_conversation(settings.data_dir, "alice", 1, day=1, title="Before")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        assert app.chat.header.title == "Before"
        assert "Before" in screen_text(app).splitlines()[0]
        await run(pilot, "/title  After\x1b[31m all ")
        await wait_until(pilot, lambda: app.chat.header.title == "After all"
                         or (app.chat.header.title or "").startswith("After"), what="the title")
        current = await app.agent.conversations.current()
        assert "\x1b" not in current.title and "\x1b" not in (app.chat.header.title or "")
        assert current.title.startswith("After")
        assert "After" in screen_text(app).splitlines()[0]


async def test_header_shows_the_automatic_title_after_the_first_reply(tmp_path, fake):
    settings = make_settings(tmp_path, fake, EDGECHAT_AUTO_TITLE="true")
    fake.title_queue.append(Reply("Tides [b]on[/b] the Moon"))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        assert app.chat.header.title is None
        await send(pilot, "how do tides work on the moon and on earth")
        await wait_library(pilot)
        # First the first words, then (a moment later, in the background) the model's title.
        await wait_until(pilot, lambda: app.chat.header.title == "Tides [b]on[/b] the Moon",
                         what="the model's title in the header")
        assert fake.title_requests
        assert (await app.agent.conversations.current()).title == "Tides [b]on[/b] the Moon"
        assert "Tides [b]on[/b] the Moon" in screen_text(app).splitlines()[0]  # as written, not markup


# --- search ----------------------------------------------------------------------------------


async def test_search_highlights_and_opens_the_conversation_at_the_message(settings):
    data = settings.data_dir
    turns = [(f"question {i}", f"answer {i}") for i in range(40)]
    turns[5] = ("what about the zeppelin rides", "zeppelin rides were slow")
    old = write_conversation(data, "alice", turns, day=1, title="Long one")
    write_conversation(data, "alice", [("nothing here", "nor here")], day=2, title="Other")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        assert app.chat.header.title == "Other"
        await run(pilot, "/search zeppelin")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen), what="the results")
        screen = app.screen
        assert [hit.chat for hit in screen.hits] == [old, old]
        assert screen.hits[0].time >= screen.hits[1].time  # newest first
        for index in range(len(screen.hits)):
            prompt = screen.results.get_option_at_index(index).prompt
            marked = [prompt.plain[span.start:span.end] for span in prompt.spans if span.style == MATCH_STYLE]
            assert marked and all(word.lower() == "zeppelin" for word in marked), marked
        assert "Long one" in screen_text(app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.header.title == "Long one", what="the conversation")
        await wait_library(pilot)
        log = app.chat.chat_log
        hit_id = screen.hits[0].message_id
        index = next(i for i, e in enumerate(log.entries) if e.message_id == hit_id)
        entry = log.entries[index]
        assert "zeppelin" in entry.text

        def hit_in_view() -> bool:
            widget = entry.widget
            return (widget is not None and widget.region.height > 0
                    and log.region.y <= widget.region.y < log.region.bottom)

        await wait_until(pilot, hit_in_view, what="the hit in view")
        assert log.window[1] < len(log.entries)  # not the newest messages: the hit's
        assert "zeppelin" in screen_text(app)


async def test_a_search_hit_in_a_conversation_that_fits_the_pane_shows_all_of_it(settings):
    # The pane showed a shorter conversation at its foot (Textual's anchor: a negative scroll
    # offset); opening the hit must not keep that offset for the new one (it hid the newer turn).
    data = settings.data_dir
    write_conversation(data, "alice", [("alpha one", "reply one"), ("alpha two", "reply two")], day=1,
                       title="Alpha")
    write_conversation(data, "alice", [("beta one", "reply beta")], day=2, title="Beta")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        assert "beta one" in screen_text(app)
        for hit in (0, 1):  # the newest match ("alpha two"), then the oldest ("alpha one")
            await run(pilot, "/search alpha")
            await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen), what="the results")
            for _ in range(hit):
                await pilot.press("down")
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.chat.header.title == "Alpha", what="the conversation")
            await wait_library(pilot)

            def all_shown() -> bool:
                text = screen_text(app)
                return all(words in text for words in ("alpha one", "reply one", "alpha two", "reply two"))

            await wait_until(pilot, all_shown, what="every message of the hit's conversation")
            log = app.chat.chat_log
            assert 0 <= log.scroll_y <= log.max_scroll_y or log.max_scroll_y == 0
            last = log.entries[-1].widget
            assert last is not None and last.region.bottom <= log.region.bottom  # none cut off below


async def test_search_with_nothing_found_says_so(settings):
    write_conversation(settings.data_dir, "alice", 1, day=1)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        await run(pilot, "/search xylophone")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen), what="the results")
        assert app.screen.hits == []
        assert "Nothing matches" in screen_text(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, SearchScreen), what="it to close")


# --- branches --------------------------------------------------------------------------------


async def test_regenerate_makes_versions_and_alt_arrows_switch_them(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        fake.enqueue(Reply("joke one"))
        await send(pilot, "tell me a joke")
        await wait_library(pilot)
        assert pane(app) == [("user", "tell me a joke", None), ("assistant", "joke one", None)]
        fake.enqueue(Reply("joke two"))
        await run(pilot, "/regen")
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", "joke two", (2, 2)),
                         what="the second version")
        await wait_library(pilot)
        assert pane(app) == [("user", "tell me a joke", None), ("assistant", "joke two", (2, 2))]
        assert "‹2/2›" in screen_text(app)
        # The model was asked the same question again, without the first answer.
        sent = fake.run_requests[-1].body["messages"]
        assert sent[-1] == {"role": "user", "content": "tell me a joke"}
        assert all(m["content"] != "joke one" for m in sent)
        fake.enqueue(Reply("joke three"))
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", "joke three", (3, 3)),
                         what="the third version")
        await wait_library(pilot)
        await pilot.press("alt+left")
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", "joke two", (2, 3)), what="version 2")
        assert "‹2/3›" in screen_text(app)
        await pilot.press("alt+left")
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", "joke one", (1, 3)), what="version 1")
        await pilot.press("alt+left")  # wraps round
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", "joke three", (3, 3)),
                         what="version 3")
        await pilot.press("alt+right")
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", "joke one", (1, 3)), what="version 1")
        # The branch switched to is what the model sees next.
        await send(pilot, "explain it")
        await wait_library(pilot)
        sent = [m["content"] for m in fake.run_requests[-1].body["messages"] if m["role"] == "assistant"]
        assert sent == ["joke one"]
        branch = await app.agent.conversations.branch()
        assert [b.message.content for b in branch][:2] == ["tell me a joke", "joke one"]


async def test_a_search_hit_on_another_branch_opens_it_and_the_status_follows(settings, fake):
    """The status line's "version N of M" speaks of what is shown: after a search hit on another branch
    it names that version, and opening another conversation clears it."""
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        fake.enqueue(Reply("answer about otters"))
        await send(pilot, "tell me about otters")
        await wait_library(pilot)
        fake.enqueue(Reply("second answer about otters"))
        await run(pilot, "/regen")
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", "second answer about otters", (2, 2)),
                         what="the second version")
        await wait_library(pilot)
        await pilot.press("alt+left")
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", "answer about otters", (1, 2))
                         and app.chat.status.detail == "version 1 of 2 · Alt+←/→ for the others",
                         what="version 1")
        await run(pilot, "/search second")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen), what="the results")
        assert [hit.snippet for hit in app.screen.hits] == ["second answer about otters"]
        await pilot.press("enter")
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", "second answer about otters", (2, 2)),
                         what="the hit's branch")
        await wait_until(pilot, lambda: app.chat.status.detail == "version 2 of 2 · Alt+←/→ for the others",
                         what="the status of the version shown")
        first = app.chat.library.current.id
        await run(pilot, "/new")
        await wait_until(pilot, lambda: app.chat.library.current.id != first, what="the new conversation")
        await wait_library(pilot)
        await app.chat.library.open(first)
        await wait_until(pilot, lambda: pane(app) and pane(app)[-1][1] == "second answer about otters",
                         what="the first conversation again")
        assert app.chat.status.detail is None


async def test_failed_regenerate_changes_nothing_and_says_why(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        fake.enqueue(Reply("the only answer"))
        await send(pilot, "a question")
        await wait_library(pilot)
        app.chat.prompt.set_text("a draft")
        fake.enqueue(quota_error())
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: any(e.kind == "error" for e in app.chat.chat_log.entries),
                         what="the error")
        await wait_library(pilot)
        assert pane(app) == [("user", "a question", None), ("assistant", "the only answer", None)]
        error = next(e for e in app.chat.chat_log.entries if e.kind == "error")
        assert "run the command again" in (error.advice or "")
        assert app.chat.prompt.text == "a draft"  # what was typed is untouched
        assert app.chat.failed_text is None  # Ctrl+R would not send an empty message
        branch = await app.agent.conversations.branch()
        assert [b.position for b in branch] == [(1, 1), (1, 1)]


async def test_edit_makes_a_branch_of_the_question(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        fake.enqueue(Reply("an answer about cats"))
        await send(pilot, "tell me about cats")
        await wait_library(pilot)
        await run(pilot, "/edit")
        await wait_until(pilot, lambda: app.chat.library.editing is not None, what="the edit")
        assert app.chat.prompt.text == "tell me about cats"
        assert app.chat.prompt.border_title == EDITING
        app.chat.prompt.set_text("tell me about dogs")
        fake.enqueue(Reply("an answer about dogs"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: pane(app)[-1][1] == "an answer about dogs", what="the new branch")
        await wait_library(pilot)
        assert pane(app) == [("user", "tell me about dogs", (2, 2)),
                             ("assistant", "an answer about dogs", None)]
        assert app.chat.library.editing is None and app.chat.prompt.border_title is None
        assert "‹2/2›" in screen_text(app)
        sent = [m["content"] for m in fake.run_requests[-1].body["messages"] if m["role"] != "system"]
        assert sent == ["tell me about dogs"]
        await pilot.press("alt+left")
        await wait_until(pilot, lambda: pane(app) == [("user", "tell me about cats", (1, 2)),
                                                      ("assistant", "an answer about cats", None)],
                         what="the first version back")


async def test_the_focused_message_s_versions_switch_whatever_is_newer(settings, fake):
    # A question with two versions, the first of which has a reply with two: Alt+←/→ on the
    # focused question move between the questions (not the newer reply's versions), and the
    # focus stays on the question.
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        fake.enqueue(Reply("cats one"))
        await send(pilot, "tell me about cats")
        await wait_library(pilot)
        fake.enqueue(Reply("cats two"))
        await run(pilot, "/regen")
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", "cats two", (2, 2)), what="the regen")
        await wait_library(pilot)
        await run(pilot, "/edit")
        await wait_until(pilot, lambda: app.chat.library.editing is not None, what="the edit")
        app.chat.prompt.set_text("tell me about dogs")
        fake.enqueue(Reply("dogs one"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: pane(app)[-1][1] == "dogs one", what="the edited branch")
        await wait_library(pilot)
        await pilot.press("alt+left")  # nothing focused: the newest message with versions, the question
        cats = [("user", "tell me about cats", (1, 2)), ("assistant", "cats two", (2, 2))]
        await wait_until(pilot, lambda: pane(app) == cats, what="the first question back")
        await pilot.press("ctrl+up", "up")  # the focus onto the question
        log = app.chat.chat_log
        question = log.entries[0]
        await wait_until(pilot, lambda: app.chat.focused is question.widget, what="the question focused")
        await pilot.press("alt+right")
        dogs = [("user", "tell me about dogs", (2, 2)), ("assistant", "dogs one", None)]
        await wait_until(pilot, lambda: pane(app) == dogs, what="the edited question again")
        await wait_until(pilot, lambda: app.chat.focused is log.entries[0].widget, what="the focus kept")
        await pilot.press("alt+left")
        await wait_until(pilot, lambda: pane(app) == cats, what="the first question again")
        await pilot.press("escape")  # the focus back to the input: the newest with versions, the reply
        await wait_until(pilot, lambda: app.chat.focused is app.chat.prompt, what="the input focused")
        await pilot.press("alt+left")
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", "cats one", (1, 2)), what="the reply")


async def test_edit_cancelled_with_esc_and_a_failed_edit_keeps_the_text(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        fake.enqueue(Reply("first answer"))
        await send(pilot, "first question")
        await wait_library(pilot)
        # Esc with the question unchanged: the edit ends, the input empties (the question is stored).
        await run(pilot, "/edit")
        await wait_until(pilot, lambda: app.chat.library.editing is not None, what="the edit")
        await pilot.press("escape")
        assert app.chat.library.editing is None and app.chat.prompt.text == ""
        # Esc after a change: the text typed stays.
        await run(pilot, "/edit")
        await wait_until(pilot, lambda: app.chat.library.editing is not None, what="the edit")
        await type_text(pilot, " please")
        await pilot.press("escape")
        assert app.chat.library.editing is None
        assert app.chat.prompt.text == "first question please"
        app.chat.prompt.clear()
        # A failed edit: the text is back in the input, still an edit; sending again makes the branch.
        await run(pilot, "/edit")
        await wait_until(pilot, lambda: app.chat.library.editing is not None, what="the edit")
        app.chat.prompt.set_text("second version")
        fake.enqueue(quota_error())
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat.failed_text is not None and app.chat.turn is None,
                         what="the failure")
        await wait_library(pilot)
        assert app.chat.prompt.text == "second version"
        assert app.chat.library.editing is not None
        assert pane(app) == [("user", "first question", None), ("assistant", "first answer", None)]
        app.chat.prompt.clear()
        fake.enqueue(Reply("second answer"))
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: pane(app)[-1][1] == "second answer", what="the branch")
        await wait_library(pilot)
        assert pane(app)[0] == ("user", "second version", (2, 2))


async def test_continue_goes_on_with_a_stopped_reply(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        fake.enqueue(Reply("Once upon a time " + "and then " * 200, chunk_size=4, delay=0.02))
        await send(pilot, "tell me a story")
        log = app.chat.chat_log
        await wait_until(pilot, lambda: app.chat.turn is not None and app.chat.turn.reply is not None
                         and len(app.chat.turn.reply.text) > 20, what="some of the story")
        await pilot.press("escape")
        await wait_library(pilot)
        stopped = log.entries[-1]
        assert stopped.stopped
        kept = stopped.text
        fake.enqueue(Reply(" THE END."))
        await run(pilot, "/continue")
        await wait_until(pilot, lambda: pane(app)[-1][1].endswith("THE END."), what="the continuation")
        await wait_library(pilot)
        reply = [e for e in log.entries if e.kind == "assistant"]
        assert len(reply) == 1 and reply[0].text.startswith(kept) and not reply[0].stopped
        branch = await app.agent.conversations.branch()
        assert branch[-1].message.content == reply[0].text


async def test_a_reply_cut_at_max_tokens_says_so_and_continue_completes_it(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        fake.enqueue(Reply("The first half of a long", finish_reason="length"))
        await send(pilot, "write a long text")
        await wait_until(pilot, lambda: any("reached max_tokens" in text for text in notices(app)),
                         what="the notice")
        await wait_library(pilot)
        assert (await app.agent.conversations.branch())[-1].truncated
        fake.enqueue(Reply(" answer, and its end."))
        await run(pilot, "/continue")
        await wait_until(pilot, lambda: pane(app)[-1][1].endswith("its end."), what="the continuation")
        await wait_library(pilot)
        assert pane(app)[-1][1] == "The first half of a long answer, and its end."
        last = (await app.agent.conversations.branch())[-1]
        assert last.message.content == "The first half of a long answer, and its end."
        assert not last.truncated


async def test_continue_with_nothing_to_continue_says_why(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        fake.enqueue(Reply("a complete answer"))
        await send(pilot, "hello")
        await wait_library(pilot)
        requests = len(fake.run_requests)
        await run(pilot, "/continue")
        await wait_until(pilot, lambda: any(e.kind == "error" for e in app.chat.chat_log.entries),
                         what="the refusal")
        await wait_library(pilot)
        assert pane(app) == [("user", "hello", None), ("assistant", "a complete answer", None)]
        assert len(fake.run_requests) == requests


# --- --chat and --new ------------------------------------------------------------------------


async def test_tui_chat_opens_that_conversation(settings):
    data = settings.data_dir
    old = write_conversation(data, "alice", [("old question", "old answer")], day=1, title="Old")
    write_conversation(data, "alice", 1, day=2, title="Newer")
    app = make_app(settings, chat=old)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        assert app.chat.header.title == "Old"
        assert pane(app) == [("user", "old question", None), ("assistant", "old answer", None)]


async def test_tui_chat_with_an_unknown_id_says_so_and_shows_the_most_recent(settings):
    write_conversation(settings.data_dir, "alice", 1, day=2, title="Newer")
    app = make_app(settings, chat="0000000000zzzz")
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        assert app.chat.header.title == "Newer"
        errors = [e for e in app.chat.chat_log.entries if e.kind == "error"]
        assert errors and "most recent" in (errors[0].advice or "")


async def test_tui_new_starts_one(settings):
    before = write_conversation(settings.data_dir, "alice", 1, day=2, title="Newer")
    app = make_app(settings, new=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        assert pane(app) == []
        ids = await conversation_ids(app)
        assert before in ids
        assert app.chat.library.current is not None and app.chat.library.current.id != before
