"""The disk failing under HistoryStore: full, read-only, not ours to write, over a size limit.

Each case checks the same three things: a clear StorageError (what happened and what to do), the
history on disk unchanged, and a store that works again once the disk does.

A full disk and a read-only one are real: a small tmpfs is mounted (this needs root, which the tests
and CI have here; elsewhere these tests are skipped). Permissions are checked by tests/store_probe.py,
which drops from root to ``nobody`` before it touches the files.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgechat_tui.core.errors import StorageError
from edgechat_tui.core.messages import Message
from edgechat_tui.storage import HistoryStore, encode_header, encode_turn, list_users

PROBE = Path(__file__).with_name("store_probe.py")


def turn(n: int, size: int = 0) -> tuple[Message, Message]:
    return (Message("user", f"question {n} " + "q" * size, time="2025-01-01T00:00:00.000Z"),
            Message("assistant", f"answer {n}", time="2025-01-01T00:00:01.000Z"))


def flat(*turns: tuple[Message, Message]) -> list[Message]:
    return [m for pair in turns for m in pair]


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs of our own, so that it can be filled up or made read-only."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mount_point = tmp_path / "fs"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def fill_up(fs: Path) -> Path:
    """Write a file until the file system says it is full."""
    filler = fs / "filler"
    with open(filler, "wb", buffering=0) as f:
        while True:
            try:
                f.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return filler


def test_disk_full_while_appending(small_fs: Path) -> None:
    data_dir = small_fs / "data"
    store = HistoryStore(data_dir, "alice")
    store.append_turn(*turn(1))
    store.append_turn(*turn(2))
    before = store.path.read_bytes()
    filler = fill_up(small_fs)

    # The record starts in the file's last, partly used page and runs out of space part way.
    with pytest.raises(StorageError) as raised:
        store.append_turn(*turn(3, size=50_000))
    assert "disk is full" in raised.value.message and str(store.path) in raised.value.message
    assert "free some disk space" in (raised.value.hint or "")
    assert store.path.read_bytes() == before  # the partial write was taken back
    assert store.message_count() == 4
    warnings: list[str] = []
    assert HistoryStore(data_dir, "alice", warn=warnings.append).load() == flat(turn(1), turn(2))
    assert warnings == []

    filler.unlink()
    assert store.append_turn(*turn(3, size=50_000)) == 6
    assert HistoryStore(data_dir, "alice").load() == flat(turn(1), turn(2), turn(3, size=50_000))


def test_disk_full_for_a_new_history(small_fs: Path) -> None:
    data_dir = small_fs / "data"
    data_dir.mkdir()
    filler = fill_up(small_fs)
    store = HistoryStore(data_dir, "bob")
    with pytest.raises(StorageError, match="disk is full"):
        store.append_turn(*turn(1, size=10_000))
    assert sorted(p.name for p in data_dir.iterdir()) == ["bob.lock"]  # no history, no temp file
    filler.unlink()
    assert store.append_turn(*turn(1)) == 2


def test_disk_full_with_a_torn_tail_to_keep(small_fs: Path) -> None:
    data_dir = small_fs / "data"
    store = HistoryStore(data_dir, "alice", warn=lambda _text: None)
    store.append_turn(*turn(1))
    with open(store.path, "ab") as f:
        f.write(encode_turn(*turn(2))[:25])
    before = store.path.read_bytes()
    filler = fill_up(small_fs)
    # The torn bytes cannot be kept elsewhere, so they are not cut: nothing changes.
    with pytest.raises(StorageError, match="disk is full"):
        store.append_turn(*turn(3))
    assert store.path.read_bytes() == before
    assert list(data_dir.glob("alice.torn-*")) == []
    filler.unlink()
    assert store.append_turn(*turn(3)) == 4
    assert [p.read_bytes() for p in data_dir.glob("alice.torn-*")] == [before[-25:]]


def test_read_only_file_system(small_fs: Path) -> None:
    data_dir = small_fs / "data"
    alice = HistoryStore(data_dir, "alice")
    alice.append_turn(*turn(1))
    carol_path = data_dir / "carol.jsonl"
    carol_path.write_bytes(encode_header("carol") + encode_turn(*turn(1)) + b"junk\n" + encode_turn(*turn(2)))
    before = {p.name: p.read_bytes() for p in data_dir.iterdir()}
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)

    warnings: list[str] = []
    reader = HistoryStore(data_dir, "alice", warn=warnings.append)
    assert reader.load() == flat(turn(1))
    assert reader.refresh() == flat(turn(1))
    for action in (lambda: reader.append_turn(*turn(2)), reader.archive):
        with pytest.raises(StorageError) as raised:
            action()
        assert "read-only" in raised.value.message and "--data-dir" in (raised.value.hint or "")
    assert warnings == []

    # A damaged file that cannot be moved aside: what can be read is shown, and the user is told.
    carol = HistoryStore(data_dir, "carol", warn=warnings.append)
    assert carol.load() == flat(turn(1), turn(2))
    assert len(warnings) == 1 and "could not be moved aside" in warnings[0] and "read-only" in warnings[0]
    with pytest.raises(StorageError):
        carol.append_turn(*turn(3))

    with pytest.raises(StorageError, match="read-only"):
        HistoryStore(data_dir, "dave").append_turn(*turn(1))
    with pytest.raises(StorageError, match="read-only"):
        HistoryStore(small_fs / "missing", "erin").append_turn(*turn(1))
    assert [u.user for u in list_users(data_dir)] == ["alice", "carol"]
    assert {p.name: p.read_bytes() for p in data_dir.iterdir()} == before


def test_file_size_limit_takes_the_partial_write_back(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel cut the write short, then refuse (EFBIG): a real partial write."""
    data_dir = tmp_path / "data"
    store = HistoryStore(data_dir, "alice")
    store.append_turn(*turn(1))
    before = store.path.read_bytes()
    code = f"""
import json, resource
from pathlib import Path
from edgechat_tui.core.messages import Message
from edgechat_tui.storage.store import HistoryStore
from edgechat_tui.core.errors import StorageError
store = HistoryStore(Path({str(data_dir)!r}), "alice")
store.load()
resource.setrlimit(resource.RLIMIT_FSIZE, ({len(before) + 100}, resource.RLIM_INFINITY))
try:
    store.append_turn(Message("user", "x" * 5000), Message("assistant", "y"))
    print(json.dumps("saved"))
except StorageError as exc:
    print(json.dumps([exc.message, exc.hint, store.message_count()]))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    message, hint, count = json.loads(result.stdout)
    assert "file size limit" in message and hint
    assert count == 2
    assert store.path.read_bytes() == before
    assert store.append_turn(*turn(2)) == 4


# --- Permissions, as a normal user -----------------------------------------------------------------


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temp folder that ``nobody`` can enter (pytest's own are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="edgechat-store-perm-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for sub in path.rglob("*"):
            if sub.is_dir():
                sub.chmod(0o755)
        shutil.rmtree(path)


def probe(data_dir: Path, *actions: str, user: str = "alice") -> tuple[dict[str, dict], list[str]]:
    result = subprocess.run([sys.executable, str(PROBE), str(data_dir), user, *actions],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["uid"] != 0, "the probe must not run as root (root ignores permissions)"
    return dict(report["results"]), report["warnings"]


def assert_permission_denied(outcome: dict) -> None:
    assert outcome.get("error") == "StorageError", outcome
    assert "permission denied" in outcome["message"]
    assert "--data-dir" in outcome["hint"]


def test_a_folder_the_user_cannot_write(open_tmp: Path) -> None:
    data_dir = open_tmp / "data"
    HistoryStore(data_dir, "alice").append_turn(*turn(1))
    history = data_dir / "alice.jsonl"
    history.chmod(0o444)
    data_dir.chmod(0o555)
    before = history.read_bytes()
    results, warnings = probe(data_dir, "load", "refresh", "append", "archive")
    assert results["load"] == {"ok": 2} and results["refresh"] == {"ok": 2}  # reading still works
    assert_permission_denied(results["append"])
    assert_permission_denied(results["archive"])
    assert warnings == []
    assert history.read_bytes() == before


def test_a_history_the_user_cannot_read(open_tmp: Path) -> None:
    data_dir = open_tmp / "data"
    HistoryStore(data_dir, "alice").append_turn(*turn(1))
    data_dir.chmod(0o755)
    (data_dir / "alice.jsonl").chmod(0o000)
    results, _ = probe(data_dir, "load", "append")
    assert_permission_denied(results["load"])
    assert_permission_denied(results["append"])


def test_a_data_dir_that_cannot_be_created(open_tmp: Path) -> None:
    parent = open_tmp / "locked"
    parent.mkdir(mode=0o555)
    results, _ = probe(parent / "data", "load", "append")
    assert results["load"] == {"ok": 0}
    assert_permission_denied(results["append"])
    assert "history folder" in results["append"]["message"]
    assert list(parent.iterdir()) == []


def test_a_damaged_history_in_a_folder_the_user_cannot_write(open_tmp: Path) -> None:
    data_dir = open_tmp / "data"
    data_dir.mkdir()
    history = data_dir / "alice.jsonl"
    history.write_bytes(encode_header("alice") + encode_turn(*turn(1)) + b"junk\n" + encode_turn(*turn(2)))
    history.chmod(0o444)
    data_dir.chmod(0o555)
    before = history.read_bytes()
    results, warnings = probe(data_dir, "load", "append")
    assert results["load"] == {"ok": 4}
    assert len(warnings) == 1 and "could not be moved aside" in warnings[0]
    assert_permission_denied(results["append"])
    assert history.read_bytes() == before
    assert [p.name for p in data_dir.iterdir()] == ["alice.jsonl"]
