"""Opening a conversation from the list: its newest messages first, from the end of its file, then the
whole of it (``Library.open``, ``Conversations.peek``, ``ChatLog.show_early``).

The whole read is held at a gate (the facet's ``open`` waits on an event the test sets), so what the
pane shows before it, and what it does after, are conditions, never a race. The branches' cases use a
small first read (``tail.BRANCH_CHUNK``), as a long conversation's file makes it stop inside the file.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from edgechat_tui.core.errors import StorageError
from edgechat_tui.core.messages import Message
from edgechat_tui.storage import tail as tail_module
from edgechat_tui.storage.chat_format import (
    MessageEntry,
    chat_header,
    encode_messages,
    encode_switch,
    new_chat_id,
)
from edgechat_tui.ui.app import EdgechatApp
from edgechat_tui.ui.library_parts import OPENING
from tests.fakes.workers_ai import Reply
from tests.ui.conftest import SIZE, make_settings, screen_text, send, wait_until
from tests.ui.library_helpers import MODEL, open_panel, pane, wait_library, write_conversation

WHEN = "2025-01-05T10:00:00.000Z"


@pytest.fixture
def settings(tmp_path, fake):
    return make_settings(tmp_path, fake, EDGECHAT_AUTO_TITLE="false")


def make_app(settings, **options) -> EdgechatApp:
    return EdgechatApp(settings, "alice", cursor_blink=False, **options)


class Gate:
    """Holds the facet's ``open`` (the whole read) until :meth:`release`; counts the calls."""

    def __init__(self, conversations, *, fail: Exception | None = None) -> None:
        self.event = asyncio.Event()
        self.waiting = 0
        self.fail = fail
        original = conversations.open

        async def gated(chat_id: str):
            self.waiting += 1
            await self.event.wait()
            if self.fail is not None:
                raise self.fail
            return await original(chat_id)

        conversations.open = gated

    def release(self) -> None:
        self.event.set()


class Tree:
    """A conversation file with branches, written record by record as the library writes them."""

    def __init__(self, data_dir, user: str = "alice", *, day: int = 5) -> None:
        created = datetime(2025, 1, day, 10, 0, tzinfo=UTC)  # as WHEN: older than day 9's conversation
        self.chat_id = new_chat_id(ms=int(created.timestamp() * 1000), random_bits=day)
        self.path = data_dir / f"{user}.chats" / f"{self.chat_id}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.lines = [chat_header(user, self.chat_id, created=WHEN)]
        self.count = 0
        self.leaf: str | None = None
        self.parent: dict[str, str | None] = {}

    def _entry(self, role: str, parent: str | None, text: str) -> MessageEntry:
        self.count += 1
        message_id = f"{self.chat_id}{self.count:08d}"
        self.parent[message_id] = parent
        return MessageEntry(message_id, parent, Message(role, text, time=WHEN,
                                                        model=MODEL if role == "assistant" else None))

    def turn(self, question: str, answer: str) -> str:
        q = self._entry("user", self.leaf, question)
        a = self._entry("assistant", q.id, answer)
        self.lines.append(encode_messages([q, a]))
        self.leaf = a.id
        return a.id

    def regenerate(self, answer: str) -> str:
        assert self.leaf is not None
        a = self._entry("assistant", self.parent[self.leaf], answer)
        self.lines.append(encode_messages([a]))
        self.leaf = a.id
        return a.id

    def switch(self, leaf: str) -> None:
        self.lines.append(encode_switch(leaf))
        self.leaf = leaf

    def write(self) -> str:
        self.path.write_bytes(b"".join(self.lines))
        return self.chat_id


async def true_branch(app, chat_id: str) -> list[tuple[str, str, tuple[int, int] | None]]:
    """The conversation's current branch as the whole read folds it, in the pane's terms."""
    library = app.agent.conversations.library
    state, _place = await asyncio.to_thread(library.state, chat_id)
    items = await asyncio.to_thread(state.branch)
    return [("user" if b.message.role == "user" else "assistant", b.message.content,
             b.position if len(b.siblings) > 1 else None) for b in items]


async def highlight(pilot, chat_id: str) -> None:
    panel = pilot.app.chat.panel
    await open_panel(pilot)
    ids = [s.id for s in panel.summaries]
    panel.rows.highlighted = ids.index(chat_id)
    await wait_until(pilot, lambda: panel.highlighted is not None and panel.highlighted.id == chat_id,
                     what="the row highlighted")


def ids_shown(app) -> list[str | None]:
    return [e.message_id for e in app.chat.chat_log.entries if e.kind in ("user", "assistant")]


