"""The early read of a conversation of the library: shown only when it is the current branch.

A conversation is a tree, so the last records of its file are not always its current branch. For random
trees (turns, regenerated replies, edited questions, branch switches, continued replies, titles, an
archive), whatever ``read_chat_tail`` shows must be the end of the current branch as the store folds the
whole file (``ChatState``); and for straight conversations it must show something, so that the check
cannot pass by showing nothing.
"""

from __future__ import annotations

import os
import random

import pytest

from edgechat_tui.core.messages import Message
from edgechat_tui.storage import tail as tail_module
from edgechat_tui.storage.chat_format import (
    CHAT_KIND,
    AppendEntry,
    MessageEntry,
    chat_header,
    decode_chat_record,
    encode_append,
    encode_messages,
    encode_meta,
    encode_switch,
    new_chat_id,
)
from edgechat_tui.storage.chat_tree import ChatState
from edgechat_tui.storage.format import scan_file
from edgechat_tui.storage.library import Library
from edgechat_tui.storage.tail import current_conversation, read_branch_tail, read_chat_tail

USER = "alice"
WHEN = "2026-12-01T10:00:00.000Z"


class Writer:
    """Builds one conversation file record by record, keeping what the tree looks like."""

    def __init__(self, chat_id: str) -> None:
        self.chat_id = chat_id
        self.lines = [chat_header(USER, chat_id, created=WHEN)]
        self.count = 0
        self.parent: dict[str, str | None] = {}
        self.role: dict[str, str] = {}
        self.leaf: str | None = None

    def _id(self) -> str:
        self.count += 1
        return f"m{self.count:06d}"

    def _message(self, role: str, parent: str | None) -> MessageEntry:
        message_id = self._id()
        self.parent[message_id] = parent
        self.role[message_id] = role
        return MessageEntry(message_id, parent, Message(role, f"{role} {message_id}", time=WHEN))

    def turn(self) -> None:
        question = self._message("user", self.leaf)
        reply = self._message("assistant", question.id)
        self.lines.append(encode_messages([question, reply]))
        self.leaf = reply.id

    def regenerate(self) -> None:
        if self.leaf is None or self.role[self.leaf] != "assistant":
            return self.turn()
        reply = self._message("assistant", self.parent[self.leaf])
        self.lines.append(encode_messages([reply]))
        self.leaf = reply.id

    def edit(self) -> None:
        if self.leaf is None:
            return self.turn()
        question_parent = self.parent[self.parent[self.leaf]]  # the question's parent
        question = self._message("user", question_parent)
        reply = self._message("assistant", question.id)
        self.lines.append(encode_messages([question, reply]))
        self.leaf = reply.id

    def switch(self, rng: random.Random) -> None:
        if not self.parent:
            return self.turn()
        target = rng.choice(sorted(self.parent))
        self.lines.append(encode_switch(target))
        self.leaf = None  # the store works out the newest leaf below it; the writer stops guessing

    def append(self) -> None:
        if self.leaf is None or self.role[self.leaf] != "assistant":
            return self.turn()
        self.lines.append(encode_append(AppendEntry(self.leaf, " and more", WHEN)))

    def title(self) -> None:
        self.lines.append(encode_meta({"title": "A title", "titleSource": "user"}))

    def archive(self) -> None:
        self.lines.append(encode_meta({"archived": True}))

    def write(self, folder) -> os.PathLike:
        path = folder / f"{self.chat_id}.jsonl"
        path.write_bytes(b"".join(self.lines))
        return path


def current_branch(path) -> tuple[list[Message], bool]:
    scan = scan_file(path.read_bytes(), USER, path, decode_chat_record, CHAT_KIND)
    state = ChatState(path.stem, WHEN)
    state.apply(scan.messages)
    return state.messages(), state.archived


@pytest.mark.parametrize("seed", range(60))
def test_what_the_tail_shows_is_the_end_of_the_current_branch(tmp_path, seed):
    rng = random.Random(seed)
    writer = Writer(new_chat_id())
    for _ in range(rng.randrange(1, 30)):
        operation = rng.choices(["turn", "regenerate", "edit", "switch", "append", "title", "archive"],
                                weights=[10, 2, 2, 1, 1, 1, 0.3])[0]
        if operation == "switch":
            writer.switch(rng)
        else:
            getattr(writer, operation)()
    path = writer.write(tmp_path)
    branch, archived = current_branch(path)
    for count in (1, 2, 4, 16, 1000):
        tail = read_chat_tail(path, USER, count)
        if tail is None:
            continue
        assert not archived  # an archived conversation is never shown early
        shown = [(m.role, m.content) for m in tail.messages]
        if tail.whole:
            assert shown == [(m.role, m.content) for m in branch]
        else:
            assert shown == [(m.role, m.content) for m in branch[len(branch) - len(shown):]]


