"""The early read of a conversation's tail (``storage/tail.py``) never shows what the store would not.

Every case compares the tail with what ``HistoryStore.load()`` makes of the same bytes (on a copy,
since the store may repair): the tail is the newest part of the store's messages, message for
message, or ``None`` where the store would refuse the file.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.core.messages import Message
from edgechat_tui.storage import tail as tail_module
from edgechat_tui.storage.format import encode_header, encode_turn
from edgechat_tui.storage.store import HistoryStore
from edgechat_tui.storage.tail import EarlyTail, current_conversation, read_tail

USER = "alice"


def turn(i: int, size: int = 0) -> bytes:
    return encode_turn(Message("user", f"question {i}" + "q" * size, time="2025-01-01T10:00:00.000Z"),
                       Message("assistant", f"**answer {i}**\n\n- item {i}", time="2025-01-01T10:00:01.000Z",
                               model="@cf/meta/llama-3.3-70b-instruct-fp8-fast", stopped=i % 7 == 3))


def history(turns: int, *, size: int = 0) -> bytes:
    header = encode_header(USER, created="2025-01-01T00:00:00.000Z")
    return header + b"".join(turn(i, size) for i in range(turns))


def store_view(tmp_path: Path, data: bytes) -> list[Message]:
    """What the store shows for a file holding ``data`` (read from a copy: it may repair it)."""
    copy = tmp_path / "store-copy"
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir()
    (copy / f"{USER}.jsonl").write_bytes(data)
    return HistoryStore(copy, USER, warn=lambda _: None).load()


def check_against_store(tmp_path: Path, data: bytes, count: int = 16) -> None:
    path = tmp_path / f"{USER}.jsonl"
    path.write_bytes(data)
    tail = read_tail(path, USER, count)
    expected = store_view(tmp_path, data)
    assert tail is not None
    assert tail.messages == expected[len(expected) - len(tail.messages):]
    assert len(tail.messages) >= min(count, len(expected))
    if tail.whole:
        assert tail.messages == expected


def test_the_tail_is_the_newest_of_the_stores_messages(tmp_path):
    for turns in (0, 1, 2, 7, 8, 9, 200, 2000):
        check_against_store(tmp_path, history(turns))
    tail = read_tail(tmp_path / f"{USER}.jsonl", USER, 16)
    assert tail is not None and not tail.whole  # 2,000 turns: more than the first read
    assert [m.content for m in tail.messages[-2:]] == ["question 1999", "**answer 1999**\n\n- item 1999"]
    assert tail.messages[-1].model == "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


@pytest.mark.parametrize("size", [10, 3000, 70_000, 300_000])
def test_long_records_across_chunk_boundaries(tmp_path, size, monkeypatch):
    """Records longer than a chunk: the read grows until it holds enough, and a record cut by the
    chunk's start is never shown."""
    monkeypatch.setattr(tail_module, "FIRST_CHUNK", 1024)
    for count in (1, 2, 5, 16):
        check_against_store(tmp_path, history(12, size=size), count)


def test_a_record_too_long_for_the_largest_read_shows_nothing_early(tmp_path, monkeypatch):
    monkeypatch.setattr(tail_module, "FIRST_CHUNK", 256)
    monkeypatch.setattr(tail_module, "MAX_CHUNK", 1024)
    path = tmp_path / f"{USER}.jsonl"
    path.write_bytes(history(3, size=5000))
    tail = read_tail(path, USER, 4)
    assert tail is not None and tail.messages == [] and not tail.whole


def test_the_last_record_cut_at_every_offset_is_dropped_as_the_store_drops_it(tmp_path):
    """A write under way in another process (or cut short): whatever prefix of the last record
    is on disk, the tail shows exactly the complete turns before it."""
    full = history(5)
    last = turn(4)
    start = len(full) - len(last)
    for cut in range(start, len(full) + 1):
        check_against_store(tmp_path, full[:cut], count=100)


def test_the_header_cut_at_every_offset_shows_an_empty_conversation(tmp_path):
    header = encode_header(USER, created="2025-01-01T00:00:00.000Z")
    for cut in range(len(header)):
        path = tmp_path / f"{USER}.jsonl"
        path.write_bytes(header[:cut])
        tail = read_tail(path, USER, 16)
        assert tail is not None and tail.messages == [] and tail.whole
        assert store_view(tmp_path, header[:cut]) == []


@pytest.mark.parametrize("damage", [b"{not json\n", b"\x00\x00\x00\n", b"\xff\xfe garbage\n",
                                    b'{"messages":[{"role":"user","content":7}]}\n', b"[1,2]\n"])
@pytest.mark.parametrize("where", ["middle", "end", "end-twice"])
def test_damaged_lines_show_the_readable_turns_the_store_keeps(tmp_path, damage, where):
    turns = [turn(i) for i in range(6)]
    head = encode_header(USER, created="2025-01-01T00:00:00.000Z")
    if where == "middle":
        data = head + b"".join(turns[:3]) + damage + b"".join(turns[3:])
    elif where == "end":
        data = head + b"".join(turns) + damage
    else:
        data = head + b"".join(turns) + damage + damage
    check_against_store(tmp_path, data, count=100)
    check_against_store(tmp_path, data, count=2)