# --- a long conversation ------------------------------------------------------------------------


async def test_a_long_conversation_shows_its_newest_messages_before_the_whole_is_read(settings, fake):
    data = settings.data_dir
    long = write_conversation(data, "alice", 600, day=2, title="Long")
    write_conversation(data, "alice", [("short question", "short answer")], day=3, title="Short")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        assert app.chat.header.title == "Short"
        log, library = app.chat.chat_log, app.chat.library
        gate = Gate(app.agent.conversations)
        await highlight(pilot, long)
        await pilot.press("enter")
        await wait_until(pilot, lambda: log.early and gate.waiting == 1, what="the newest messages, early")
        # The newest messages of the branch, with their ids, and nothing older: the whole is not read.
        shown = pane(app)
        assert 2 <= len(shown) < 16
        assert shown[-1] == ("assistant", "answer 599", None)
        assert shown == [(k, t, None) for k, t, _ in (await true_branch(app, long))[-len(shown):]]
        first = 2 * 600 - len(shown)
        assert ids_shown(app) == [f"{long}{i:08d}" for i in range(first, 2 * 600)]
        assert "answer 599" in screen_text(app)
        assert "loading" in screen_text(app)
        assert library.opening
        # Sending waits: the text stays in the input, nothing is sent.
        requests = len(fake.run_requests)
        app.chat.prompt.focus()
        app.chat.prompt.set_text("a question too soon")
        await pilot.press("enter")
        assert app.chat.prompt.text == "a question too soon"
        assert len(fake.run_requests) == requests
        assert library.busy_reason == OPENING
        kept = [e.widget for e in log.entries]
        gate.release()
        await wait_until(pilot, lambda: not library.opening and not log.early, what="the whole conversation")
        await wait_library(pilot)
        assert app.chat.header.title == "Long"
        assert len(log.entries) == 1200
        assert pane(app) == await true_branch(app, long)
        # The early widgets were taken over (not drawn again), and the view is still at the end.
        assert [e.widget for e in log.entries[-len(kept):]] == kept
        assert all(widget is not None and widget.is_mounted for widget in kept)
        assert log.scroll_y == log.max_scroll_y
        assert "answer 599" in screen_text(app)
        # Afterwards the pane behaves as ever: paging up mounts earlier pages, sending goes there.
        start = log.window[0]
        await pilot.press("pageup", "pageup", "pageup")
        await wait_until(pilot, lambda: log.window[0] < start and not log.busy, what="earlier pages")
        app.chat.prompt.clear()
        fake.enqueue(Reply("the reply here"))
        await send(pilot, "one more")
        await wait_library(pilot)
        assert pane(app)[-2:] == [("user", "one more", None), ("assistant", "the reply here", None)]
        assert (await app.agent.conversations.get(long)).message_count == 1202


# --- branches -----------------------------------------------------------------------------------


async def test_after_a_regenerate_and_a_switch_the_early_view_is_the_current_branch(settings, fake,
                                                                                   monkeypatch):
    """Regenerate makes siblings; a switch moves the branch back to the first version, and turns go
    on from there. What shows early is the current branch's newest messages, never the other
    version's, and never a message whose other versions lie before what was read."""
    monkeypatch.setattr(tail_module, "BRANCH_CHUNK", 256)
    tree = Tree(settings.data_dir)
    tree.turn("tell me a joke", "joke one")
    first = tree.leaf
    tree.regenerate("joke two")
    for i in range(3):
        tree.turn(f"on version two {i}", f"reply on two {i}")
    tree.switch(first)
    for i in range(20):  # enough that the first read holds the newest screen without the switch
        tree.turn(f"on version one {i}", f"reply on one {i}")
    chat = tree.write()
    write_conversation(settings.data_dir, "alice", 1, day=9, title="Open first")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        log, library = app.chat.chat_log, app.chat.library
        gate = Gate(app.agent.conversations)
        await highlight(pilot, chat)
        await pilot.press("enter")
        await wait_until(pilot, lambda: log.early and gate.waiting == 1, what="the newest messages, early")
        branch = await true_branch(app, chat)
        assert branch[1] == ("assistant", "joke one", (1, 2))
        shown = pane(app)
        assert shown and shown == branch[-len(shown):]
        assert all("two" not in text for _kind, text, _pos in shown)
        assert shown[-1] == ("assistant", "reply on one 19", None)
        gate.release()
        await wait_until(pilot, lambda: not library.opening and not log.early, what="the whole conversation")
        await wait_library(pilot)
        assert pane(app) == branch
        # The branch keys work on it as ever: the other version, and its own newest turns.
        await pilot.press("alt+right")
        await wait_until(pilot, lambda: pane(app)[-1] == ("assistant", "reply on two 2", None),
                         what="the other version's branch")
        assert pane(app)[1] == ("assistant", "joke two", (2, 2))
        fake.enqueue(Reply("goes on from two"))
        await send(pilot, "and then")
        await wait_library(pilot)
        assert pane(app)[-1] == ("assistant", "goes on from two", None)