@pytest.mark.parametrize("turns", [1, 3, 40])
def test_a_straight_conversation_is_shown(tmp_path, turns):
    writer = Writer(new_chat_id())
    for _ in range(turns):
        writer.turn()
    writer.title()
    path = writer.write(tmp_path)
    tail = read_chat_tail(path, USER, 16)
    assert tail is not None
    branch, _ = current_branch(path)
    assert [m.content for m in tail.messages] == [m.content for m in branch][-len(tail.messages):]
    assert len(tail.messages) >= min(16, 2 * turns)


@pytest.mark.parametrize("last", ["regenerate", "edit", "append", "archive"])
def test_a_branch_or_a_change_at_the_end_leaves_it_to_the_store(tmp_path, last):
    writer = Writer(new_chat_id())
    for _ in range(3):
        writer.turn()
    getattr(writer, last)()
    assert read_chat_tail(writer.write(tmp_path), USER, 16) is None


def test_an_explicit_id_and_files_that_are_not_conversations(tmp_path):
    folder = tmp_path / f"{USER}.chats"
    folder.mkdir()
    older, newer = Writer(new_chat_id(1_700_000_000_000)), Writer(new_chat_id(1_700_000_100_000))
    older.turn()
    newer.turn()
    newer_path = newer.write(folder)
    older_path = older.write(folder)
    assert current_conversation(tmp_path, USER, older.chat_id) == older_path
    assert current_conversation(tmp_path, USER, newer.chat_id) == newer_path
    (folder / "index.sqlite3").write_bytes(b"not a conversation")
    (folder / "notes.jsonl").write_bytes(b"not one either")
    assert current_conversation(tmp_path, USER) in (older_path, newer_path)
    with pytest.raises(ValueError):
        current_conversation(tmp_path, USER, "../../etc/passwd")


