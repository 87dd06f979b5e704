"""Migration of a profile's single-conversation history files into its library: nothing lost, once each,
and a crash at any point (a real process killed at random moments) finished by the next start.

EDGECHAT_MIGRATE_CRASH_ROUNDS sets how many kills (20 by default); EDGECHAT_MIGRATE_CRASH_SEED replays.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgechat_tui.core.errors import NewerSchemaError
from edgechat_tui.core.messages import Message
from edgechat_tui.storage.format import encode_header, encode_turn
from edgechat_tui.storage.library import Library
from tests.histories import conversations, library_dir

USER = "alice"
WORKER = Path(__file__).with_name("migrate_worker.py")


def legacy_file(path: Path, tag: str, turns: int, *, pad: int = 0, start: int = 0) -> list[tuple[str, str]]:
    """An old history file as edgechat wrote it; its (role, content) pairs."""
    lines = [encode_header(USER, created=f"2025-01-{1 + start % 27:02d}T00:00:00.000Z")]
    said = []
    for i in range(turns):
        when = f"2025-01-{1 + start % 27:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00.000Z"
        q = Message("user", f"{tag} question {i} {'q' * pad}", time=when)
        a = Message("assistant", f"{tag} answer {i}", time=when, model="m", stopped=i == turns - 1)
        lines.append(encode_turn(q, a))
        said += [("user", q.content), ("assistant", a.content)]
    path.write_bytes(b"".join(lines))
    return said


def make_profile(data_dir: Path, archives: int = 3, turns: int = 4, pad: int = 0) -> dict[str, list]:
    data_dir.mkdir(parents=True, exist_ok=True)
    expected = {}
    for n in range(archives):
        name = f"{USER}.2025010{n % 10}T0000{n // 10:02d}Z.archived" if n < 10 else \
            f"{USER}.20250109T000000Z-{n}.archived"
        expected[name] = legacy_file(data_dir / name, f"archive{n}", turns, pad=pad, start=n)
    expected[f"{USER}.jsonl"] = legacy_file(data_dir / f"{USER}.jsonl", "current", turns, pad=pad, start=28)
    return expected


def contents(state) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in state.messages()]


def test_old_histories_become_conversations_with_nothing_lost(tmp_path) -> None:
    data = tmp_path / "data"
    expected = make_profile(data)
    originals = {name: (data / name).read_bytes() for name in expected}
    library = Library(data, USER, warn=lambda _m: None)
    active, archived = library.list(), library.list(archived=True)
    assert len(active) == 1 and len(archived) == 3
    states = {s.id: s for s in conversations(data, USER)}
    assert contents(states[active[0].id]) == expected[f"{USER}.jsonl"]  # the current one is the open one
    assert library.most_recent().id == active[0].id
    assert sorted(contents(states[s.id]) for s in archived) == \
        sorted(v for k, v in expected.items() if k.endswith(".archived"))
    assert active[0].title == "current question 0" and all(s.title.startswith("archive") for s in archived)
    assert states[active[0].id].branch()[-1].message.stopped  # every field carried over
    for name, raw in originals.items():  # the old files, kept byte for byte, out of the way
        assert not (data / name).exists()
        assert (library_dir(data, USER) / "migrated" / name).read_bytes() == raw
    library.close()
    again = Library(data, USER, warn=lambda _m: None)  # nothing more to do: nothing doubles
    assert len(again.list()) + len(again.list(archived=True)) == 4
    again.close()


def test_a_newer_schema_history_stops_the_migration_and_is_left_untouched(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    body = json.dumps({"edgechat": "history", "schema": 7, "user": USER}).encode() + b"\n{}\n"
    (data / f"{USER}.jsonl").write_bytes(body)
    library = Library(data, USER, warn=lambda _m: None)
    with pytest.raises(NewerSchemaError):
        library.list()
    assert (data / f"{USER}.jsonl").read_bytes() == body and conversations(data, USER) == []


def test_a_damaged_history_is_repaired_as_before_and_its_readable_turns_migrated(tmp_path) -> None:
    data = tmp_path / "data"
    expected = make_profile(data, archives=0, turns=3)
    path = data / f"{USER}.jsonl"
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([lines[0], lines[1], b"{garbage", *lines[2:]]))
    warnings: list[str] = []
    library = Library(data, USER, warn=warnings.append)
    [summary] = library.list()
    assert contents(conversations(data, USER)[0]) == expected[f"{USER}.jsonl"]
    assert list(data.glob(f"{USER}.corrupt-*")) and any("damaged" in w for w in warnings)
    assert summary.message_count == 6
    library.close()


# A process that dies at one exact point: the conversation file just linked into place from its
# temp file, the temp not yet unlinked (the window the random kills found once in many rounds).
DIE_AFTER_LINK = """
import os, sys
from pathlib import Path
from edgechat_tui.storage import fs
from edgechat_tui.storage.library import Library