def test_blank_lines_and_surrogate_escapes_read_as_the_store_reads_them(tmp_path):
    odd = (b'{"messages":[{"role":"user","content":"half \\ud83d pair \\ud83d\\ude00"},'
           b'{"role":"assistant","content":"ok \\udc00","model":"m\\ud800"}]}\n')
    data = history(3) + b"\n\n" + odd + b"\n" + turn(9)
    check_against_store(tmp_path, data, count=100)
    tail = read_tail(tmp_path / f"{USER}.jsonl", USER, 100)
    assert tail is not None
    assert "\ufffd" in tail.messages[-4].content and "\U0001f600" in tail.messages[-4].content


def test_files_the_store_refuses_show_nothing_early(tmp_path):
    path = tmp_path / f"{USER}.jsonl"
    newer = json.dumps({"edgechat": "history", "schema": 99, "user": USER}).encode() + b"\n" + turn(1)
    foreign = encode_header("bob") + turn(1)
    headless = turn(1) + turn(2)
    for data in (newer, foreign, headless):
        path.write_bytes(data)
        assert read_tail(path, USER, 16) is None
    # ...and the store does refuse (or move aside) each of them.
    path.write_bytes(newer)
    with pytest.raises(EdgechatError):
        HistoryStore(tmp_path, USER).load()


def test_links_fifos_folders_and_devices_show_nothing_and_never_hang(tmp_path):
    path = tmp_path / f"{USER}.jsonl"
    target = tmp_path / "elsewhere.jsonl"
    target.write_bytes(history(3))
    path.symlink_to(target)
    assert read_tail(path, USER, 16) is None
    path.unlink()
    os.mkfifo(path)
    assert read_tail(path, USER, 16) is None  # O_NONBLOCK: no writer needed to return
    path.unlink()
    path.mkdir()
    assert read_tail(path, USER, 16) is None
    path.rmdir()
    path.symlink_to("/dev/zero")
    assert read_tail(path, USER, 16) is None


def test_no_file_is_an_empty_conversation_and_nothing_is_created(tmp_path):
    data_dir = tmp_path / "data"
    path = current_conversation(data_dir, USER)
    assert path == data_dir / "alice.jsonl"
    tail = read_tail(path, USER, 16)
    assert tail is not None and tail.messages == [] and tail.whole
    assert not data_dir.exists()


def test_reading_changes_nothing_on_disk(tmp_path):
    path = tmp_path / f"{USER}.jsonl"
    data = history(4) + b'{"messages":[{"role":"user"'  # a torn tail the store would cut on its next save
    path.write_bytes(data)
    path.chmod(0o644)
    before = sorted(p.name for p in tmp_path.iterdir())
    read_tail(path, USER, 16)
    assert path.read_bytes() == data
    assert path.stat().st_mode & 0o777 == 0o644  # the store makes it 0600; a reader does not
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no lock file, no torn- copy


def test_a_bad_user_id_is_refused_before_any_path_is_built(tmp_path):
    with pytest.raises(EdgechatError):
        current_conversation(tmp_path, "../etc")
    assert read_tail(tmp_path / "x.jsonl", "../etc", 16) is None


def test_reading_while_another_writer_appends(tmp_path):
    """A writer appending turns (in pieces, as a slow disk would) while the tail is read over and
    over: every tail is a run of the file's turns, each complete, in order."""
    path = tmp_path / f"{USER}.jsonl"
    path.write_bytes(history(2))
    records = [turn(i, size=i * 37 % 900) for i in range(2, 120)]
    done = threading.Event()

    def write() -> None:
        with open(path, "ab", buffering=0) as out:
            for record in records:
                for piece in range(0, len(record), 97):
                    out.write(record[piece:piece + 97])
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    seen = 0
    while not done.is_set() or seen == 0:
        tail = read_tail(path, USER, 6)
        assert tail is not None
        contents = [m.content for m in tail.messages]
        numbers = [int(c.split()[1].rstrip("q")) for c in contents[::2]]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        assert all(a.startswith("question") and b.startswith("**answer") for a, b in
                   zip(contents[::2], contents[1::2], strict=True))
        seen += 1
    writer.join()
    final = read_tail(path, USER, 6)
    assert final is not None and final.messages[-1].content.startswith("**answer 119**")


def test_the_early_read_runs_in_a_thread_and_calls_back_once(tmp_path):
    path = tmp_path / f"{USER}.jsonl"
    path.write_bytes(history(30))
    early = EarlyTail(path, USER, 16)
    got = []
    early.when_done(got.append)
    tail = early.wait(10)
    assert tail is not None and len(tail.messages) >= 16
    assert early.done and early.result() is tail
    late = []
    early.when_done(late.append)  # after the read: called at once
    assert late == [tail]
    deadline = threading.Event()
    for _ in range(100):
        if got:
            break
        deadline.wait(0.01)
    assert got == [tail]
