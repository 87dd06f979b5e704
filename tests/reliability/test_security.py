"""Security: escape sequences and markup in model and server text never reach the terminal; tokens
never appear in output, errors, crash reports or files; config and history files stay private.

Every ``edgechat`` run of the whole suite is searched for the tokens as it ends (harness.run_edgechat),
and every workspace's files when its test ends (conftest.workspace); this module adds the cases that
need a setting of their own. The TUI's share (the bytes it writes to a real pseudo-terminal) is in
test_tui.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest
import rich
from rich.console import Console
from rich.traceback import Traceback

from edgechat_tui.backends.local import workers_ai as workers_ai_module
from edgechat_tui.backends.local.agent import LocalAgent
from edgechat_tui.backends.local.workers_ai import WorkersAIClient
from edgechat_tui.backends.remote import replies as remote_replies_module
from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.config.settings import load_settings
from edgechat_tui.core.secret import Secret
from tests.fakes.agent_server import AgentServer
from tests.fakes.workers_ai import FakeWorkersAI, Reply
from tests.histories import conversations, library_dir
from tests.reliability.figures import FIGURES
from tests.reliability.harness import (
    ACCOUNT,
    REMOTE_TOKEN,
    TOKEN,
    Workspace,
    cli_unclear_reasons,
    run_edgechat,
    secrets_in,
    terminal_hazards,
)

ESCAPE_CLASS = "security: escape sequences and markup in replies and errors"
TOKEN_CLASS = "security: tokens in reprs, crash reports, file modes"
COMMAND = "pytest tests/reliability/test_security.py"

#: Every kind of terminal control a reply could carry: OSC (title, clipboard, hyperlink), CSI (clear,
#: colours, cursor reports), DCS, C1 controls in UTF-8, single-character escapes, BEL, backspace,
#: carriage return, and markup that Rich or Textual would act on if it were parsed.
HOSTILE_REPLY = (
    "start \x1b]0;PWNED-TITLE\x07 \x1b]52;c;UFdORUQ=\x07 "
    "\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\ "
    "\x1b[2J\x1b[H\x1b[31mred\x1b[0m \x1b[6n \x1b[21t \x1bP+q544e\x1b\\ \x1bc \x9b6n \x9d0;C1-TITLE\x9c "
    "\x90dcs\x9c bell\x07 back\x08space car\rriage \x1b[?1049l "
    "[bold red]markup[/] [@click=app.quit]click[/] [link=http://evil.example]x[/link] end"
)
VISIBLE = ["start", "red", "[bold red]markup[/]", "[@click=app.quit]click[/]", "end"]


def escape_case(*, unclear: list[str] | None = None, known: bool = False, note: str | None = None) -> None:
    FIGURES.add(ESCAPE_CLASS, command=COMMAND, tried=1, unclear=0 if known else len(unclear or []),
                known_defects=int(known and bool(unclear)), note=note or ("; ".join(unclear or []) or None))


# --- escape sequences ------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, None], ids=lambda c: f"chunks-of-{c or 'words'}")
def test_escape_sequences_in_replies_never_reach_stdout(workspace: Workspace, workers_ai, chunk) -> None:
    workers_ai.enqueue(Reply(HOSTILE_REPLY, chunk_size=chunk))
    env = workspace.local_env(workers_ai.api_base)
    sent = run_edgechat(["-m", "show me"], env)
    shown = run_edgechat(["history"], env)
    problems = []
    for name, run in (("reply", sent), ("history", shown)):
        hazards = terminal_hazards(run.stdout + run.stderr)
        if hazards or run.returncode != 0:
            problems.append(f"{name}: exit {run.returncode}, {hazards[:3]}")
    missing = [word for word in VISIBLE if word not in sent.out]
    if missing:
        problems.append(f"visible text lost: {missing}")
    if "PWNED" in sent.out + shown.out or "C1-TITLE" in sent.out:
        problems.append("the payload of an escape sequence was shown")
    escape_case(unclear=problems)
    assert not problems, (problems, sent.stdout)




@pytest.mark.parametrize("command", ["one-shot", "history"])
def test_json_output_carries_no_terminal_controls(workspace: Workspace, workers_ai, command: str) -> None:
    workers_ai.enqueue(Reply(HOSTILE_REPLY))
    env = workspace.local_env(workers_ai.api_base)
    sent = run_edgechat(["-m", "show me", "--json"], env)
    run = sent if command == "one-shot" else run_edgechat(["history", "--format", "json"], env)
    assert run.returncode == 0, run
    hazards = terminal_hazards(run.stdout)
    escape_case(unclear=[f"--json {command}: {hazards[:2]}"] if hazards else [], known=True)
    assert not hazards, hazards
    json.loads(run.stdout)  # and it stays JSON


def test_settings_and_warnings_are_shown_safely(workspace: Workspace, workers_ai) -> None:
    workspace.config_path.parent.mkdir(parents=True)
    workspace.config_path.write_text('"\\u001b]0;PWNED\\u0007key" = 1\n'
                                     'system_prompt = "be \\u001b[2J nice"\n')
    env = workspace.local_env(workers_ai.api_base, EDGECHAT_SYSTEM_PROMPT="env \x1b]0;PWNED\x07 prompt")
    runs = [run_edgechat(["config", "show"], env), run_edgechat(["-m", "hi"], env),
            run_edgechat(["--model", "@cf/x/\x1b]0;PWNED\x07", "-m", "hi"], env)]
    problems = [f"{run.args[:2]}: {terminal_hazards(run.stdout + run.stderr)[:2]}" for run in runs
                if terminal_hazards(run.stdout + run.stderr)]
    problems += [f"{run.args[:2]}: the payload was shown" for run in runs if "PWNED" in run.out + run.err]
    problems += cli_unclear_reasons(runs[2], exit_code=(1, 2), words=("model",))
    escape_case(unclear=problems)
    assert not problems, [str(r) for r in runs]


def test_a_remote_agents_stored_text_is_shown_safely(workspace: Workspace) -> None:
    with AgentServer(token=REMOTE_TOKEN) as server:
        server.store_turn("alice", "question \x1b]0;PWNED\x07", HOSTILE_REPLY)
        env = workspace.remote_env(server.url)
        shown = run_edgechat(["history", "--user", "alice"], env)
    problems = [] if shown.returncode == 0 else [f"exit {shown.returncode}"]
    hazards = terminal_hazards(shown.stdout + shown.stderr)
    if hazards:
        problems.append(f"history: {hazards[:3]}")
    if "PWNED" in shown.out:
        problems.append("the payload of an escape sequence was shown")
    escape_case(unclear=problems)
    assert not problems, shown


# --- tokens ----------------------------------------------------------------------------------------


def token_case(problems: list[str], *, known: bool = False) -> None:
    FIGURES.add(TOKEN_CLASS, command=COMMAND, tried=1, lost=0 if known else len(problems),
                known_defects=int(known and bool(problems)), note="; ".join(problems) or None)


async def test_reprs_and_attributes_never_show_a_token(tmp_path: Path) -> None:
    settings = load_settings(config_path=tmp_path / "c.toml",
                             env={"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
                                  "EDGECHAT_REMOTE_TOKEN": REMOTE_TOKEN, "EDGECHAT_DATA_DIR": str(tmp_path)})
    client = WorkersAIClient(account_id=ACCOUNT, api_token=TOKEN, api_base="http://127.0.0.1:9/client/v4")
    agent = LocalAgent(settings, "alice", client=client)
    remote = RemoteAgent("http://127.0.0.1:9", "alice", token=REMOTE_TOKEN)
    try:
        shown = [repr(settings), str(settings), repr(settings.values), repr(Secret(TOKEN)), repr(client),
                 repr(agent), repr(remote), repr(vars(client)), repr(vars(remote)),
                 repr(client._http.headers)]
        problems = [f"{text[:60]}..." for text in shown if secrets_in(text)]
    finally:
        await client.aclose()
        await remote.aclose()
    token_case(problems)
    assert not problems, problems


def _render_crash(exc: BaseException) -> str:
    """The exception as Textual renders a crash: a Rich traceback with the locals of every frame."""
    out = io.StringIO()
    Console(file=out, width=200).print(Traceback.from_exception(
        type(exc), exc, exc.__traceback__, show_locals=True, locals_max_length=5, suppress=[rich]))
    return out.getvalue()


@contextmanager
def _broken(module, name: str):
    """Make ``module.name`` raise, as a bug would, to see what a crash report shows."""
    original = getattr(module, name)

    def fail(*_args, **_kwargs):
        raise RuntimeError("a bug while reading the reply")

    setattr(module, name, fail)
    try:
        yield
    finally:
        setattr(module, name, original)


@pytest.mark.parametrize("backend", ["workers-ai", "agent"])
async def test_a_crash_report_with_locals_never_shows_a_token(tmp_path: Path, backend: str) -> None:
    """Textual prints a traceback with every frame's locals when the app crashes: a bug in the middle of
    a reply must not print the token with it."""
    crash: BaseException | None = None
    if backend == "workers-ai":
        with FakeWorkersAI(token=TOKEN, account_id=ACCOUNT) as fake, \
                _broken(workers_ai_module, "parse_event"):
            settings = load_settings(config_path=tmp_path / "c.toml", env={
                "CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
                "EDGECHAT_API_BASE": fake.api_base, "EDGECHAT_DATA_DIR": str(tmp_path)})
            agent = LocalAgent(settings, "alice")
            try:
                async for _event in agent.send("hello"):
                    pass
            except RuntimeError as exc:
                crash = exc
            finally:
                await agent.aclose()
    else:
        with AgentServer(token=REMOTE_TOKEN) as server, _broken(remote_replies_module, "event_data"):
            agent = RemoteAgent(server.url, "alice", token=REMOTE_TOKEN)
            try:
                async for _event in agent.send("hello"):
                    pass
            except RuntimeError as exc:
                crash = exc
            finally:
                await agent.aclose()
    assert crash is not None, "the injected bug did not surface"
    report = _render_crash(crash)
    problems = [f"{backend}: the crash report shows {name}" for name in secrets_in(report)]
    token_case(problems)
    assert not problems, problems
    await asyncio.sleep(0)


def test_config_commands_never_echo_a_token(workspace: Workspace) -> None:
    env = workspace.env()
    runs = [run_edgechat(["config", "set", "api_token", TOKEN], env),
            run_edgechat(["config", "set", "remote_token", REMOTE_TOKEN], env),
            run_edgechat(["config", "show"], env),
            run_edgechat(["config", "set", "api_token", f"{TOKEN} with spaces"], env),
            run_edgechat(["config", "set", "api_tokn", TOKEN], env)]
    # run_edgechat has searched each output already; the bad values must also be refused clearly.
    problems = cli_unclear_reasons(runs[3], exit_code=2) + cli_unclear_reasons(runs[4], exit_code=2)
    problems += [f"{run.args[:3]}: exit {run.returncode}" for run in runs[:3] if run.returncode != 0]
    token_case(problems)
    assert not problems, [str(r) for r in runs]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def _umask(value: int):
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def test_config_file_and_dir_stay_private_after_every_write(workspace: Workspace) -> None:
    """Under umask 000 (the loosest a user can have), after each write: the file 0600, its dir 0700."""
    env = workspace.env()
    config, folder = workspace.config_path, workspace.config_path.parent
    steps = [["config", "set", "api_token", TOKEN],
             ["config", "set", "model", "@cf/meta/llama-3.1-8b-instruct-fast"],
             ["config", "unset", "model"],
             ["config", "set", "remote_token", REMOTE_TOKEN],
             ["config", "set", "max_tokens", "900"]]
    backup = config.with_name("config.toml.bak")
    problems = []
    with _umask(0):
        for number, args in enumerate(steps):
            if number == 2:  # someone loosened the file, and added a comment (the next write keeps a .bak)
                config.chmod(0o644)
                config.write_text("# my settings\n" + config.read_text())
            run = run_edgechat(args, env)
            if run.returncode != 0:
                problems.append(f"{args}: {run.err}")
                continue
            for path, want in ((config, 0o600), (folder, 0o700), (backup, 0o600)):
                if path.exists() and _mode(path) != want:
                    problems.append(f"after {args[1:3]}: {path.name} is {_mode(path):o}, not {want:o}")
            leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
            if leftovers:
                problems.append(f"after {args[1:3]}: temp files left: {leftovers}")
    FIGURES.add(TOKEN_CLASS, command=COMMAND, tried=len(steps), lost=len(problems),
                note="; ".join(problems) or None)
    assert not problems, problems




def test_an_existing_edgechat_config_dir_is_made_private(workspace: Workspace) -> None:
    home = workspace.root / "xdg"
    folder = home / "edgechat"
    folder.mkdir(parents=True, mode=0o755)
    folder.chmod(0o755)
    env = workspace.env(XDG_CONFIG_HOME=str(home))
    env.pop("EDGECHAT_CONFIG")
    run = run_edgechat(["config", "set", "api_token", TOKEN], env)
    assert run.returncode == 0, run
    assert (folder / "config.toml").exists(), "the default config path is not under XDG_CONFIG_HOME"
    problems = [] if _mode(folder) == 0o700 else [f"the existing config dir stays {_mode(folder):o}"]
    token_case(problems, known=True)
    assert not problems, problems


def test_history_files_stay_private(workspace: Workspace, workers_ai) -> None:
    """Every file edgechat writes in the data dir (conversations, lock, torn tail, damaged copy, index)
    is 0600, every folder 0700, even under umask 000."""
    env = workspace.local_env(workers_ai.api_base)
    problems = []
    with _umask(0):
        assert run_edgechat(["-m", "first"], env).returncode == 0
        [history] = library_dir(workspace.data_dir).glob("*.jsonl")
        with open(history, "ab") as handle:
            handle.write(b'{"messages": [{"role": "user", "con')  # a torn tail: cut and kept by the next turn
        assert run_edgechat(["-m", "second"], env).returncode == 0
        with open(history, "ab") as handle:
            handle.write(b"garbage\nmore garbage\n")
        assert run_edgechat(["-m", "third"], env).returncode == 0  # the damaged file is moved aside
        assert run_edgechat(["reset"], env).returncode == 0
        assert run_edgechat(["-m", "fourth"], env).returncode == 0
        assert run_edgechat(["search", "fourth"], env).returncode == 0
        assert run_edgechat(["chats", "delete", history.stem], env).returncode == 0
    everything = sorted(workspace.data_dir.rglob("*"))
    names = [p.name for p in everything]
    kinds = {"torn": ".torn-", "corrupt": ".corrupt-", "lock": ".lock", "conversation": ".jsonl",
             "index": "index.sqlite3"}
    for kind, part in kinds.items():
        if not any(part in name for name in names):
            problems.append(f"no {kind} file was made ({names})")
    active, trash = conversations(workspace.data_dir), conversations(workspace.data_dir, place="trash")
    if len(active) != 1 or len(trash) != 1:
        problems.append("reset did not start a new conversation, or delete did not move one to the trash")
    problems += [f"{p} is {_mode(p):o}" for p in [workspace.data_dir, *everything]
                 if _mode(p) != (0o700 if p.is_dir() else 0o600)]
    FIGURES.add(TOKEN_CLASS, command=COMMAND, tried=len(names) + 1, lost=len(problems),
                note="; ".join(problems) or None)
    assert not problems, problems
