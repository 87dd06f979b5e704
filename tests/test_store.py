"""HistoryStore on real files: format, reading, appending, sharing, damage, archive, listing."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from edgechat_tui.core.errors import InvalidUserId, NewerSchemaError, StorageError
from edgechat_tui.core.messages import Message, Usage
from edgechat_tui.storage import SCHEMA_VERSION, HistoryStore, encode_header, encode_turn, list_users


def turn(n: int, **reply_fields: object) -> tuple[Message, Message]:
    return (Message("user", f"question {n}", time=f"2025-01-01T00:00:{n:02d}.000Z"),
            Message("assistant", f"answer {n}", time=f"2025-01-01T00:00:{n:02d}.500Z", **reply_fields))


def flat(*turns: tuple[Message, Message]) -> list[Message]:
    return [m for pair in turns for m in pair]


class Warnings(list):
    """Collects what the store tells the user."""

    def __call__(self, text: str) -> None:
        self.append(text)


@pytest.fixture
def warnings() -> Warnings:
    return Warnings()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def store_for(data_dir: Path, warnings: Warnings | None = None, user: str = "alice") -> HistoryStore:
    return HistoryStore(data_dir, user, warn=warnings if warnings is not None else Warnings())


def write_history(path: Path, *lines: bytes, user: str = "alice") -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = encode_header(user, "2025-01-01T00:00:00.000Z") + b"".join(lines)
    path.write_bytes(data)
    return data


def sidecars(data_dir: Path, kind: str) -> list[Path]:
    return sorted(data_dir.glob(f"alice.{kind}-*"))


# --- User ids and the folder -----------------------------------------------------------------------


@pytest.mark.parametrize("user", ["", "../bob", "a/b", "a\\b", ".hidden", "a b", "x" * 65, "a\x00b", "nul"])
def test_invalid_user_is_refused_before_any_file_is_touched(tmp_path: Path, user: str) -> None:
    data_dir = tmp_path / "data"
    with pytest.raises(InvalidUserId):
        HistoryStore(data_dir, user)
    assert not data_dir.exists()
    assert list(tmp_path.iterdir()) == []


def test_path_is_the_users_jsonl_file(data_dir: Path) -> None:
    assert store_for(data_dir, user="bob.smith").path == data_dir / "bob.smith.jsonl"


def test_loading_a_missing_history_creates_nothing(data_dir: Path, warnings: Warnings) -> None:
    store = store_for(data_dir, warnings)
    assert store.load() == []
    assert store.refresh() == []
    assert store.message_count() == 0
    assert not data_dir.exists()
    assert warnings == []


def test_first_append_creates_a_private_folder_and_file(data_dir: Path) -> None:
    store = store_for(data_dir)
    assert store.append_turn(*turn(1)) == 2
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "alice.lock").stat().st_mode) == 0o600


def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    store_for(tmp_path).append_turn(*turn(1))
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


# --- The format ------------------------------------------------------------------------------------


def test_file_is_a_header_and_one_line_per_turn(data_dir: Path) -> None:
    store = store_for(data_dir)
    store.append_turn(*turn(1))
    store.append_turn(*turn(2, model="@cf/m", usage=Usage(3, 4, 7), stopped=True))
    lines = store.path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    header = json.loads(lines[0])
    assert list(header) == ["edgechat", "schema", "user", "created"]
    assert header["edgechat"] == "history"
    assert header["schema"] == SCHEMA_VERSION == 1
    assert header["user"] == "alice"
    assert header["created"].endswith("Z")
    records = [json.loads(line) for line in lines[1:-1]]
    assert records[0] == {"messages": [m.to_json() for m in turn(1)]}
    assert records[1]["messages"][1] == {
        "role": "assistant", "content": "answer 2", "time": "2025-01-01T00:00:02.500Z", "model": "@cf/m",
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}, "stopped": True,
    }


def test_a_new_store_reads_back_exactly_what_was_saved(data_dir: Path) -> None:
    writer = store_for(data_dir)
    turns = [turn(1), turn(2, model="m", usage=Usage(completion_tokens=9), stopped=True)]
    for pair in turns:
        writer.append_turn(*pair)
    assert store_for(data_dir).load() == flat(*turns)


@pytest.mark.parametrize("content", [
    "line one\nline two\r\n", "quotes \" and \\ backslashes", "\x00\x1b[31m control \x7f\x9b",
    "\u2028\u2029 separators", "日本語 and emoji 🦊", "",
])
def test_any_text_round_trips_on_one_line(data_dir: Path, content: str) -> None:
    store = store_for(data_dir)
    pair = (Message("user", content), Message("assistant", content))
    store.append_turn(*pair)
    assert store.path.read_bytes().count(b"\n") == 2
    store.path.read_bytes().decode("utf-8")  # always valid UTF-8
    assert store_for(data_dir).load() == list(pair)


@pytest.mark.parametrize(("content", "stored"), [
    ("lone surrogate \ud800 here", "lone surrogate \ufffd here"),
    ("halves \ud83d\ude00 of one emoji", "halves \U0001f600 of one emoji"),
    ("\ude00 reversed \ud83d", "\ufffd reversed \ufffd"),
])
def test_surrogates_are_stored_as_the_text_they_stand_for(data_dir: Path, content: str, stored: str) -> None:
    """A lone surrogate has no UTF-8 form: it is kept as U+FFFD, and two halves as the one character."""
    store = store_for(data_dir)
    store.append_turn(Message("user", content), Message("assistant", content))
    store.path.read_bytes().decode("utf-8")  # always valid UTF-8
    assert [m.content for m in store.messages] == [stored, stored]
    assert [m.content for m in store_for(data_dir).load()] == [stored, stored]


def test_a_turn_is_a_user_message_then_a_reply(data_dir: Path) -> None:
    store = store_for(data_dir)
    with pytest.raises(ValueError):
        store.append_turn(Message("assistant", "a"), Message("user", "b"))
    with pytest.raises(TypeError):
        store.append_turn("hi", "there")  # type: ignore[arg-type]
    assert not data_dir.exists()


def test_temp_files_left_by_a_killed_process_are_tidied(data_dir: Path) -> None:
    data_dir.mkdir()
    stale = data_dir / "alice.jsonl.4242-0123abcd.tmp"
    stale.write_bytes(encode_header("alice") + encode_turn(*turn(9)))
    others = [data_dir / "alice.jsonl.5.jsonl.4242-0123abcd.tmp", data_dir / "alice.jsonl.notes.tmp"]
    for path in others:
        path.write_text("not ours")
    store_for(data_dir).append_turn(*turn(1))
    assert not stale.exists()
    assert all(path.read_text() == "not ours" for path in others)
    assert store_for(data_dir).load() == flat(turn(1))


# --- Reading and sharing ---------------------------------------------------------------------------


def test_append_returns_the_count_of_all_stored_messages(data_dir: Path) -> None:
    store = store_for(data_dir)
    assert [store.append_turn(*turn(n)) for n in range(1, 4)] == [2, 4, 6]
    assert store.message_count() == 6
    assert store.messages == flat(turn(1), turn(2), turn(3))


def test_messages_cannot_be_changed_from_outside(data_dir: Path) -> None:
    store = store_for(data_dir)
    store.append_turn(*turn(1))
    store.messages.clear()
    store.load().clear()
    store.refresh().clear()
    assert store.message_count() == 2


def test_refresh_picks_up_another_stores_turns(data_dir: Path) -> None:
    mine, theirs = store_for(data_dir), store_for(data_dir)
    mine.load()
    theirs.load()
    mine.append_turn(*turn(1))
    assert theirs.messages == []
    assert theirs.refresh() == flat(turn(1))
    # Appending picks up the other's turns first, so the count covers both.
    assert theirs.append_turn(*turn(2)) == 4
    assert mine.refresh() == flat(turn(1), turn(2))


def test_one_store_used_from_several_threads(data_dir: Path) -> None:
    store = store_for(data_dir)
    per_thread = 25

    def worker(name: str) -> None:
        for n in range(per_thread):
            store.append_turn(Message("user", f"{name}-{n}"), Message("assistant", f"{name}-{n} reply"))
            # Each call must see a whole history, however the threads interleave.
            seen = store.load() if n % 2 else store.refresh()
            assert len(seen) % 2 == 0 and seen == store_for(data_dir).load()[: len(seen)]

    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            worker(name)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in "abc"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.message_count() == 3 * per_thread * 2
    stored = store_for(data_dir).load()
    assert stored == store.messages
    pairs = list(zip(stored[::2], stored[1::2], strict=True))
    assert all(answer.content == f"{question.content} reply" for question, answer in pairs)
    assert len({question.content for question, _ in pairs}) == 3 * per_thread


def test_append_without_load_catches_up_first(data_dir: Path) -> None:
    store_for(data_dir).append_turn(*turn(1))
    late = store_for(data_dir)
    assert late.append_turn(*turn(2)) == 4
    assert late.messages == flat(turn(1), turn(2))


def test_refresh_reads_only_the_bytes_added_since_the_last_read(data_dir: Path) -> None:
    mine, theirs = store_for(data_dir), store_for(data_dir)
    mine.append_turn(*turn(1))
    theirs.load()
    # Change an early byte in place. A store that re-read the whole file would notice; one that
    # reads from its offset does not, which is what makes refresh cost independent of history length.
    data = bytearray(mine.path.read_bytes())
    where = data.index(b"question 1")
    data[where : where + 10] = b"QUESTION 1"
    with open(mine.path, "r+b") as f:
        f.write(data)
    mine.append_turn(*turn(2))
    assert theirs.refresh() == flat(turn(1), turn(2))
    assert store_for(data_dir).load()[0].content == "QUESTION 1"


def test_refresh_reloads_a_file_replaced_by_archive(data_dir: Path) -> None:
    mine, theirs = store_for(data_dir), store_for(data_dir)
    mine.append_turn(*turn(1))
    theirs.load()
    assert mine.archive() is not None
    assert theirs.refresh() == []
    mine.append_turn(*turn(2))
    assert theirs.refresh() == flat(turn(2))
    assert theirs.append_turn(*turn(3)) == 4


def test_refresh_reloads_a_file_that_was_replaced_with_the_same_size(data_dir: Path) -> None:
    mine, theirs = store_for(data_dir), store_for(data_dir)
    mine.append_turn(*turn(1))
    theirs.load()
    other = data_dir / "other"
    other.mkdir()
    replacement = store_for(other)
    replacement.append_turn(*turn(2))
    os.replace(replacement.path, mine.path)
    assert theirs.refresh() == flat(turn(2))


def test_blank_lines_are_skipped(data_dir: Path, warnings: Warnings) -> None:
    path = data_dir / "alice.jsonl"
    write_history(path, encode_turn(*turn(1)), b"\n  \n", encode_turn(*turn(2)), b"\n")
    store = store_for(data_dir, warnings)
    assert store.load() == flat(turn(1), turn(2))
    assert warnings == []
    assert store.append_turn(*turn(3)) == 6
    assert store_for(data_dir).load() == flat(turn(1), turn(2), turn(3))


def test_unknown_fields_of_the_same_schema_are_ignored(data_dir: Path, warnings: Warnings) -> None:
    path = data_dir / "alice.jsonl"
    record = {"messages": [m.to_json() | {"future": 1} for m in turn(1)], "id": "abc"}
    write_history(path, json.dumps(record).encode() + b"\n")
    assert store_for(data_dir, warnings).load() == flat(turn(1))
    assert warnings == []


# --- Torn last line --------------------------------------------------------------------------------


@pytest.mark.parametrize("tail", [
    b'{"messages":[{"role":"user","content":"que',  # a write cut short
    b'{"messages":[{"role":"user","content":"q","time":""},{"role":"assistant","content":"a","time":""}]}',
    b"\x00\x00\x00\x00\x00\x00",  # zeros, as a power cut can leave
    b"not json at all\n",  # one unreadable line at the end
    b'{"messages":[{"role":"user","content":"\xff\xfe"}]}\n',  # invalid UTF-8 on the last line
    b"   ",
])
def test_torn_last_line_is_dropped_then_cut_and_kept(data_dir: Path, warnings: Warnings, tail: bytes) -> None:
    path = data_dir / "alice.jsonl"
    good = write_history(path, encode_turn(*turn(1)))
    with open(path, "ab") as f:
        f.write(tail)
    store = store_for(data_dir, warnings)
    assert store.load() == flat(turn(1))
    assert len(warnings) == 1 and "incomplete" in warnings[0] and str(path) in warnings[0]
    assert path.read_bytes() == good + tail  # reading never modifies
    assert store.refresh() == flat(turn(1))
    assert len(warnings) == 1  # told once

    assert store.append_turn(*turn(2)) == 4
    (kept,) = sidecars(data_dir, "torn")
    assert kept.read_bytes() == tail
    assert str(kept) in warnings[-1]
    assert path.read_bytes() == good + encode_turn(*turn(2))
    assert store_for(data_dir).load() == flat(turn(1), turn(2))


def test_a_torn_header_leaves_an_empty_history(data_dir: Path, warnings: Warnings) -> None:
    path = data_dir / "alice.jsonl"
    data_dir.mkdir()
    header = encode_header("alice")
    path.write_bytes(header[:20])
    store = store_for(data_dir, warnings)
    assert store.load() == []
    assert len(warnings) == 1
    assert store.append_turn(*turn(1)) == 2
    assert sidecars(data_dir, "torn")[0].read_bytes() == header[:20]
    assert store_for(data_dir).load() == flat(turn(1))
    assert json.loads(path.read_bytes().split(b"\n")[0])["user"] == "alice"


def test_a_torn_tail_seen_by_refresh(data_dir: Path, warnings: Warnings) -> None:
    store = store_for(data_dir, warnings)
    store.append_turn(*turn(1))
    with open(store.path, "ab") as f:
        f.write(encode_turn(*turn(2))[:30])
    assert store.refresh() == flat(turn(1))
    assert len(warnings) == 1
    assert store.append_turn(*turn(3)) == 4
    assert store_for(data_dir).load() == flat(turn(1), turn(3))


def test_another_process_cutting_the_tail_and_appending_the_same_length(data_dir: Path) -> None:
    mine, theirs = store_for(data_dir), store_for(data_dir)
    mine.append_turn(*turn(1))
    record = encode_turn(*turn(2))
    with open(mine.path, "ab") as f:
        f.write(b"x" * (len(record) - 1))  # a torn tail exactly as long as the next record
    assert mine.refresh() == flat(turn(1))
    theirs.append_turn(*turn(2))  # cuts the tail, appends a record of the same length
    assert mine.refresh() == flat(turn(1), turn(2))


# --- Damage ----------------------------------------------------------------------------------------


def assert_recovered(data_dir: Path, warnings: Warnings, original: bytes, expected: list[Message]) -> Path:
    """The damaged file is kept byte for byte, the user told where, and a new file holds what was read."""
    (aside,) = sidecars(data_dir, "corrupt")
    assert aside.read_bytes() == original
    assert any(str(aside) in w and f"{len(expected)} messages" in w for w in warnings)
    path = data_dir / "alice.jsonl"
    header = json.loads(path.read_bytes().split(b"\n")[0])
    assert header["user"] == "alice" and header["recovered_from"] == aside.name
    assert store_for(data_dir).load() == expected
    return aside


def test_an_unreadable_line_in_the_middle_moves_the_file_aside(data_dir: Path, warnings: Warnings) -> None:
    path = data_dir / "alice.jsonl"
    original = write_history(path, encode_turn(*turn(1)), b"garbage\n", encode_turn(*turn(2)))
    store = store_for(data_dir, warnings)
    assert store.load() == flat(turn(1), turn(2))
    assert_recovered(data_dir, warnings, original, flat(turn(1), turn(2)))
    assert store.append_turn(*turn(3)) == 6
    assert store_for(data_dir).load() == flat(turn(1), turn(2), turn(3))


def test_invalid_utf8_in_the_middle(data_dir: Path, warnings: Warnings) -> None:
    path = data_dir / "alice.jsonl"
    bad = encode_turn(*turn(2)).replace(b"answer 2", b"answer \xc3\x28")
    original = write_history(path, encode_turn(*turn(1)), bad, encode_turn(*turn(3)))
    assert store_for(data_dir, warnings).load() == flat(turn(1), turn(3))
    assert_recovered(data_dir, warnings, original, flat(turn(1), turn(3)))


def test_several_unreadable_lines_at_the_end_are_damage_not_a_torn_tail(data_dir: Path,
                                                                          warnings: Warnings) -> None:
    path = data_dir / "alice.jsonl"
    original = write_history(path, encode_turn(*turn(1)), b"junk\n", b"more junk\n")
    assert store_for(data_dir, warnings).load() == flat(turn(1))
    assert_recovered(data_dir, warnings, original, flat(turn(1)))
    assert sidecars(data_dir, "torn") == []


def test_random_bytes(data_dir: Path, warnings: Warnings) -> None:
    path = data_dir / "alice.jsonl"
    data_dir.mkdir()
    original = os.urandom(4096) + b"\n" + os.urandom(100) + b"\n"
    path.write_bytes(original)
    assert store_for(data_dir, warnings).load() == []
    assert_recovered(data_dir, warnings, original, [])


def test_random_bytes_without_any_newline_are_a_torn_tail(data_dir: Path, warnings: Warnings) -> None:
    path = data_dir / "alice.jsonl"
    data_dir.mkdir()
    original = os.urandom(2000).replace(b"\n", b"")
    path.write_bytes(original)
    store = store_for(data_dir, warnings)
    assert store.load() == []
    store.append_turn(*turn(1))
    assert sidecars(data_dir, "torn")[0].read_bytes() == original


def test_a_file_without_a_header_keeps_its_readable_turns(data_dir: Path, warnings: Warnings) -> None:
    path = data_dir / "alice.jsonl"
    data_dir.mkdir()
    original = encode_turn(*turn(1)) + encode_turn(*turn(2))
    path.write_bytes(original)
    store = store_for(data_dir, warnings)
    assert store.load() == flat(turn(1), turn(2))
    assert_recovered(data_dir, warnings, original, flat(turn(1), turn(2)))


@pytest.mark.parametrize("header", [
    {"edgechat": "history", "schema": "1", "user": "alice"},
    {"edgechat": "history", "schema": 0, "user": "alice"},
    {"edgechat": "history", "schema": 1},
    {"edgechat": "settings", "schema": 1, "user": "alice"},
    [1, 2, 3],
])
def test_a_bad_header_is_damage(data_dir: Path, warnings: Warnings, header: object) -> None:
    path = data_dir / "alice.jsonl"
    data_dir.mkdir()
    original = json.dumps(header).encode() + b"\n" + encode_turn(*turn(1))
    path.write_bytes(original)
    assert store_for(data_dir, warnings).load() == flat(turn(1))
    assert_recovered(data_dir, warnings, original, flat(turn(1)))


def test_an_empty_file_is_an_empty_history(data_dir: Path, warnings: Warnings) -> None:
    path = data_dir / "alice.jsonl"
    data_dir.mkdir()
    path.write_bytes(b"")
    store = store_for(data_dir, warnings)
    assert store.load() == []
    assert warnings == []
    assert store.append_turn(*turn(1)) == 2
    assert json.loads(path.read_bytes().split(b"\n")[0])["user"] == "alice"
    assert store_for(data_dir).load() == flat(turn(1))
    assert sidecars(data_dir, "corrupt") == [] and sidecars(data_dir, "torn") == []


def test_damage_found_while_appending_is_recovered_first(data_dir: Path, warnings: Warnings) -> None:
    store = store_for(data_dir, warnings)
    store.append_turn(*turn(1))
    with open(store.path, "ab") as f:
        f.write(b"garbage\n" + encode_turn(*turn(2)))  # written by something else, between our reads
    assert store.append_turn(*turn(3)) == 6
    assert len(sidecars(data_dir, "corrupt")) == 1
    assert store_for(data_dir).load() == flat(turn(1), turn(2), turn(3))


def test_damage_is_repaired_once_by_whichever_store_sees_it_first(data_dir: Path) -> None:
    path = data_dir / "alice.jsonl"
    write_history(path, encode_turn(*turn(1)), b"garbage\n", encode_turn(*turn(2)))
    first, second = Warnings(), Warnings()
    store_for(data_dir, first).load()
    assert store_for(data_dir, second).load() == flat(turn(1), turn(2))
    assert len(sidecars(data_dir, "corrupt")) == 1
    assert second == []


def test_a_second_recovery_never_overwrites_the_first(data_dir: Path, warnings: Warnings) -> None:
    path = data_dir / "alice.jsonl"
    first = write_history(path, encode_turn(*turn(1)), b"junk\n", encode_turn(*turn(2)))
    store_for(data_dir, warnings).load()
    second = path.read_bytes() + b"junk again\n" + encode_turn(*turn(3))
    path.write_bytes(second)
    store_for(data_dir, warnings).load()
    kept = sidecars(data_dir, "corrupt")
    assert sorted(p.read_bytes() for p in kept) == sorted([first, second])


# --- Files that must not be touched ----------------------------------------------------------------


def test_newer_schema_is_refused_and_left_untouched(data_dir: Path) -> None:
    path = data_dir / "alice.jsonl"
    data_dir.mkdir()
    header = {"edgechat": "history", "schema": 2, "user": "alice"}
    original = (json.dumps(header) + '\n{"v2": []}\n').encode()
    path.write_bytes(original)
    store = store_for(data_dir)
    for action in (store.load, store.refresh, lambda: store.append_turn(*turn(1)), store.archive):
        with pytest.raises(NewerSchemaError) as raised:
            action()
        assert str(path) in raised.value.message and raised.value.hint
    assert path.read_bytes() == original
    assert sorted(p.name for p in data_dir.iterdir()) == ["alice.jsonl", "alice.lock"]


@pytest.mark.parametrize("padding", [60_000, 65_536, 70_000, 1_000_000])
@pytest.mark.parametrize("header", [
    {"edgechat": "history", "schema": 2, "user": "alice"},
    {"edgechat": "history", "schema": 1, "user": "bob"},
], ids=["newer-schema", "another-user"])
def test_archive_refuses_a_file_not_ours_however_long_its_header(data_dir: Path, header: dict,
                                                                   padding: int) -> None:
    """The header is read whole before archiving: a long one (a future field) is no excuse to move it."""
    path = data_dir / "alice.jsonl"
    data_dir.mkdir()
    original = (json.dumps({"future": "x" * padding, **header}) + '\n{"v2": []}\n').encode()
    path.write_bytes(original)
    with pytest.raises(StorageError, match="left untouched"):
        store_for(data_dir).archive()
    assert path.read_bytes() == original
    assert sorted(p.name for p in data_dir.iterdir()) == ["alice.jsonl", "alice.lock"]


def test_a_file_of_another_user_differing_in_case_is_refused(data_dir: Path) -> None:
    # What a case-insensitive file system does: alice.jsonl opens Alice's file.
    path = data_dir / "alice.jsonl"
    original = write_history(path, encode_turn(*turn(1)), user="Alice")
    store = store_for(data_dir)
    for action in (store.load, lambda: store.append_turn(*turn(2)), store.archive):
        with pytest.raises(StorageError) as raised:
            action()
        assert "case" in raised.value.message and "'Alice'" in raised.value.message
    assert store.messages == []
    assert path.read_bytes() == original


def test_a_file_of_another_user_is_refused(data_dir: Path) -> None:
    path = data_dir / "alice.jsonl"
    original = write_history(path, encode_turn(*turn(1)), user="bob")
    with pytest.raises(StorageError, match="belongs to user 'bob'"):
        store_for(data_dir).load()
    assert path.read_bytes() == original


def test_an_invalid_owner_in_the_header_is_not_echoed(data_dir: Path) -> None:
    path = data_dir / "alice.jsonl"
    data_dir.mkdir()
    header = {"edgechat": "history", "schema": 1, "user": "\x1b]0;pwned\x07"}
    path.write_bytes(json.dumps(header).encode() + b"\n")
    with pytest.raises(StorageError) as raised:
        store_for(data_dir).load()
    assert "\x1b" not in str(raised.value) and "another user" in raised.value.message


def test_a_fifo_in_place_of_the_history_is_refused_without_hanging(data_dir: Path) -> None:
    data_dir.mkdir()
    os.mkfifo(data_dir / "alice.jsonl")
    with pytest.raises(StorageError, match="not a regular file"):
        store_for(data_dir).load()
    with pytest.raises(StorageError, match="not a regular file"):
        store_for(data_dir).append_turn(*turn(1))


# --- Archive ---------------------------------------------------------------------------------------


def test_archive_renames_and_starts_afresh(data_dir: Path) -> None:
    store = store_for(data_dir)
    store.append_turn(*turn(1))
    saved = store.path.read_bytes()
    archived = store.archive()
    assert archived is not None and archived.parent == data_dir
    assert archived.name.startswith("alice.") and archived.name.endswith(".archived")
    assert archived.read_bytes() == saved
    assert not store.path.exists()
    assert store.messages == [] and store.load() == []
    assert store.append_turn(*turn(2)) == 2


def test_archive_without_history(data_dir: Path) -> None:
    assert store_for(data_dir).archive() is None
    assert not data_dir.exists()  # the folder is not created just to find nothing


def test_archives_never_overwrite_each_other(data_dir: Path) -> None:
    store = store_for(data_dir)
    contents = set()
    for n in range(3):  # within one second: same time stamp
        store.append_turn(*turn(n))
        contents.add(store.path.read_bytes())
        store.archive()
    archived = list(data_dir.glob("alice.*.archived"))
    assert len(archived) == 3
    assert {p.read_bytes() for p in archived} == contents


# --- Disk problems that need no privileges ---------------------------------------------------------


def test_data_dir_replaced_by_a_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.write_text("not a folder")
    store = store_for(data_dir)
    with pytest.raises(StorageError, match="is a file, not a folder") as raised:
        store.append_turn(*turn(1))
    assert "--data-dir" in (raised.value.hint or "")
    with pytest.raises(StorageError, match="not a folder"):
        store.load()
    with pytest.raises(StorageError):
        store.archive()
    assert data_dir.read_text() == "not a folder"


def test_data_dir_replaced_by_a_file_while_in_use(data_dir: Path) -> None:
    store = store_for(data_dir)
    store.append_turn(*turn(1))
    moved = data_dir.with_name("moved")
    data_dir.rename(moved)
    data_dir.write_text("oops")
    with pytest.raises(StorageError):
        store.append_turn(*turn(2))
    with pytest.raises(StorageError):
        store.refresh()
    assert store_for(moved).load() == flat(turn(1))


# --- Listing users ---------------------------------------------------------------------------------


def test_list_users(data_dir: Path) -> None:
    assert list_users(data_dir) == []
    store_for(data_dir, user="bob").append_turn(*turn(1))
    alice = store_for(data_dir)
    alice.append_turn(*turn(1))
    alice.append_turn(*turn(2))
    store_for(data_dir, user="carol").append_turn(*turn(3))
    store_for(data_dir, user="carol").archive()
    (data_dir / "notes.txt").write_text("x")
    (data_dir / ".hidden.jsonl").write_text("x")
    users = list_users(data_dir)
    assert [(u.user, u.message_count, u.last_activity, u.problem) for u in users] == [
        ("alice", 4, "2025-01-01T00:00:02.500Z", None),
        ("bob", 2, "2025-01-01T00:00:01.500Z", None),
    ]
    assert users[0].path == alice.path


def test_list_users_reports_problems_without_touching_files(data_dir: Path) -> None:
    damaged = write_history(data_dir / "alice.jsonl", encode_turn(*turn(1)), b"junk\n", encode_turn(*turn(2)))
    newer = b'{"edgechat": "history", "schema": 9, "user": "bob"}\n'
    (data_dir / "bob.jsonl").write_bytes(newer)
    write_history(data_dir / "carol.jsonl", encode_turn(*turn(1)), b"torn", user="carol")
    users = {u.user: u for u in list_users(data_dir)}
    assert users["alice"].message_count == 4 and "damaged" in (users["alice"].problem or "")
    assert users["bob"].message_count == 0 and "newer" in (users["bob"].problem or "")
    assert users["carol"].message_count == 2 and users["carol"].problem is None
    assert (data_dir / "alice.jsonl").read_bytes() == damaged
    assert (data_dir / "bob.jsonl").read_bytes() == newer
    assert sidecars(data_dir, "corrupt") == []


def test_list_users_creates_no_lock_files(data_dir: Path) -> None:
    write_history(data_dir / "alice.jsonl", encode_turn(*turn(1)))
    assert [u.message_count for u in list_users(data_dir)] == [2]
    assert [p.name for p in data_dir.iterdir()] == ["alice.jsonl"]


def test_list_users_on_a_file_instead_of_a_folder(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("x")
    with pytest.raises(StorageError):
        list_users(tmp_path / "data")


async def test_a_store_behind_the_async_face_refuses_calls_on_the_event_loop(data_dir: Path) -> None:
    """Whatever holds an AsyncHistoryStore cannot do the blocking I/O on the loop by accident."""
    import asyncio

    from edgechat_tui.storage import AsyncHistoryStore

    store = store_for(data_dir)
    face = AsyncHistoryStore(store)
    assert await face.append_turn(*turn(1)) == 2
    for call in (store.load, store.refresh, store.archive, lambda: store.append_turn(*turn(2))):
        with pytest.raises(RuntimeError, match="AsyncHistoryStore"):
            call()
    assert await face.load() == flat(turn(1)) == await asyncio.to_thread(store.refresh)
    assert await face.messages() == flat(turn(1))