async def test_a_branch_at_the_end_is_left_to_the_whole_read(settings, fake, monkeypatch):
    """A regenerated last reply: the end of the file cannot tell its ‹2/2›, so nothing shows early;
    the conversation that was open stays until the whole is read, then the branch shows whole."""
    monkeypatch.setattr(tail_module, "BRANCH_CHUNK", 256)
    tree = Tree(settings.data_dir)
    for i in range(4):
        tree.turn(f"question {i}", f"answer {i}")
    tree.regenerate("answer 3, again")
    chat = tree.write()
    write_conversation(settings.data_dir, "alice", [("the open one", "its answer")], day=9, title="Open")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        log, library = app.chat.chat_log, app.chat.library
        before = pane(app)
        gate = Gate(app.agent.conversations)
        await highlight(pilot, chat)
        await pilot.press("enter")
        await wait_until(pilot, lambda: gate.waiting == 1, what="the whole read to begin")
        assert library.opening and not log.early
        assert pane(app) == before
        gate.release()
        await wait_until(pilot, lambda: not library.opening, what="the conversation to open")
        await wait_library(pilot)
        assert pane(app)[-1] == ("assistant", "answer 3, again", (2, 2))
        assert pane(app) == await true_branch(app, chat)


async def test_a_failed_read_shows_the_open_conversation_again(settings, fake):
    data = settings.data_dir
    long = write_conversation(data, "alice", 600, day=2, title="Long")
    write_conversation(data, "alice", [("the open one", "its answer")], day=3, title="Open")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        log, library = app.chat.chat_log, app.chat.library
        before = pane(app)
        gate = Gate(app.agent.conversations, fail=StorageError("The disk said no."))
        await highlight(pilot, long)
        await pilot.press("enter")
        await wait_until(pilot, lambda: log.early and gate.waiting == 1, what="the newest messages, early")
        assert pane(app)[-1] == ("assistant", "answer 599", None)
        gate.release()
        await wait_until(pilot, lambda: not library.opening, what="the open to end")
        await wait_until(pilot, lambda: any(e.kind == "error" for e in log.entries), what="the error")
        assert pane(app) == before
        assert not log.early
        assert app.chat.header.title == "Open"
        assert "The disk said no." in screen_text(app)
        assert (await app.agent.conversations.current()).title == "Open"


async def test_scrolled_up_in_the_early_view_the_view_stays_when_the_whole_comes(settings, fake):
    """The user scrolls up while the whole is read: when it comes (and the rows above grow from none
    to the whole conversation's), the message at the top of the view stays where it was."""
    data = settings.data_dir
    long_answer = "\n\n".join(f"paragraph {j} of a long answer" for j in range(20))  # no wrapping
    long = write_conversation(data, "alice", [(f"question {i}", f"answer {i}\n{long_answer}")
                                              for i in range(300)], day=2, title="Long")
    write_conversation(data, "alice", [("short question", "short answer")], day=3, title="Short")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_library(pilot)
        log, library = app.chat.chat_log, app.chat.library
        gate = Gate(app.agent.conversations)
        await highlight(pilot, long)
        await pilot.press("enter")
        await wait_until(pilot, lambda: log.early and gate.waiting == 1 and log.max_scroll_y > 4,
                         what="the newest messages, early, taller than the pane")
        log.scroll_to(y=log.max_scroll_y - 6, animate=False, immediate=True)
        await wait_until(pilot, lambda: not log.following, what="the view to leave the end")
        top = next(e for e in log.entries if e.widget.virtual_region.bottom > log.scroll_y)
        offset = top.widget.virtual_region.y - log.scroll_y
        gate.release()
        await wait_until(pilot, lambda: not library.opening and not log.early, what="the whole conversation")
        await wait_until(pilot, lambda: not log.busy, what="the pages to settle")
        assert len(log.entries) == 600
        held = log.entries[[e.message_id for e in log.entries].index(top.message_id)]
        assert held.widget is top.widget  # taken over, not drawn again
        assert held.widget is not None and held.widget.is_mounted
        assert abs((held.widget.virtual_region.y - log.scroll_y) - offset) <= 1
        assert log.scroll_y > 1000  # the rows above stand for the 590-odd messages not mounted
