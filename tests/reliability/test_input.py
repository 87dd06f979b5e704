"""Input: a 1 MB pasted message, empty and blank messages, every control character, right-to-left and
combining text, hostile user ids.

Messages are sent and stored exactly as typed (no normalisation), shown without anything a terminal
would act on; a message that cannot fit the model's window is refused before anything is sent;
an empty one is refused (exit 2). A hostile user id is refused with exit 2 before any file is touched,
inside the data dir or outside it.

Most cases run ``edgechat``'s ``main()`` in this process (with real files and real HTTP to a loopback
fake) because there are many of them; a sample runs as real processes.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from edgechat_tui.cli import entry as cli
from tests.fakes.agent_server import AgentServer
from tests.fakes.seed_server import SeedServer
from tests.fakes.workers_ai import FakeWorkersAI
from tests.reliability.figures import FIGURES
from tests.reliability.harness import (
    ACCOUNT,
    REMOTE_TOKEN,
    TOKEN,
    Run,
    Workspace,
    check_output_for_secrets,
    cli_unclear_reasons,
    edgechat_command,
    read_history,
    run_edgechat,
    snapshot,
    terminal_hazards,
)

MESSAGE_CLASS = "input: long, empty, control, RTL and combining messages"
USER_CLASS = "input: hostile user ids"
COMMAND = "pytest tests/reliability/test_input.py"
MESSAGE_COMMAND = f"{COMMAND} -k 'not user'"
USER_COMMAND = f"{COMMAND} -k user"
MB = 1024 * 1024


# --- running main() here --------------------------------------------------------------------------


class _Stdin(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


def run_main(monkeypatch, capsysbinary, env: dict[str, str], args: list[str],
             stdin: bytes = b"") -> tuple[int, bytes, bytes]:
    """``edgechat ARGS`` through ``cli.main`` in this process, with ``env`` and ``stdin``."""
    for key in [k for k in list(__import__("os").environ) if k.startswith(("EDGECHAT_", "CLOUDFLARE_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith(("EDGECHAT_", "CLOUDFLARE_")):
            monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "stdin", _Stdin(io.BytesIO(stdin), encoding="utf-8"))
    code = cli.main(args)
    out, err = capsysbinary.readouterr()
    check_output_for_secrets(f"main {args[:3]}", out, err)
    return code, out, err


def _error_line_count(err: bytes) -> int:
    return sum(line.startswith(b"edgechat: error:") for line in err.splitlines())


# --- long, empty, control, RTL ----------------------------------------------------------------------


def test_a_megabyte_message_that_cannot_fit_is_refused_before_sending(workspace: Workspace,
                                                                       workers_ai) -> None:
    text = ("pasted log line " * 64 + "\n") * (MB // 1040)
    run = run_edgechat(["-m", "-"], workspace.local_env(workers_ai.api_base), input=text)
    unclear = cli_unclear_reasons(run, exit_code=1, words=("too long",))
    sent = len(workers_ai.run_requests)
    lost = int((workspace.data_dir / "default.jsonl").exists())
    FIGURES.add(MESSAGE_CLASS, command=MESSAGE_COMMAND, tried=1, lost=lost,
                unclear=len(unclear) + int(sent > 0))
    assert not unclear, run
    assert sent == 0, "a message too long for the window was sent anyway"
    assert not lost


def test_a_megabyte_message_is_sent_and_kept_when_the_window_allows(workspace: Workspace) -> None:
    text = "".join(f"line {i:06d} " + "ü" * 40 + "\n" for i in range(MB // 52))
    with FakeWorkersAI(token=TOKEN, account_id=ACCOUNT, context_window=4_000_000) as fake:
        env = workspace.local_env(fake.api_base, EDGECHAT_CONTEXT_WINDOW="4000000")
        run = run_edgechat(["-m", "-", "--json"], env, input=text)
        sent = fake.run_requests[-1].body["messages"][-1]["content"] if fake.run_requests else None
    messages, warnings = read_history(workspace.data_dir, "default")
    ok = run.returncode == 0 and sent == text and messages and messages[0].content == text and not warnings
    FIGURES.add(MESSAGE_CLASS, command=MESSAGE_COMMAND, tried=1, lost=int(not ok))
    assert ok, run


@pytest.mark.parametrize("backend", ["seed", "agent"])
def test_a_megabyte_message_to_a_remote_agent(workspace: Workspace, backend: str) -> None:
    # Words of a thousand characters: the fakes echo the message back, one word per streamed piece.
    text = ("x" * 999 + " ") * (MB // 1000)
    server_class = SeedServer if backend == "seed" else AgentServer
    options = {"token": REMOTE_TOKEN} if backend == "agent" else {}
    with server_class(**options) as server:
        run = run_edgechat(["-m", "-", "--json"], workspace.remote_env(server.url), input=text)
        stored = server.messages("default")
    ok = run.returncode == 0 and stored and stored[0]["content"] == text and server.count() == 1
    FIGURES.add(MESSAGE_CLASS, command=MESSAGE_COMMAND, tried=1, lost=int(not ok))
    assert ok, run


BLANK = ["", " ", "   \t  ", "\n\n", "\r\n", "\t \r\n \u00a0", "\u3000\u2003\u2029"]


@pytest.mark.parametrize("text", BLANK, ids=lambda t: t.encode("unicode_escape").decode() or "empty")
def test_empty_and_blank_messages_are_refused(workspace: Workspace, workers_ai, monkeypatch, capsysbinary,
                                              text: str) -> None:
    env = workspace.local_env(workers_ai.api_base)
    results = [run_main(monkeypatch, capsysbinary, env, ["-m", text]) if text else None,
               run_main(monkeypatch, capsysbinary, env, ["-m", "-"], stdin=text.encode())]
    problems = [f"exit {code}, {_error_line_count(err)} error lines: {err!r}"
                for code, _out, err in filter(None, results)
                if code != 2 or _error_line_count(err) != 1 or b"empty" not in err]
    if workers_ai.run_requests:
        problems.append("an empty message was sent")
    if workspace.data_dir.exists() and list(workspace.data_dir.iterdir()):
        problems.append("an empty message touched the data dir")
    FIGURES.add(MESSAGE_CLASS, command=MESSAGE_COMMAND, tried=len(list(filter(None, results))),
                unclear=len(problems))
    assert not problems, problems


CONTROLS = ([chr(c) for c in range(0x20) if c not in (0x09, 0x0A)] + ["\x7f"]
            + [chr(c) for c in range(0x80, 0xA0)])


@pytest.mark.parametrize("char", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_every_control_character_is_kept_but_never_shown(workspace: Workspace, workers_ai, monkeypatch,
                                                         capsysbinary, char: str) -> None:
    text = f"before{char}after {char}[2J{char}]0;title{char}\\ end"
    env = workspace.local_env(workers_ai.api_base)
    code, out, err = run_main(monkeypatch, capsysbinary, env, ["-m", "-"], stdin=text.encode())
    shown_code, shown, _ = run_main(monkeypatch, capsysbinary, env, ["history"])
    messages, _ = read_history(workspace.data_dir, "default")
    problems = []
    if code != 0:
        problems.append(f"exit {code}: {err!r}")
    if not messages or messages[0].content != text:
        problems.append("the message was not stored exactly as typed")
    for name, data in (("reply", out), ("stderr", err), ("history", shown)):
        hazards = terminal_hazards(data)
        if hazards:
            problems.append(f"{name} could drive the terminal: {hazards[:2]}")
    # What follows an ESC or a C1 control may be part of its sequence and go with it; the rest stays.
    if b"before" not in out or b" end" not in out or shown_code != 0:
        problems.append("the visible text was not shown")
    FIGURES.add(MESSAGE_CLASS, command=MESSAGE_COMMAND, tried=1,
                lost=sum("stored" in p for p in problems), unclear=sum("stored" not in p for p in problems))
    assert not problems, problems


WORLD_TEXT = {
    "arabic": "مرحبا بالعالم، كيف حالك؟",
    "hebrew-with-numbers": "שלום 123 עולם",
    "mixed-direction": "English then עברית then English, and العربية ١٢٣",
    "bidi-override": "abc\u202edcba\u202c xyz \u2067isolate\u2069",
    "combining-nfd": "e\u0301 a\u0308 n\u0303 (decomposed)",
    "combining-nfc": "\u00e9 \u00e4 \u00f1 (composed)",
    "zalgo": "Z" + "\u0336\u0337\u0338\u0321\u0322" * 20 + "algo",
    "emoji-zwj": "👩‍👩‍👧‍👦 🏳️‍🌈 👍🏽",
    "cjk": "你好，世界。こんにちは。안녕하세요",
    "devanagari": "नमस्ते दुनिया",
    "astral": "𝕳𝖊𝖑𝖑𝖔 𝟘𝟙𝟚 \U0001f600",
}


@pytest.mark.parametrize("name", sorted(WORLD_TEXT))
def test_right_to_left_and_combining_text_round_trips(workspace: Workspace, workers_ai, monkeypatch,
                                                     capsysbinary, name: str) -> None:
    text = WORLD_TEXT[name]
    env = workspace.local_env(workers_ai.api_base)
    code, out, _ = run_main(monkeypatch, capsysbinary, env, ["-m", text])
    _, shown, _ = run_main(monkeypatch, capsysbinary, env, ["history", "--format", "json"])
    messages = json.loads(shown)["messages"]
    problems = []
    if code != 0 or out != f"You said: {text}\n".encode():
        problems.append(f"the reply was not shown exactly: {out!r}")
    if not messages or messages[0]["content"] != text:
        problems.append("the message was not stored exactly (normalised or altered)")
    if workers_ai.run_requests[-1].body["messages"][-1]["content"] != text:
        problems.append("the message was not sent exactly")
    if unicodedata.normalize("NFC", text) != text and messages and messages[0]["content"] != text:
        problems.append("decomposed text was normalised")
    FIGURES.add(MESSAGE_CLASS, command=MESSAGE_COMMAND, tried=1,
                lost=sum("stored" in p for p in problems), unclear=sum("stored" not in p for p in problems))
    assert not problems, problems


def test_all_of_it_in_real_processes(workspace: Workspace, workers_ai) -> None:
    text = "".join(CONTROLS) + " | " + " | ".join(WORLD_TEXT.values()) + " \x00 end"
    env = workspace.local_env(workers_ai.api_base)
    sent = run_edgechat(["-m", "-"], env, input=text)
    shown = run_edgechat(["history"], env)
    as_json = run_edgechat(["history", "--format", "json"], env)
    problems = [f"{what}: {terminal_hazards(run.stdout + run.stderr)[:2]}" for what, run in
                (("reply", sent), ("history", shown)) if terminal_hazards(run.stdout + run.stderr)]
    if sent.returncode != 0 or json.loads(as_json.out)["messages"][0]["content"] != text:
        problems.append(f"not stored exactly: {sent}")
    FIGURES.add(MESSAGE_CLASS, command=MESSAGE_COMMAND, tried=1, unclear=len(problems))
    assert not problems, problems


# --- hostile user ids --------------------------------------------------------------------------------

EVIL_TARGET = "/tmp/edgechat-reliability-evil"
HOSTILE_USERS = [
    "", " ", ".", "..", "../x", "../../../../etc/passwd", "..\\..\\x", "a/b", "a\\b", "/abs", EVIL_TARGET,
    f"{EVIL_TARGET}/../x", "~", "~root", "$HOME", "%2e%2e%2fx", ".hidden", ".", "a..b", "x/.", "a:b", "C:x",
    "a*b", "a?b", "a|b", "a<b>", 'a"b', "con", "CON", "nul", "Nul.txt", "aux", "prn.jsonl", "com1", "COM9",
    "lpt1", "LPT9.x", "ａｌｉｃｅ", "аlice", "alice\u200b", "ali\u0301ce", "\u212aelvin", "\u0130stanbul",
    "dotless\u0131", "alice\n", "alice\r", "\talice", "a b", "alice\x1b[2J", "\u202ealice", "alice\x7f",
    "alice\u0085", "😀", "a" * 65, "a" * 4096, "a" * 100_000,
]


def _user_ids() -> list:
    return [pytest.param(user, id=(user[:24].encode("unicode_escape").decode() or "empty") + f"-{i}")
            for i, user in enumerate(dict.fromkeys(HOSTILE_USERS))]


def _nothing_touched(workspace: Workspace, before: dict[str, bytes]) -> list[str]:
    problems = []
    if snapshot(workspace.root) != before:
        problems.append("files changed in the workspace")
    if workspace.data_dir.exists():
        problems.append("the data dir was created")
    outside = (EVIL_TARGET + ".jsonl", EVIL_TARGET + ".lock", "/x.jsonl", "/abs.jsonl", "/abs.lock")
    for path in map(Path, outside):
        if path.exists():
            problems.append(f"{path} was created")
    return problems


@pytest.mark.parametrize("user", _user_ids())
def test_hostile_user_id_is_refused_before_any_file_is_touched(workspace: Workspace, workers_ai,
                                                              monkeypatch, capsysbinary, user: str) -> None:
    env = workspace.local_env(workers_ai.api_base)
    before = snapshot(workspace.root)
    problems = []
    commands = (["--user", user, "-m", "hi"], ["history", "--user", user], ["reset", "--user", user],
                ["--user", user, "-m", "-"])
    for args in commands:
        code, _out, err = run_main(monkeypatch, capsysbinary, env, args, stdin=b"hi")
        if code != 2 or _error_line_count(err) != 1 or b"user id" not in err.lower():
            problems.append(f"{args[:2]}: exit {code}: {err[:200]!r}")
        if terminal_hazards(err) or len(err) > 600:
            problems.append(f"{args[:2]}: the error echoes the id unsafely or at length: {err[:200]!r}")
    problems += _nothing_touched(workspace, before)
    if workers_ai.run_requests:
        problems.append("a message was sent for an invalid user")
    FIGURES.add(USER_CLASS, command=USER_COMMAND, tried=len(commands),
                lost=sum("created" in p or "changed" in p for p in problems),
                unclear=sum(not ("created" in p or "changed" in p) for p in problems))
    assert not problems, problems


@pytest.mark.parametrize("user", ["../x", "con", "аlice", EVIL_TARGET, "a" * 65, "alice\x1b]0;t\x07"])
def test_hostile_user_id_in_a_real_process(workspace: Workspace, workers_ai, user: str) -> None:
    env = workspace.local_env(workers_ai.api_base)
    before = snapshot(workspace.root)
    runs = [run_edgechat(["--user", user, "-m", "hi"], env), run_edgechat(["history", "--user", user], env)]
    problems = [r for run in runs for r in cli_unclear_reasons(run, exit_code=2, words=("user id",))]
    problems += _nothing_touched(workspace, before)
    FIGURES.add(USER_CLASS, command=USER_COMMAND, tried=len(runs),
                lost=sum("created" in p or "changed" in p for p in problems),
                unclear=sum(not ("created" in p or "changed" in p) for p in problems))
    assert not problems, problems


@pytest.mark.parametrize("how", ["config-file-nul", "config-file-traversal", "environment"])
def test_hostile_default_user(workspace: Workspace, workers_ai, how: str) -> None:
    workspace.config_path.parent.mkdir(parents=True)
    extra = {}
    if how == "config-file-nul":
        workspace.config_path.write_text('default_user = "a\\u0000b"\n')
    elif how == "config-file-traversal":
        workspace.config_path.write_text('default_user = "../../x"\n')
    else:
        extra["EDGECHAT_DEFAULT_USER"] = "../../x"
    env = workspace.local_env(workers_ai.api_base, **extra)
    before = snapshot(workspace.root)
    run = run_edgechat(["-m", "hi"], env)
    problems = cli_unclear_reasons(run, exit_code=2, words=("default_user",))
    problems += _nothing_touched(workspace, before)
    FIGURES.add(USER_CLASS, command=USER_COMMAND, tried=1,
                lost=sum("created" in p or "changed" in p for p in problems), unclear=len(problems))
    assert not problems, (problems, run)


def test_user_listing_ignores_files_that_are_not_valid_users(workspace: Workspace, workers_ai) -> None:
    env = workspace.local_env(workers_ai.api_base)
    assert run_edgechat(["--user", "alice", "-m", "hi"], env).returncode == 0
    for name in ("..jsonl", ".hidden.jsonl", "con.jsonl", "a b.jsonl", "evil\x1b]0;x\x07.jsonl", "ａ.jsonl"):
        (workspace.data_dir / name).write_bytes(b"not ours\n")
    listing = run_edgechat(["users"], env)
    problems = []
    if listing.returncode != 0 or "alice" not in listing.out:
        problems.append(str(listing))
    if terminal_hazards(listing.stdout + listing.stderr):
        problems.append("the listing could drive the terminal")
    shown = [line.split()[0] for line in listing.out.splitlines() if line.strip()]
    if shown != ["alice"]:
        problems.append(f"listed {shown}")
    FIGURES.add(USER_CLASS, command=USER_COMMAND, tried=1, unclear=len(problems))
    assert not problems, problems




@pytest.mark.parametrize("backend", ["local", "remote"])
def test_a_message_argument_that_is_not_utf8_is_refused_clearly(workspace: Workspace, workers_ai,
                                                                backend: str) -> None:
    with SeedServer() as seed:
        local = backend == "local"
        env = workspace.local_env(workers_ai.api_base) if local else workspace.remote_env(seed.url)
        command = [arg.encode() for arg in edgechat_command(["-m"])] + [b"caf\xe9 \xff"]
        proc = subprocess.run(command, env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
        sends = len(workers_ai.run_requests) + seed.count()
    check_output_for_secrets("non-UTF-8 argument", proc.stdout, proc.stderr)
    run = Run(["-m", "<not UTF-8>"], proc.returncode, proc.stdout, proc.stderr)
    unclear = cli_unclear_reasons(run, exit_code=2, words=("UTF-8",))
    if sends:
        unclear.append(f"{sends} requests sent")
    FIGURES.add(MESSAGE_CLASS, command=MESSAGE_COMMAND, tried=1, known_defects=int(bool(unclear)),
                note="; ".join(unclear) or None)
    assert not unclear, run
