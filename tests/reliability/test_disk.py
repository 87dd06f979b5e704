"""Disk faults: the data dir read-only, missing, a file; the disk full while writing; the config dir
unwritable.

Each must give one clear error (exit 1) that names the path and the cause, leave the conversation on
disk byte for byte as it was, and leave edgechat able to go on once the fault is gone.

"The typed message is not lost", for one-shot mode, means: a turn that could not be saved is never
reported as done (exit 1, the error on stderr), the reply that came is on stdout, and the history is
unchanged, so the same command can simply be run again once the disk is fixed without storing the
turn twice. (The message itself is the caller's: on the command line or in the piped input.)

Read-only is a real read-only file system (a read-only bind mount) when the suite runs as root, as CI
does, since root ignores permissions; otherwise the folder's write permission is taken away. The full
disk is a real 64 KiB tmpfs, filled to the last byte (root only; skipped, and said so, elsewhere).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.histories import library_dir
from tests.reliability.figures import FIGURES
from tests.reliability.harness import (
    Unavailable,
    Workspace,
    cli_unclear_reasons,
    fill_disk,
    read_history,
    read_only,
    run_edgechat,
    snapshot,
    tmpfs,
)
from tests.reliability.sweeps import disk_full_sweep

CLASS = "disk: read-only, missing, a file, full; config dir unwritable"
COMMAND = "pytest tests/reliability/test_disk.py"
FULL_CLASS = "disk: full at each offset of a write (in-process sweep)"


def record(*, tried: int = 1, lost: int = 0, unclear: list[str] | None = None,
           note: str | None = None) -> None:
    FIGURES.add(CLASS, command=COMMAND, tried=tried, lost=lost, unclear=len(unclear or []),
                note=note or ("; ".join(unclear) if unclear else None))


def _cause_words(how: str) -> tuple[str, ...]:
    return ("read-only",) if how == "EROFS" else ("permission denied",)


def _unavailable(exc: Unavailable) -> None:
    pytest.skip(f"this fault cannot be made on this machine: {exc}")


def test_read_only_data_dir(workspace: Workspace, workers_ai) -> None:
    env = workspace.local_env(workers_ai.api_base)
    first = run_edgechat(["-m", "first"], env)
    assert first.returncode == 0, first
    before = snapshot(workspace.data_dir)
    try:
        with read_only(workspace.data_dir) as how:
            sent = run_edgechat(["-m", "second"], env)
            shown = run_edgechat(["history", "--format", "json"], env)
            reset = run_edgechat(["reset"], env)
    except Unavailable as exc:
        _unavailable(exc)
    unclear = cli_unclear_reasons(sent, words=(str(workspace.data_dir), *_cause_words(how)))
    unclear += cli_unclear_reasons(reset, words=_cause_words(how))
    if shown.returncode != 0 or '"first"' not in shown.out:
        unclear.append(f"the history cannot be read from a read-only folder: {shown}")
    lost = int(snapshot(workspace.data_dir) != before)
    record(tried=3, lost=lost, unclear=unclear)
    assert not unclear and not lost, (unclear, sent)
    # The reply that came is on stdout; the same command works once the folder is writable again.
    assert sent.out.startswith("You said: second")
    again = run_edgechat(["-m", "second"], env)
    assert again.returncode == 0, again
    messages, _ = read_history(workspace.data_dir, "default")
    assert [m.content for m in messages if m.role == "user"] == ["first", "second"]


def test_read_only_empty_data_dir(workspace: Workspace, workers_ai) -> None:
    env = workspace.local_env(workers_ai.api_base)
    workspace.data_dir.mkdir(mode=0o700)
    try:
        with read_only(workspace.data_dir) as how:
            sent = run_edgechat(["-m", "hello"], env)
    except Unavailable as exc:
        _unavailable(exc)
    unclear = cli_unclear_reasons(sent, words=_cause_words(how))
    record(unclear=unclear, lost=int(bool(list(workspace.data_dir.iterdir()))))
    assert not unclear, sent
    assert not list(workspace.data_dir.iterdir())


@pytest.mark.parametrize("depth", [1, 3], ids=["missing", "missing-with-parents"])
def test_missing_data_dir_is_created_private(workspace: Workspace, workers_ai, depth: int) -> None:
    data_dir = workspace.root.joinpath(*[f"level{i}" for i in range(depth - 1)], "data")
    env = workspace.local_env(workers_ai.api_base, EDGECHAT_DATA_DIR=str(data_dir))
    sent = run_edgechat(["-m", "hello"], env)
    problems = [] if sent.returncode == 0 else [f"exit {sent.returncode}: {sent.err}"]
    if data_dir.exists():
        if stat.S_IMODE(data_dir.stat().st_mode) != 0o700:
            problems.append(f"data dir mode {stat.S_IMODE(data_dir.stat().st_mode):o}")
        histories = list(library_dir(data_dir).glob("*.jsonl"))
        if len(histories) != 1 or stat.S_IMODE(histories[0].stat().st_mode) != 0o600:
            problems.append("conversation file missing or not 0600")
        elif stat.S_IMODE(library_dir(data_dir).stat().st_mode) != 0o700:
            problems.append("library folder not 0700")
    else:
        problems.append("the data dir was not created")
    record(unclear=problems)
    assert not problems, problems


@pytest.mark.parametrize("where", ["data-dir", "parent"])
def test_data_dir_replaced_by_a_file(workspace: Workspace, workers_ai, where: str) -> None:
    env = workspace.local_env(workers_ai.api_base)
    assert run_edgechat(["-m", "first"], env).returncode == 0
    workspace.data_dir.rename(workspace.root / "moved-away")
    if where == "data-dir":
        blocker, data_dir = workspace.data_dir, workspace.data_dir
    else:
        blocker, data_dir = workspace.root / "afile", workspace.root / "afile" / "data"
        env = workspace.local_env(workers_ai.api_base, EDGECHAT_DATA_DIR=str(data_dir))
    blocker.write_bytes(b"not a folder\n")
    runs = [run_edgechat(args, env) for args in (["-m", "second"], ["history"], ["reset"])]
    unclear = [reason for run in runs for reason in cli_unclear_reasons(run, words=("not a folder",))]
    lost = int(blocker.read_bytes() != b"not a folder\n")
    record(tried=len(runs), lost=lost, unclear=unclear)
    assert not unclear and not lost, [str(r) for r in runs]


def test_disk_full_on_the_first_turn(workspace: Workspace, workers_ai) -> None:
    try:
        with tmpfs(workspace.root / "disk", 64) as disk:
            data_dir = disk / "data"
            env = workspace.local_env(workers_ai.api_base, EDGECHAT_DATA_DIR=str(data_dir))
            filler = fill_disk(disk)
            sent = run_edgechat(["-m", "hello " * 200], env)
            # What may stay: the lock files and the empty folders a save makes before it writes.
            left = sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*")
                          if not p.is_dir() and not p.name.endswith(".lock")) if data_dir.exists() else []
            filler.unlink()
            again = run_edgechat(["-m", "hello again"], env)
            messages, warnings = read_history(data_dir, "default")
    except Unavailable as exc:
        _unavailable(exc)
    unclear = cli_unclear_reasons(sent, words=("disk is full",))
    leftovers = left
    record(unclear=unclear, lost=len(leftovers))
    assert not unclear, sent
    assert not leftovers, f"a failed first turn left files behind: {leftovers}"
    assert again.returncode == 0, again
    assert [m.content for m in messages if m.role == "user"] == ["hello again"] and not warnings


def test_disk_full_while_appending(workspace: Workspace, workers_ai) -> None:
    try:
        with tmpfs(workspace.root / "disk", 64) as disk:
            data_dir = disk / "data"
            env = workspace.local_env(workers_ai.api_base, EDGECHAT_DATA_DIR=str(data_dir))
            assert run_edgechat(["-m", "first"], env).returncode == 0
            before = snapshot(data_dir)
            filler = fill_disk(disk)
            # Longer than any room left in the file's last page: the write is cut short by ENOSPC.
            sent = run_edgechat(["-m", "long " * 1000], env)
            after = snapshot(data_dir)
            filler.unlink()
            again = run_edgechat(["-m", "second"], env)
            messages, warnings = read_history(data_dir, "default")
    except Unavailable as exc:
        _unavailable(exc)
    unclear = cli_unclear_reasons(sent, words=("disk is full",))
    lost = int(after != before)
    record(unclear=unclear, lost=lost)
    assert not unclear, sent
    assert after == before, "a write that failed for want of space changed the history"
    assert again.returncode == 0, again
    assert [m.content for m in messages if m.role == "user"] == ["first", "second"], messages
    assert not warnings


def test_disk_full_at_each_offset_of_a_write(tmp_path: Path) -> None:
    """In-process, many times: the free room in the file's last page is swept, so the ENOSPC lands at
    every distance from the start of the record (a short write, then the error)."""
    try:
        with tmpfs(tmp_path / "disk", 32) as disk:
            sweep = disk_full_sweep(disk, list(range(0, 4096, 61)))
    except Unavailable as exc:
        _unavailable(exc)
    FIGURES.add(FULL_CLASS, command=f"{COMMAND} -k each_offset", tried=sweep.tried, lost=len(sweep.lost),
                unclear=len(sweep.unclear), note=sweep.problems[0] if sweep.problems else None)
    assert not sweep.problems, sweep.problems[:5]


def test_config_dir_unwritable(workspace: Workspace, workers_ai) -> None:
    env = workspace.local_env(workers_ai.api_base)
    assert run_edgechat(["config", "set", "model", "@cf/meta/llama-3.1-8b-instruct-fast"],
                        env).returncode == 0
    config_dir = workspace.config_path.parent
    before = snapshot(config_dir)
    try:
        with read_only(config_dir) as how:
            changed = run_edgechat(["config", "set", "max_tokens", "1000"], env)
            chatted = run_edgechat(["-m", "the config is only read here"], env)
    except Unavailable as exc:
        _unavailable(exc)
    unclear = cli_unclear_reasons(changed, words=("config", *_cause_words(how)))
    if chatted.returncode != 0:
        unclear.append(f"one-shot fails with an unwritable config dir: {chatted.err}")
    lost = int(snapshot(config_dir) != before)
    record(tried=2, lost=lost, unclear=unclear)
    assert not unclear and not lost, (changed, chatted)


def test_config_on_a_full_disk(workspace: Workspace, workers_ai) -> None:
    try:
        with tmpfs(workspace.root / "cdisk", 64) as disk:
            config = disk / "edgechat" / "config.toml"
            env = workspace.local_env(workers_ai.api_base, EDGECHAT_CONFIG=str(config))
            assert run_edgechat(["config", "set", "model", "@cf/meta/llama-3.1-8b-instruct-fast"],
                                env).returncode == 0
            before = snapshot(config.parent)
            filler = fill_disk(disk)
            changed = run_edgechat(["config", "set", "system_prompt", "x" * 20_000], env)
            after = snapshot(config.parent)
            filler.unlink()
    except Unavailable as exc:
        _unavailable(exc)
    unclear = cli_unclear_reasons(changed, words=("config",))
    lost = int(after != before)
    record(unclear=unclear, lost=lost)
    assert not unclear and not lost, changed


def test_config_path_under_a_file(workspace: Workspace) -> None:
    blocker = workspace.root / "afile"
    blocker.write_bytes(b"x")
    env = workspace.env(EDGECHAT_CONFIG=str(blocker / "edgechat" / "config.toml"))
    changed = run_edgechat(["config", "set", "model", "@cf/meta/llama-3.1-8b-instruct-fast"], env)
    # Exit 2: the path the user gave cannot be a config file (the same as a malformed one).
    unclear = cli_unclear_reasons(changed, exit_code=(1, 2), words=("config", "not a directory"))
    record(unclear=unclear, lost=int(blocker.read_bytes() != b"x"))
    assert not unclear, changed
    assert os.path.isfile(blocker)
