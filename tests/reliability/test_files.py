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

from edgechat_tui.agent.base import Message
from edgechat_tui.agent.store import HistoryStore, encode_header, encode_turn
from edgechat_tui.errors import NewerSchemaError
from tests.reliability.figures import FIGURES
from tests.reliability.harness import Workspace, cli_unclear_reasons, read_history, run_edgechat, snapshot

TRUNCATE_CLASS = "files: history cut at every byte of its last record"
DAMAGE_CLASS = "files: random bytes, invalid UTF-8, newer schema, empty file"
CONFIG_CLASS = "files: config with bad TOML, wrong types, unknown keys"
COMMAND = "pytest tests/reliability/test_files.py"
USER = "default"


def turn(n: int, text: str | None = None) -> tuple[Message, Message]:
    return (Message(role="user", content=f"turn {n}"),
            Message(role="assistant", content=text if text is not None else f"reply {n} " + "é" * (n % 7)))


def history_bytes(*turns: tuple[Message, Message], user: str = USER) -> bytes:
    return encode_header(user) + b"".join(encode_turn(u, r) for u, r in turns)


def user_turns(messages: list[Message]) -> list[str]:
    return [m.content for m in messages if m.role == "user"]


def all_bytes_kept(data_dir: Path, original: bytes) -> bool:
    """The damaged file's bytes are somewhere in the data dir: in place, aside, or as a torn tail's copy."""
    files = snapshot(data_dir)
    if any(content == original for content in files.values()):
        return True
    # A torn tail is cut off and kept on its own: the file's head plus that copy are the original.
    tails = [content for name, content in files.items() if ".torn-" in name]
    head = files.get(f"{USER}.jsonl", b"")
    return any(original.startswith(head[: len(original) - len(tail)]) and original.endswith(tail)
               for tail in tails)


# --- truncation -------------------------------------------------------------------------------------


def test_history_cut_at_every_byte_of_its_last_record(tmp_path: Path) -> None:
    turns = [turn(1), turn(2), turn(3, "the last reply, with a newline\nand ünïcödé ✓")]
    whole = history_bytes(*turns)
    last_start = len(history_bytes(*turns[:2]))
    tried = lost = unclear = 0
    problems: list[str] = []
    for cut in range(last_start, len(whole) + 1):
        tried += 1
        data_dir = tmp_path / f"cut{cut}"
        data_dir.mkdir()
        (data_dir / f"{USER}.jsonl").write_bytes(whole[:cut])
        warnings: list[str] = []
        try:
            messages = HistoryStore(data_dir, USER, warn=warnings.append).load()
        except Exception as exc:
            problems.append(f"cut at {cut}: load raised {type(exc).__name__}: {exc}")
            lost += 1
            continue
        expected = ["turn 1", "turn 2", "turn 3"] if cut == len(whole) else ["turn 1", "turn 2"]
        if user_turns(messages) != expected:
            problems.append(f"cut at {cut}: loaded {user_turns(messages)}")
            lost += 1
        torn = last_start < cut < len(whole)
        if torn and not any("incomplete" in w for w in warnings):
            problems.append(f"cut at {cut}: no warning about the incomplete entry")
            unclear += 1
        # The next turn is saved after the readable ones, and the cut bytes are kept aside.
        store = HistoryStore(data_dir, USER, warn=warnings.append)
        store.load()
        store.append_turn(*turn(9))
        again = HistoryStore(data_dir, USER).load()
        if user_turns(again) != [*expected, "turn 9"]:
            problems.append(f"cut at {cut}: after the next turn the history holds {user_turns(again)}")
            lost += 1
        kept = [path.read_bytes() for path in data_dir.glob("*.torn-*")]
        if torn and whole[last_start:cut] not in kept:
            problems.append(f"cut at {cut}: the cut bytes were not kept")
            lost += 1
    FIGURES.add(TRUNCATE_CLASS, command=f"{COMMAND} -k every_byte", tried=tried, lost=lost, unclear=unclear,
                note=problems[0] if problems else None)
    assert not problems, problems[:5]


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
    FIGURES.add(TRUNCATE_CLASS, command=f"{COMMAND} -k through_the_cli", tried=1,
                lost=sum("afterwards" in p or "history:" in p for p in problems),
                unclear=sum("warning" in p or "one-shot" in p for p in problems))
    assert not problems, problems


# --- damage -----------------------------------------------------------------------------------------