def die(path):
    if str(path).endswith(".tmp") and ".chats" in str(path):
        os._exit(137)
    os.unlink(path)

fs.unlink_quietly = die
Library(Path(sys.argv[1]), sys.argv[2], warn=lambda _m: None).ready()
"""


def test_a_crash_between_linking_a_conversation_and_unlinking_its_temp_is_finished(tmp_path) -> None:
    template = tmp_path / "template"
    expected = make_profile(template, archives=2, turns=3)
    data = tmp_path / "data"
    shutil.copytree(template, data)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])}
    died = subprocess.run([sys.executable, "-c", DIE_AFTER_LINK, str(data), USER], env=env,
                          capture_output=True, timeout=120)
    assert died.returncode == 137, died.stderr
    root = library_dir(data, USER)
    assert list(root.glob("*.tmp")), "the process died with its temp file beside the conversation"
    check_nothing_lost(data, expected, 0)
    out, err = subprocess.Popen([sys.executable, str(WORKER), str(data), USER], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env).communicate(timeout=120)
    assert out.split() == [b"start", b"done", b"3"], err
    check_finished(data, expected, template, 0)


def test_a_crash_at_any_point_of_migration_loses_nothing_and_the_next_start_finishes(tmp_path) -> None:
    rounds = int(os.environ.get("EDGECHAT_MIGRATE_CRASH_ROUNDS", "20"))
    seed = int(os.environ.get("EDGECHAT_MIGRATE_CRASH_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    template = tmp_path / "template"
    expected = make_profile(template, archives=12, turns=30, pad=2000)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])}

    def run(data: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, str(WORKER), str(data), USER], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)

    # How long the migration itself takes here, from the worker's "start" (its imports done) to its
    # end: kills land inside it. The shortest of three runs, and shorter still whenever a worker
    # finished before its kill. The interpreter's start, which load stretches most, is waited out
    # as a condition (the "start" line), not guessed.
    spans = []
    for n in range(3):
        calibrate = tmp_path / f"calibrate{n}"
        shutil.copytree(template, calibrate)
        worker = run(calibrate)
        assert worker.stdout.readline().strip() == b"start"
        started = time.monotonic()
        out, err = worker.communicate(timeout=120)
        spans.append(time.monotonic() - started)
        assert out.strip() == b"done 13", err
    span = min(spans)
    kills_inside = 0
    for round_number in range(rounds):
        data = tmp_path / f"round{round_number}"
        shutil.copytree(template, data)
        worker = run(data)
        assert worker.stdout.readline().strip() == b"start"
        time.sleep(rng.uniform(0, span))  # the random moment of the crash (this is the fault, not a wait)
        worker.kill()
        worker.communicate()
        kills_inside += worker.returncode != 0
        if worker.returncode == 0:
            span = max(0.1, span * 0.8)
        check_nothing_lost(data, expected, seed)
        out, err = run(data).communicate(timeout=120)  # the next start finishes the job
        assert worker.returncode is not None and out.split() == [b"start", b"done", b"13"], (seed, err)
        check_finished(data, expected, template, seed)
        shutil.rmtree(data)
    assert kills_inside >= rounds // 3, f"only {kills_inside} kills landed before the end (seed {seed})"


def check_nothing_lost(data: Path, expected: dict[str, list], seed: int) -> None:
    """Mid-migration: every source is still in place or migrated, its messages in one conversation."""
    states = conversations(data, USER)
    migrated = library_dir(data, USER) / "migrated"
    made = [contents(s) for s in states]
    for name, said in expected.items():
        in_place = (data / name).exists()
        moved = (migrated / name).exists()
        assert in_place != moved, (seed, name, in_place, moved)
        copies = made.count(said)
        assert copies <= 1, (seed, name)  # never twice
        if moved:
            assert copies == 1, (seed, name)  # moved only once its conversation is whole on disk
    assert len(states) <= len(expected), seed


def check_finished(data: Path, expected: dict[str, list], template: Path, seed: int) -> None:
    states = conversations(data, USER)
    assert sorted(contents(s) for s in states) == sorted(expected.values()), seed
    migrated = library_dir(data, USER) / "migrated"
    for name in expected:
        assert (migrated / name).read_bytes() == (template / name).read_bytes(), (seed, name)
        assert not (data / name).exists()
    root = library_dir(data, USER)
    assert not list(root.glob("*.tmp")) and not list(root.glob(".*.tmp"))
