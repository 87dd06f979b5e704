"""Damaged files: a history cut at every byte of its last record, random bytes, invalid UTF-8, a newer
schema, an empty file; a config file with bad TOML, wrong types, unknown keys.

A history must always load, keep every turn that can be read, never destroy the damaged bytes (they are
kept aside, or left in place), and let the next turn be saved. A bad config file must give one error
naming the file, the line and the problem (exit 2), never a traceback, and never be overwritten.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from edgechat_tui.core.errors import NewerSchemaError
from edgechat_tui.storage import HistoryStore, encode_header, encode_turn
from tests.reliability.figures import FIGURES
from tests.reliability.harness import Workspace, cli_unclear_reasons, read_history, run_edgechat, snapshot
from tests.reliability.sweeps import (
    USER,
    all_bytes_kept,
    damage_sweep,
    history_bytes,
    truncation_sweep,
    turn,
    user_turns,
)

TRUNCATE_CLASS = "files: history cut at every byte of its last record"
DAMAGE_CLASS = "files: random bytes, invalid UTF-8, newer schema, empty file"
CONFIG_CLASS = "files: config with bad TOML, wrong types, unknown keys"
COMMAND = "pytest tests/reliability/test_files.py"
TRUNCATE_COMMAND = f"{COMMAND} -k cut"
DAMAGE_COMMAND = f"{COMMAND} -k 'damaged or newer or empty'"
CONFIG_COMMAND = f"{COMMAND} -k config"


# --- truncation -------------------------------------------------------------------------------------


def test_history_cut_at_every_byte_of_its_last_record(tmp_path: Path) -> None:
    turns = [turn(1), turn(2), turn(3, "the last reply, with a newline\nand ünïcödé ✓ \x00 \"quoted\"")]
    sweep = truncation_sweep(tmp_path, turns)
    FIGURES.add(TRUNCATE_CLASS, command=TRUNCATE_COMMAND, tried=sweep.tried, lost=len(sweep.lost),
                unclear=len(sweep.unclear), note=sweep.problems[0] if sweep.problems else None)
    assert sweep.tried == len(history_bytes(*turns)) - len(history_bytes(*turns[:2])) + 1
    assert not sweep.problems, sweep.problems[:5]


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.95])
def test_cut_history_through_the_cli(workspace: Workspace, workers_ai, fraction: float) -> None:
    whole = history_bytes(turn(1), turn(2))
    last_start = len(history_bytes(turn(1)))
    cut = last_start + int((len(whole) - last_start) * fraction)
    workspace.data_dir.mkdir(parents=True)
    (workspace.data_dir / f"{USER}.jsonl").write_bytes(whole[:cut])
    env = workspace.local_env(workers_ai.api_base)
    shown = run_edgechat(["history", "--format", "json"], env)
    sent = run_edgechat(["-m", "after the cut"], env)
    problems = []
    if shown.returncode != 0 or [m["content"] for m in json.loads(shown.out or "{}").get("messages", [])
                                 if m["role"] == "user"] != ["turn 1"]:
        problems.append(f"history: {shown}")
    if "incomplete" not in shown.err:
        problems.append("no warning about the incomplete entry")
    if sent.returncode != 0:
        problems.append(f"one-shot after the cut: {sent}")
    messages, _ = read_history(workspace.data_dir, USER)
    if user_turns(messages) != ["turn 1", "after the cut"]:
        problems.append(f"afterwards: {user_turns(messages)}")
    FIGURES.add(TRUNCATE_CLASS, command=TRUNCATE_COMMAND, tried=1,
                lost=sum("afterwards" in p or "history:" in p for p in problems),
                unclear=sum("warning" in p or "one-shot" in p for p in problems))
    assert not problems, problems


# --- damage -----------------------------------------------------------------------------------------


def test_damaged_histories_load_and_keep_what_can_be_read(tmp_path: Path) -> None:
    sweep = damage_sweep(tmp_path, random.Random(20_251_125))
    FIGURES.add(DAMAGE_CLASS, command=DAMAGE_COMMAND, tried=sweep.tried, lost=len(sweep.lost),
                unclear=len(sweep.unclear), note=sweep.problems[0] if sweep.problems else None)
    assert not sweep.problems, sweep.problems[:5]


def test_damaged_history_through_the_cli(workspace: Workspace, workers_ai) -> None:
    workspace.data_dir.mkdir(parents=True)
    content = encode_header(USER) + encode_turn(*turn(1)) + b"\x00\xff garbage\n" + encode_turn(*turn(2))
    (workspace.data_dir / f"{USER}.jsonl").write_bytes(content)
    env = workspace.local_env(workers_ai.api_base)
    shown = run_edgechat(["history", "--format", "json"], env)
    sent = run_edgechat(["-m", "after the damage"], env)
    problems = []
    if shown.returncode != 0 or "corrupt-" not in shown.err:
        problems.append(f"history did not load or did not say where the damaged file went: {shown}")
    if sent.returncode != 0:
        problems.append(f"one-shot failed: {sent}")
    messages, _ = read_history(workspace.data_dir, USER)
    if user_turns(messages) != ["turn 1", "turn 2", "after the damage"]:
        problems.append(f"afterwards: {user_turns(messages)}")
    if not all_bytes_kept(workspace.data_dir, content):
        problems.append("the damaged file was not kept")
    FIGURES.add(DAMAGE_CLASS, command=DAMAGE_COMMAND, tried=1,
                lost=sum(("afterwards" in p or "kept" in p) for p in problems),
                unclear=sum(("history did not" in p or "one-shot" in p) for p in problems))
    assert not problems, problems


def test_newer_schema_is_left_untouched(workspace: Workspace, workers_ai) -> None:
    workspace.data_dir.mkdir(parents=True)
    header = json.dumps({"edgechat": "history", "schema": 99, "user": USER, "created": "2030-01-01T00:00Z"})
    content = header.encode() + b"\n" + b'{"some": "future format"}\n'
    path = workspace.data_dir / f"{USER}.jsonl"
    path.write_bytes(content)
    env = workspace.local_env(workers_ai.api_base)
    runs = [run_edgechat(args, env) for args in (["history"], ["-m", "hello"], ["reset"])]
    unclear = [r for run in runs for r in cli_unclear_reasons(run, words=("newer",))]
    with pytest.raises(NewerSchemaError):
        HistoryStore(workspace.data_dir, USER).load()
    listing = run_edgechat(["users"], env)
    if listing.returncode != 0:
        unclear.append(f"users fails on a newer file: {listing}")
    sends = len(workers_ai.run_requests)
    if sends:
        unclear.append(f"a message was sent to the model although the history could not be used ({sends})")
    lost = int(path.read_bytes() != content) + int(len(snapshot(workspace.data_dir)) > 2)
    FIGURES.add(DAMAGE_CLASS, command=DAMAGE_COMMAND, tried=len(runs) + 1, lost=lost,
                unclear=len(unclear), note="; ".join(unclear) or None)
    assert not unclear and not lost, [str(r) for r in runs]


def test_empty_history_file_is_an_empty_conversation(workspace: Workspace, workers_ai) -> None:
    workspace.data_dir.mkdir(parents=True)
    (workspace.data_dir / f"{USER}.jsonl").write_bytes(b"")
    env = workspace.local_env(workers_ai.api_base)
    shown = run_edgechat(["history", "--format", "json"], env)
    sent = run_edgechat(["-m", "first words"], env)
    messages, warnings = read_history(workspace.data_dir, USER)
    ok = (shown.returncode == 0 and json.loads(shown.out)["messages"] == [] and sent.returncode == 0
          and user_turns(messages) == ["first words"] and not warnings)
    FIGURES.add(DAMAGE_CLASS, command=DAMAGE_COMMAND, tried=1, lost=int(not ok))
    assert ok, (shown, sent, warnings)


# --- the config file ----------------------------------------------------------------------------------

BAD_TOML = {
    "unclosed-string": ('model = "@cf/meta/llama\n', 1),
    "duplicate-key": ('max_tokens = 100\nmax_tokens = 200\n', 2),
    "bare-text": ("hello there\n", 1),
    "unclosed-table": ('model = "x"\n[section\n', 2),
    "bad-escape": ('system_prompt = "a \\q b"\n', 1),
    "control-character": ('system_prompt = "a \x1b[2J b"\n', 1),
    "nul": ('model = "a\x00b"\n', 1),
}
WRONG_TYPES = {
    "max_tokens-text": ('max_tokens = "lots"\n', "max_tokens"),
    "max_tokens-zero": ("max_tokens = 0\n", "max_tokens"),
    "temperature-bool": ("temperature = true\n", "temperature"),
    "temperature-nan": ("temperature = nan\n", "temperature"),
    "api_base-number": ("api_base = 5\n", "api_base"),
    "api_base-ftp": ('api_base = "ftp://example.com"\n', "api_base"),
    "default_user-traversal": ('default_user = "../etc"\n', "default_user"),
    "default_user-nul": ('default_user = "a\\u0000b"\n', "default_user"),
    "account_id-spaces": ('account_id = "abc def"\n', "account_id"),
    "api_token-table": ("[api_token]\nvalue = 1\n", "api_token"),
    "read_timeout-negative": ("read_timeout = -1\n", "read_timeout"),
    "model-list": ('model = ["a", "b"]\n', "model"),
    "data_dir-empty": ('data_dir = ""\n', "data_dir"),
}


def _config_case(workspace: Workspace, api_base: str, text: str | bytes) -> tuple[dict[str, str], bytes]:
    workspace.config_path.parent.mkdir(parents=True, exist_ok=True)
    content = text.encode("utf-8") if isinstance(text, str) else text
    workspace.config_path.write_bytes(content)
    workspace.config_path.chmod(0o600)
    return workspace.local_env(api_base), content


@pytest.mark.parametrize("name", sorted(BAD_TOML))
def test_config_with_bad_toml(workspace: Workspace, workers_ai, name: str) -> None:
    text, line = BAD_TOML[name]
    env, content = _config_case(workspace, workers_ai.api_base, text)
    commands = (["-m", "hi"], ["config", "show"], ["config", "set", "model", "x/y"])
    runs = [run_edgechat(args, env) for args in commands]
    words = (str(workspace.config_path), f"line {line}")
    unclear = [r for run in runs for r in cli_unclear_reasons(run, exit_code=2, words=words)]
    lost = int(workspace.config_path.read_bytes() != content)
    FIGURES.add(CONFIG_CLASS, command=CONFIG_COMMAND, tried=len(runs), lost=lost,
                unclear=len(unclear), note=f"{name}: {unclear[0]}" if unclear else None)
    assert not unclear and not lost, [str(r) for r in runs]
    assert not workers_ai.run_requests




@pytest.mark.parametrize("name", sorted(WRONG_TYPES))
def test_config_with_wrong_types(workspace: Workspace, workers_ai, name: str) -> None:
    text, key = WRONG_TYPES[name]
    env, content = _config_case(workspace, workers_ai.api_base, text)
    runs = [run_edgechat(args, env) for args in (["-m", "hi"], ["config", "show"])]
    unclear = [r for run in runs for r in cli_unclear_reasons(run, exit_code=2, words=(key, "line 1"))]
    lost = int(workspace.config_path.read_bytes() != content)
    known = name == "api_token-table"
    FIGURES.add(CONFIG_CLASS, command=CONFIG_COMMAND, tried=len(runs), lost=lost,
                unclear=0 if known else len(unclear), known_defects=int(known and bool(unclear)),
                note=f"{name}: {unclear[0]}" if unclear else None)
    assert not unclear and not lost, [str(r) for r in runs]


def test_config_with_unknown_keys_warns_and_goes_on(workspace: Workspace, workers_ai) -> None:
    env, content = _config_case(workspace, workers_ai.api_base,
                                'modle = "typo"\n[extra]\nanything = 1\nmax_tokens = 300\n')
    sent = run_edgechat(["-m", "hi"], env)
    shown = run_edgechat(["config", "show"], env)
    problems = []
    for run in (sent, shown):
        if run.returncode != 0 or "unknown setting 'modle'" not in run.err or "line 1" not in run.err:
            problems.append(str(run))
    FIGURES.add(CONFIG_CLASS, command=CONFIG_COMMAND, tried=2, unclear=len(problems))
    assert not problems, problems
    assert workspace.config_path.read_bytes() == content


@pytest.mark.parametrize("kind", ["not-utf8", "a-directory"])
def test_config_that_cannot_be_read(workspace: Workspace, workers_ai, kind: str) -> None:
    workspace.config_path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "not-utf8":
        workspace.config_path.write_bytes(b'model = "caf\xe9"\n')
    else:
        workspace.config_path.mkdir()
    env = workspace.local_env(workers_ai.api_base)
    run = run_edgechat(["-m", "hi"], env)
    unclear = cli_unclear_reasons(run, exit_code=2, words=(str(workspace.config_path),))
    FIGURES.add(CONFIG_CLASS, command=CONFIG_COMMAND, tried=1, unclear=len(unclear))
    assert not unclear, run


# --- odd content: lone surrogates, wrong types ------------------------------------------------------

ODD_CLASS = "files: lone surrogates and wrong types in every field of a stored turn"
ODD_COMMAND = f"{COMMAND} -k odd"
_ODD_MESSAGES = [
    {"role": "user", "content": "emoji cut in two: \ud83d", "time": "\ude00\ud83d", "model": "\udfff"},
    {"role": "assistant", "content": "\ud83d\ude00 whole, then lone \udc00", "time": 12345, "model": ["x"],
     "usage": {"prompt_tokens": "12", "completion_tokens": -3, "total_tokens": 1.5}, "stopped": "yes"},
    {"role": "user", "content": "\x1b]52;c;ZWNobyBoaQ==\x07 \x9b2J", "time": None, "model": {"a": 1}},
    {"role": "assistant", "content": "fine", "time": "\x1b]0;title\x07", "model": "\x1b[31mred",
     "usage": "lots"},
]


_ODD_COMMANDS = [["history"], ["history", "--format", "json"], ["users"], ["-m", "and now?"]]


@pytest.mark.parametrize("command", _ODD_COMMANDS, ids=["history", "history-json", "users", "one-shot"])
def test_odd_stored_content_never_makes_a_command_fail(workspace: Workspace, workers_ai,
                                                        command: list[str]) -> None:
    """A history an older version (or a hand edit) left with lone surrogates (``\\ud83d`` in the JSON)
    and fields of the wrong type: every command works on it, exit 0, no traceback."""
    workspace.data_dir.mkdir(parents=True)
    lines = [json.dumps({"messages": _ODD_MESSAGES[i:i + 2]}, ensure_ascii=True).encode() + b"\n"
             for i in (0, 2)]
    (workspace.data_dir / f"{USER}.jsonl").write_bytes(encode_header(USER) + b"".join(lines))
    run = run_edgechat(command, workspace.local_env(workers_ai.api_base))
    problems = [] if run.returncode == 0 and "Traceback" not in run.err else [f"{command}: {run}"]
    messages, _ = read_history(workspace.data_dir, USER)
    if len(messages) < 4:
        problems.append(f"{command}: the history lost turns ({len(messages)} messages)")
    FIGURES.add(ODD_CLASS, command=ODD_COMMAND, tried=1, lost=int(len(messages) < 4),
                unclear=int(bool(problems) and len(messages) >= 4))
    assert not problems, problems


# --- files that are not regular files ---------------------------------------------------------------

KINDS_CLASS = "files: a history or lock that is a link, FIFO, device or folder"
KINDS_COMMAND = f"{COMMAND} -k kinds"


@pytest.mark.parametrize("which", ["default.jsonl", "default.lock"])
@pytest.mark.parametrize("kind", ["symlink", "dangling-symlink", "fifo", "folder", "symlink-to-dev-zero"])
def test_file_kinds_that_are_not_regular_files_through_the_cli(workspace: Workspace, workers_ai, kind: str,
                                                               which: str) -> None:
    """``edgechat -m`` and ``history`` refuse with one line, in time, creating nothing where a link points."""
    from tests.test_store_files import KINDS

    outside = workspace.root / "outside" / "target"
    outside.parent.mkdir(parents=True)
    outside.write_bytes(b"not edgechat's")
    workspace.data_dir.mkdir(parents=True)
    if which.endswith(".lock"):
        (workspace.data_dir / f"{USER}.jsonl").write_bytes(history_bytes(turn(1)))
    KINDS[kind](workspace.data_dir / which, outside)
    env = workspace.local_env(workers_ai.api_base)
    runs = [run_edgechat(["-m", "hello"], env, timeout=30), run_edgechat(["history"], env, timeout=30)]
    unclear = [reason for run in runs for reason in cli_unclear_reasons(run, words=(which,))]
    untouched = sorted(p.name for p in outside.parent.iterdir()) == ["target"]
    lost = int(not untouched or outside.read_bytes() != b"not edgechat's")
    FIGURES.add(KINDS_CLASS, command=KINDS_COMMAND, tried=len(runs), lost=lost, unclear=len(unclear))
    assert not unclear, runs
    assert not lost, "a file was made or changed outside the data dir"