class TimedWriter(Writer):
    """A Writer whose messages carry the time of a shared clock (ISO 8601, ms), as the store stamps them."""

    def __init__(self, chat_id: str, clock: list[int]) -> None:
        super().__init__(chat_id)
        self.clock = clock
        self.lines[0] = chat_header(USER, chat_id, created=self._stamp())

    def _stamp(self) -> str:
        from datetime import UTC, datetime

        moment = datetime.fromtimestamp(self.clock[0] / 1000, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _message(self, role: str, parent: str | None) -> MessageEntry:
        entry = super()._message(role, parent)
        return MessageEntry(entry.id, entry.parent, Message(role, entry.message.content, time=self._stamp()))

    def append(self) -> None:
        if self.leaf is None or self.role[self.leaf] != "assistant":
            return self.turn()
        self.lines.append(encode_append(AppendEntry(self.leaf, " and more", self._stamp())))

    def restore(self) -> None:
        self.lines.append(encode_meta({"archived": False}))


@pytest.mark.parametrize("seed", range(40))
def test_the_conversation_read_early_is_the_librarys_most_recent(tmp_path, seed):
    # Conversations changed in a random order, each change written at the clock's time (the file's
    # change time a little after the message's, as a reply is stamped as it begins): turns,
    # continuations and regenerations move a conversation up; renames, archives and restores
    # change its file but not its newest message. Whatever the order, the early read's file is the
    # one the library's index calls most recent.
    rng = random.Random(seed)
    folder = tmp_path / f"{USER}.chats"
    folder.mkdir()
    clock = [1_764_000_000_000]

    def write(writer: TimedWriter) -> None:
        path = writer.write(folder)
        written = (clock[0] + rng.randrange(0, 1_500)) / 1000
        os.utime(path, (written, written))
        clock[0] += rng.randrange(1, 120_000)

    writers: list[TimedWriter] = []
    for _ in range(rng.randrange(1, 7)):
        writers.append(TimedWriter(new_chat_id(clock[0]), clock))
        for _ in range(rng.randrange(0, 3)):
            writers[-1].turn()
        write(writers[-1])
    for _ in range(rng.randrange(0, 25)):
        writer = rng.choice(writers)
        operation = rng.choices(["turn", "append", "regenerate", "title", "archive", "restore"],
                                weights=[4, 1, 1, 3, 1, 1])[0]
        getattr(writer, operation)()
        write(writer)
    expected = Library(tmp_path, USER, warn=lambda _m: None).most_recent()
    if expected is None:
        return  # every conversation archived: nothing is continued, the store's view says so
    assert current_conversation(tmp_path, USER) == folder / f"{expected.id}.jsonl"


def test_before_the_first_migration_the_old_history_file_is_read(tmp_path):
    assert current_conversation(tmp_path, USER) == tmp_path / f"{USER}.jsonl"
    (tmp_path / f"{USER}.chats").mkdir()
    empty = current_conversation(tmp_path, USER)
    assert read_chat_tail(empty, USER, 16) is not None and read_chat_tail(empty, USER, 16).messages == []


def current_branch_items(path):
    scan = scan_file(path.read_bytes(), USER, path, decode_chat_record, CHAT_KIND)
    state = ChatState(path.stem, WHEN)
    state.apply(scan.messages)
    return state.branch()


@pytest.mark.parametrize("chunk", [96, 400, 64 * 1024])
@pytest.mark.parametrize("seed", range(40))
def test_the_branch_tail_is_the_end_of_the_current_branch_with_its_ids_and_siblings(tmp_path, monkeypatch,
                                                                                    seed, chunk):
    """What a conversation opened from the list shows first: exactly the newest messages of
    ``ChatState.branch()``, ids, parents and siblings included, or nothing. Small first reads (the
    files here are small) make the read stop inside the file, as it does in a long conversation."""
    monkeypatch.setattr(tail_module, "BRANCH_CHUNK", chunk)
    rng = random.Random(1000 + seed)
    writer = Writer(new_chat_id())
    for _ in range(rng.randrange(1, 30)):
        operation = rng.choices(["turn", "regenerate", "edit", "switch", "append", "title"],
                                weights=[10, 3, 3, 1, 1, 1])[0]
        if operation == "switch":
            writer.switch(rng)
        else:
            getattr(writer, operation)()
    for _ in range(rng.randrange(0, 4)):
        writer.turn()  # straight turns after the branches: the tail is sure more often
    path = writer.write(tmp_path)
    branch = current_branch_items(path)
    for count in (1, 2, 3, 6, 1000):
        items = read_branch_tail(path, USER, count)
        if items is None:
            continue
        assert 0 < len(items) <= count
        assert items == branch[len(branch) - len(items):]


def test_the_branch_tail_after_a_regenerate_leaves_out_what_it_cannot_place(tmp_path, monkeypatch):
    """A regenerated reply, then straight turns: the tail shows the turns after it, never the reply
    whose other version lies before what was read (its ‹2/2› is known to the whole read only)."""
    writer = Writer(new_chat_id())
    writer.turn()
    writer.regenerate()
    writer.turn()
    writer.turn()
    path = writer.write(tmp_path)
    branch = current_branch_items(path)
    assert [item.id for item in branch] == ["m000001", "m000003", "m000004", "m000005", "m000006", "m000007"]
    assert branch[1].siblings == ("m000002", "m000003")
    assert read_branch_tail(path, USER, 1000) is None  # the regenerated reply breaks the chain
    # A read that stops at the regenerated reply's line: it anchors the chain, and is left out.
    monkeypatch.setattr(tail_module, "BRANCH_CHUNK", len(b"".join(writer.lines[2:])))
    items = read_branch_tail(path, USER, 4)
    assert items == branch[-4:]
    assert [item.siblings for item in items] == [(item.id,) for item in branch[-4:]]
    assert read_branch_tail(path, USER, 5) is None  # one more would be the reply: read on, and refused


def test_a_straight_conversation_gives_its_branch_tail(tmp_path, monkeypatch):
    monkeypatch.setattr(tail_module, "BRANCH_CHUNK", 128)
    writer = Writer(new_chat_id())
    for _ in range(40):
        writer.turn()
    path = writer.write(tmp_path)
    branch = current_branch_items(path)
    assert read_branch_tail(path, USER, 6) == branch[-6:]
    assert read_branch_tail(path, USER, 1000) == branch  # the whole file: the first one is the root


@pytest.mark.parametrize("last", ["regenerate", "edit", "append", "archive"])
def test_a_branch_or_a_change_at_the_end_gives_no_branch_tail(tmp_path, last):
    writer = Writer(new_chat_id())
    for _ in range(3):
        writer.turn()
    getattr(writer, last)()
    assert read_branch_tail(writer.write(tmp_path), USER, 6) is None


def test_no_file_or_no_message_gives_no_branch_tail(tmp_path):
    assert read_branch_tail(tmp_path / "nowhere.jsonl", USER, 6) is None
    writer = Writer(new_chat_id())
    writer.title()
    assert read_branch_tail(writer.write(tmp_path), USER, 6) is None
