"""Every file the store opens is checked for what it is, and the data dir and history files stay private.

A history or lock path that is a symbolic link, a FIFO, a device or a folder is refused with one line and
left as it is (nothing created where a link points, nothing read from a device, no hang on a FIFO). A data
dir owned by another user is not written to; one others may write in is warned about; a history of ours
that others can read is made 0600 again.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from edgechat_tui.core.errors import StorageError
from edgechat_tui.core.messages import Message
from edgechat_tui.storage import HistoryStore, encode_header, encode_turn, list_users

NOBODY = 65534


def turn(n: int) -> tuple[Message, Message]:
    return Message("user", f"question {n}"), Message("assistant", f"answer {n}")


def history_with_one_turn(data_dir: Path) -> bytes:
    data_dir.mkdir(parents=True, exist_ok=True)
    data = encode_header("alice") + encode_turn(*turn(1))
    (data_dir / "alice.jsonl").write_bytes(data)
    os.chmod(data_dir / "alice.jsonl", 0o600)
    return data


def _symlink_outside(path: Path, outside: Path) -> None:
    path.symlink_to(outside)


def _dangling_symlink(path: Path, outside: Path) -> None:
    path.symlink_to(outside.parent / "created-by-edgechat")


def _fifo(path: Path, _outside: Path) -> None:
    os.mkfifo(path)


def _folder(path: Path, _outside: Path) -> None:
    path.mkdir()


def _dev_zero(path: Path, _outside: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # what /dev/zero is


def _link_to_dev_zero(path: Path, _outside: Path) -> None:
    path.symlink_to("/dev/zero")


KINDS: dict[str, Callable[[Path, Path], None]] = {
    "symlink": _symlink_outside, "dangling-symlink": _dangling_symlink, "fifo": _fifo, "folder": _folder,
    "dev-zero": _dev_zero, "symlink-to-dev-zero": _link_to_dev_zero,
}


def _one_clear_line(error: StorageError, path: Path) -> None:
    text = str(error)
    assert "\n" not in text and str(path) in text
    assert "not a regular file" in text or "symbolic link" in text


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("which", ["alice.jsonl", "alice.lock"])
def test_a_history_or_lock_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str,
                                                                   which: str) -> None:
    data_dir = tmp_path / "data"
    outside = tmp_path / "outside" / "target"
    outside.parent.mkdir()
    outside.write_bytes(b"not edgechat's")
    before = history_with_one_turn(data_dir) if which == "alice.lock" else None
    data_dir.mkdir(exist_ok=True)
    path = data_dir / which
    KINDS[kind](path, outside)
    store = HistoryStore(data_dir, "alice", warn=lambda _text: None)
    actions = [store.load, lambda: store.append_turn(*turn(2)), store.archive]
    for action in actions:
        with pytest.raises(StorageError) as raised:
            action()
        _one_clear_line(raised.value, path)
    assert outside.read_bytes() == b"not edgechat's"
    assert sorted(p.name for p in outside.parent.iterdir()) == ["target"]  # nothing made where a link points
    if before is not None:
        assert (data_dir / "alice.jsonl").read_bytes() == before
    assert os.path.lexists(path)  # left as it was


def test_listing_reports_a_history_that_is_a_link_and_goes_on(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    history_with_one_turn(data_dir)
    (tmp_path / "elsewhere.jsonl").write_bytes(encode_header("bob") + encode_turn(*turn(1)))
    (data_dir / "bob.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    summaries = {s.user: s for s in list_users(data_dir)}
    assert summaries["alice"].message_count == 2 and summaries["alice"].problem is None
    assert summaries["bob"].message_count == 0 and "symbolic link" in (summaries["bob"].problem or "")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_data_dir_owned_by_another_user_is_not_written_to(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    before = history_with_one_turn(data_dir)
    os.chown(data_dir, NOBODY, NOBODY)
    data_dir.chmod(0o777)
    warnings: list[str] = []
    store = HistoryStore(data_dir, "alice", warn=warnings.append)
    assert len(store.load()) == 2  # reading is fine: nothing of ours goes there
    with pytest.raises(StorageError) as raised:
        store.append_turn(*turn(2))
    assert "belongs to another user" in raised.value.message and "--data-dir" in (raised.value.hint or "")
    assert (data_dir / "alice.jsonl").read_bytes() == before


def test_a_data_dir_others_may_write_in_is_warned_about(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o777)
    warnings: list[str] = []
    store = HistoryStore(data_dir, "alice", warn=warnings.append)
    store.append_turn(*turn(1))
    store.append_turn(*turn(2))
    assert len(warnings) == 1 and "chmod 700" in warnings[0] and str(data_dir) in warnings[0]
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o777  # the user's folder keeps its mode


def test_a_new_data_dir_and_its_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = HistoryStore(tmp_path / "data", "alice", warn=lambda _text: None)
        store.append_turn(*turn(1))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    for path in (tmp_path / "data").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.parametrize("action", ["load", "append"])
def test_a_history_of_ours_that_others_can_read_is_made_private(tmp_path: Path, action: str) -> None:
    data_dir = tmp_path / "data"
    history_with_one_turn(data_dir)
    (data_dir / "alice.jsonl").chmod(0o644)  # copied with cp under umask 022, say
    store = HistoryStore(data_dir, "alice")
    store.load() if action == "load" else store.append_turn(*turn(2))
    assert stat.S_IMODE((data_dir / "alice.jsonl").stat().st_mode) == 0o600