def _damaged_files(rng: random.Random) -> list[tuple[str, bytes, list[str]]]:
    """(name, file bytes, the turns that must survive) for each kind of damage."""
    good = [turn(1), turn(2), turn(3)]
    header = encode_header(USER)
    lines = [encode_turn(*t) for t in good]
    cases = []
    for i in range(6):
        noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
        cases.append((f"random-bytes-{i}", noise, []))
        cases.append((f"random-line-in-the-middle-{i}",
                      header + lines[0] + noise.replace(b"\n", b"") + b"\n" + lines[1] + lines[2],
                      ["turn 1", "turn 2", "turn 3"]))
        cases.append((f"random-lines-at-the-end-{i}",
                      header + b"".join(lines) + noise.replace(b"\n", b"") + b"\n" + b"garbage\n",
                      ["turn 1", "turn 2", "turn 3"]))
    bad_utf8 = lines[1].replace(b"reply 2", b"reply \xff\xfe 2")
    cases += [
        ("invalid-utf8-in-a-turn", header + lines[0] + bad_utf8 + lines[2], ["turn 1", "turn 3"]),
        ("invalid-utf8-in-the-header", header.replace(b"history", b"hist\xc3\x28ory", 1) + b"".join(lines),
         ["turn 1", "turn 2", "turn 3"]),
        ("no-header", b"".join(lines), ["turn 1", "turn 2", "turn 3"]),
        ("json-but-not-turns", header + b'{"messages": 5}\n[1,2]\n"text"\n' + lines[0], ["turn 1"]),
        ("nul-bytes", header + lines[0] + b"\0" * 512 + b"\n" + lines[1], ["turn 1", "turn 2"]),
        ("deeply-nested-json", header + lines[0] + b"[" * 100_000 + b"\n" + lines[1], ["turn 1", "turn 2"]),
        ("empty-file", b"", []),
        ("only-newlines", b"\n\n\n", []),
    ]
    return cases


def test_damaged_histories_load_and_keep_what_can_be_read(tmp_path: Path) -> None:
    rng = random.Random(20_251_125)
    tried = lost = 0
    problems: list[str] = []
    for name, content, survivors in _damaged_files(rng):
        tried += 1
        data_dir = tmp_path / name
        data_dir.mkdir()
        (data_dir / f"{USER}.jsonl").write_bytes(content)
        warnings: list[str] = []
        try:
            messages = HistoryStore(data_dir, USER, warn=warnings.append).load()
        except Exception as exc:
            problems.append(f"{name}: load raised {type(exc).__name__}: {exc}")
            lost += 1
            continue
        if user_turns(messages) != survivors:
            problems.append(f"{name}: kept {user_turns(messages)}, expected {survivors}")
            lost += 1
        if not all_bytes_kept(data_dir, content):
            problems.append(f"{name}: the damaged bytes were not kept anywhere")
            lost += 1
        if content.strip() and not warnings and user_turns(messages) != ["turn 1", "turn 2", "turn 3"]:
            problems.append(f"{name}: damage without a warning")
        store = HistoryStore(data_dir, USER)
        store.load()
        store.append_turn(*turn(9))
        if user_turns(HistoryStore(data_dir, USER).load()) != [*survivors, "turn 9"]:
            problems.append(f"{name}: the next turn was not saved after the readable ones")
            lost += 1
    FIGURES.add(DAMAGE_CLASS, command=f"{COMMAND} -k damaged", tried=tried, lost=lost,
                unclear=len(problems) - lost, note=problems[0] if problems else None)
    assert not problems, problems[:5]


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
    FIGURES.add(DAMAGE_CLASS, command=f"{COMMAND} -k through_the_cli", tried=1,
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
    FIGURES.add(DAMAGE_CLASS, command=f"{COMMAND} -k newer_schema", tried=len(runs) + 1, lost=lost,
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
    FIGURES.add(DAMAGE_CLASS, command=f"{COMMAND} -k empty", tried=1, lost=int(not ok))
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
    FIGURES.add(CONFIG_CLASS, command=f"{COMMAND} -k bad_toml", tried=len(runs), lost=lost,
                unclear=len(unclear), note=f"{name}: {unclear[0]}" if unclear else None)
    assert not unclear and not lost, [str(r) for r in runs]
    assert not workers_ai.run_requests


LINE_OF_TABLE_DEFECT = ("config.py _line_of finds only 'key =' lines, so a setting written as a TOML table "
                        "([api_token]) is reported without its line")


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=LINE_OF_TABLE_DEFECT))
    if name == "api_token-table" else name for name in sorted(WRONG_TYPES)])
def test_config_with_wrong_types(workspace: Workspace, workers_ai, name: str) -> None:
    text, key = WRONG_TYPES[name]
    env, content = _config_case(workspace, workers_ai.api_base, text)
    runs = [run_edgechat(args, env) for args in (["-m", "hi"], ["config", "show"])]
    unclear = [r for run in runs for r in cli_unclear_reasons(run, exit_code=2, words=(key, "line 1"))]
    lost = int(workspace.config_path.read_bytes() != content)
    known = name == "api_token-table"
    FIGURES.add(CONFIG_CLASS, command=f"{COMMAND} -k wrong_types", tried=len(runs), lost=lost,
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
    FIGURES.add(CONFIG_CLASS, command=f"{COMMAND} -k unknown_keys", tried=2, unclear=len(problems))
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
    FIGURES.add(CONFIG_CLASS, command=f"{COMMAND} -k cannot_be_read", tried=1, unclear=len(unclear))
    assert not unclear, run
