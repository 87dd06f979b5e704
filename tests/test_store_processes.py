"""Real processes writing one user's history: killed at random moments, and several at once.

The writer is tests/store_writer.py. It prints ``done <id> <count>`` only after append_turn returned,
so every id printed is a turn the store reported complete: it must be on disk exactly once, with its
reply right after it, at the position the returned count says.

EDGECHAT_STORE_CRASH_ROUNDS sets how many kills the crash test makes (30 by default, a few seconds);
EDGECHAT_STORE_CRASH_SEED replays a run.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from edgechat_tui.core.messages import Message
from edgechat_tui.storage import HistoryStore, encode_turn
from tests.store_writer import fixed_turn

WRITER = Path(__file__).with_name("store_writer.py")
USER = "alice"


def start_writer(data_dir: Path, prefix: str, count: int, out: Path, *, seed: int = 0, max_pad: int = 0,
                 pause_ms: float = 0, wait_go: bool = False, archived_meanwhile: bool = False,
                 ) -> subprocess.Popen[bytes]:
    # Output goes to a file, not a pipe: after a SIGKILL every line the writer flushed is there.
    command = [sys.executable, str(WRITER), str(data_dir), USER, prefix, str(count),
               "--seed", str(seed), "--max-pad", str(max_pad), "--pause-ms", str(pause_ms)]
    if wait_go:
        command.append("--wait-go")
    if archived_meanwhile:
        command.append("--archived-meanwhile")
    with open(out, "wb") as stdout:
        return subprocess.Popen(command, stdin=subprocess.PIPE if wait_go else subprocess.DEVNULL,
                                stdout=stdout, stderr=subprocess.PIPE)


def reported(out: Path) -> dict[str, int]:
    """The turns a writer reported complete, with the count append_turn returned for each."""
    done: dict[str, int] = {}
    if not out.exists():  # killed before it opened its output
        return done
    for line in out.read_bytes().split(b"\n")[:-1]:  # a line without its newline was cut by the kill
        if line.startswith(b"done "):
            _, turn_id, count = line.decode().split()
            done[turn_id] = int(count)
    return done


def wait_for_ready(out: Path, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not out.exists() or b"ready\n" not in out.read_bytes():
        if proc is not None:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "writer died"
        assert time.monotonic() < deadline, "writer never got ready"
        time.sleep(0.001)


def turns_on_disk(messages: list[Message]) -> list[str]:
    """The turn ids in file order, checking each user message is followed by its own reply."""
    assert len(messages) % 2 == 0
    ids = []
    for question, answer in zip(messages[::2], messages[1::2], strict=True):
        assert question.role == "user" and answer.role == "assistant"
        turn_id = question.content.split()[1]
        assert answer.content.split()[1] == turn_id, f"turn {turn_id} is not followed by its reply"
        ids.append(turn_id)
    assert len(ids) == len(set(ids)), "a turn is on disk twice"
    return ids


def assert_positions(ids: list[str], done: dict[str, int]) -> None:
    """Every reported turn is on disk, where the count append_turn returned says it is."""
    position = {turn_id: i for i, turn_id in enumerate(ids)}
    for turn_id, count in done.items():
        assert turn_id in position, f"turn {turn_id} was reported complete but is not on disk"
        where = position[turn_id]
        assert where == count // 2 - 1, f"turn {turn_id}: append_turn returned {count}, found at turn {where}"


class WriterServer:
    """tests/store_writer.py --serve: forks writers on command and SIGKILLs them (see its docstring)."""

    def __init__(self, errors: Path) -> None:
        with open(errors, "wb") as stderr:
            self.proc = subprocess.Popen([sys.executable, str(WRITER), "--serve"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1)
        self.errors = errors

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, f"the writer server died: {self.errors.read_text()}"
        return answer.split()[1]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def test_sigkill_at_random_moments_loses_no_reported_turn(tmp_path: Path) -> None:
    rounds = int(os.environ.get("EDGECHAT_STORE_CRASH_ROUNDS", "30"))
    seed = int(os.environ.get("EDGECHAT_STORE_CRASH_SEED", str(time.time_ns() % 1_000_000)))
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    server = WriterServer(tmp_path / "server.err")
    watcher = HistoryStore(data_dir, USER, warn=lambda _text: None)
    done: dict[str, int] = {}
    try:
        for r in range(rounds):
            out = tmp_path / f"writer-{r}.out"
            pad = rng.choice([0, 2_000, 200_000])
            server.ask(f"spawn {data_dir} {USER} r{r} {rng.randrange(1 << 30)} {pad} {out}")
            if rng.random() < 0.2:
                time.sleep(rng.uniform(0, 0.01))  # while loading, or cutting a torn tail
            else:
                wait_for_ready(out)
                time.sleep(rng.uniform(0, 0.03))
            status = int(server.ask("kill"))
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                f"a writer ended by itself: {(tmp_path / 'server.err').read_text()}")
            done.update(reported(out))

            # Reading only what is new keeps long runs fast; a full load now and then checks the whole.
            if r % 10 == 9:
                ids = turns_on_disk(HistoryStore(data_dir, USER, warn=lambda _text: None).load())
            else:
                ids = turns_on_disk(watcher.refresh())
            assert_positions(ids, done)
    finally:
        server.close()
    context = f"(seed {seed}, {rounds} kills, {len(done)} turns reported)"
    assert done, f"no turn was completed in any round {context}"
    ids = turns_on_disk(HistoryStore(data_dir, USER, warn=lambda _text: None).load())
    assert_positions(ids, done)
    assert list(data_dir.glob(f"{USER}.corrupt-*")) == [], f"a crash was taken for damage {context}"
    for torn in data_dir.glob(f"{USER}.torn-*"):
        # What a kill leaves is part of one line: the cut never takes a complete record.
        assert b"\n" not in torn.read_bytes(), context
    # And the history is still writable after all that.
    store = HistoryStore(data_dir, USER, warn=lambda _text: None)
    store.load()
    count = store.append_turn(Message("user", "turn final"), Message("assistant", "reply final"))
    assert count == 2 * (len(ids) + 1)


def test_a_process_killed_at_every_byte_of_its_record(tmp_path: Path) -> None:
    """The kernel kills a writer (SIGXFSZ) after exactly k bytes of its record.

    Every k when EDGECHAT_STORE_EVERY_BYTE=1; otherwise the first and last bytes and a spread between
    (each kill costs a few fsyncs; tests/test_store_properties.py reads every offset in-process).
    """
    data_dir = tmp_path / "data"
    base = HistoryStore(data_dir, USER)
    base.append_turn(*fixed_turn("before"))
    good = base.path.read_bytes()
    record = encode_turn(*fixed_turn("killed"))
    offsets = list(range(len(record)))
    if os.environ.get("EDGECHAT_STORE_EVERY_BYTE") != "1":
        offsets = sorted({*offsets[:8], *offsets[-8:], *offsets[8:-8:9]})
    server = WriterServer(tmp_path / "server.err")
    try:
        for k in offsets:
            server.ask(f"limited {data_dir} {USER} killed {len(good) + k}")
            status = int(server.ask("wait"))
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXFSZ, (
                f"at byte {k}: {(tmp_path / 'server.err').read_text()}")
            assert base.path.read_bytes() == good + record[:k]  # the torn record, as the kill left it
            warnings: list[str] = []
            assert HistoryStore(data_dir, USER, warn=warnings.append).load() == list(fixed_turn("before"))
            assert len(warnings) == (1 if k else 0)
        # The whole record fits: the turn completes.
        server.ask(f"limited {data_dir} {USER} killed {len(good) + len(record)}")
        assert os.WIFEXITED(status := int(server.ask("wait"))) and os.WEXITSTATUS(status) == 0
    finally:
        server.close()
    assert HistoryStore(data_dir, USER).load() == [*fixed_turn("before"), *fixed_turn("killed")]
    # Each writer cut its predecessor's torn record off and kept it.
    kept = sorted(p.read_bytes() for p in data_dir.glob(f"{USER}.torn-*"))
    assert kept == sorted(record[:k] for k in offsets if k)


def test_processes_appending_at_once_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    writers, turns_each = 3, 40
    outs = [tmp_path / f"writer-{w}.out" for w in range(writers)]
    procs = [start_writer(data_dir, f"w{w}", turns_each, outs[w], seed=w, max_pad=500, pause_ms=4,
                          wait_go=True)
             for w in range(writers)]
    for proc, out in zip(procs, outs, strict=True):
        wait_for_ready(out, proc)
    for proc in procs:  # start them together
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.close()
    for proc in procs:
        proc.wait(timeout=120)
        assert proc.stderr is not None
        assert proc.returncode == 0, proc.stderr.read().decode()
    done: dict[str, int] = {}
    for out in outs:
        done.update(reported(out))
    assert len(done) == writers * turns_each

    ids = turns_on_disk(HistoryStore(data_dir, USER).load())
    assert sorted(ids) == sorted(done)
    # Each writer's count says where its turn landed: it had picked up every other writer's turns.
    assert_positions(ids, done)
    # The writers really interleaved (otherwise this test would prove little about the lock).
    owners = [turn_id.split("-")[0] for turn_id in ids]
    assert sum(a != b for a, b in itertools.pairwise(owners)) > writers


def test_archiving_while_another_process_appends(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    out = tmp_path / "writer.out"
    proc = start_writer(data_dir, "w", 60, out, max_pad=200, archived_meanwhile=True)
    wait_for_ready(out, proc)
    archives = []
    archiver = HistoryStore(data_dir, USER)

    def archive_now_and_then() -> None:
        while proc.poll() is None:
            time.sleep(0.005)
            if (path := archiver.archive()) is not None:
                archives.append(path)

    thread = threading.Thread(target=archive_now_and_then)
    thread.start()
    proc.communicate(timeout=120)
    thread.join()
    assert proc.returncode == 0

    all_ids = []
    for path in [*archives, data_dir / f"{USER}.jsonl"]:
        if not path.exists():
            continue
        # Read each archive as a history of its own to check it whole.
        check_dir = tmp_path / f"check-{len(all_ids)}-{path.name}"
        check_dir.mkdir()
        (check_dir / f"{USER}.jsonl").write_bytes(path.read_bytes())
        all_ids += turns_on_disk(HistoryStore(check_dir, USER).load())
    assert sorted(all_ids) == sorted(reported(out))
    assert len(archives) >= 1
