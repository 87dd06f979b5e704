"""The TUI in a real pseudo-terminal: killed with SIGKILL in the middle of turns, chatting as one user
beside one-shot loops, a failed save whose typed text comes back, and escape sequences from a model
or a server checked in the very bytes the terminal receives.

The TUI reports a turn complete when its status line says "ready" again after the reply (the reply
is saved before that); that is the moment these tests count a turn as reported.
"""

from __future__ import annotations

import random
import re
import threading

import pytest

from tests.fakes.workers_ai import ErrorReply, FakeWorkersAI, Reply
from tests.reliability.conftest import scale
from tests.reliability.figures import FIGURES
from tests.reliability.harness import (
    Unavailable,
    Workspace,
    audit_turns,
    check_output_for_secrets,
    echo_reply_ok,
    edgechat_command,
    read_history,
    read_only,
    secrets_in,
)
from tests.reliability.pty_driver import PtyProcess
from tests.reliability.scenarios import ConcurrencyReport, one_shot_loop, slow_echo, stale_contexts
from tests.reliability.test_security import HOSTILE_REPLY

CRASH_CLASS = "crash: TUI killed (SIGKILL) mid-turn in a pty"
CONCURRENCY_CLASS = "concurrency: a TUI and one-shot loops, one user"
ESCAPE_CLASS = "security: escape sequences in the TUI's pty bytes"
DISK_CLASS = "disk: the TUI's typed text survives a failed save"
COMMAND = "pytest tests/reliability/test_tui.py"
PROMPT = b"Message edgechat"
BUSY = re.compile(rb"waiting for the reply|streaming")
STARTUP_TIMEOUT = 90.0
TURN_TIMEOUT = 60.0


def start_tui(space: Workspace, fake: FakeWorkersAI, user: str) -> PtyProcess:
    tui = PtyProcess(edgechat_command(["--user", user]), space.local_env(fake.api_base), cwd=space.root)
    try:
        tui.wait_for(PROMPT, timeout=STARTUP_TIMEOUT)
    except BaseException:
        tui.close(quit_keys=None)
        raise
    return tui


def send(tui: PtyProcess, text: str) -> int:
    """Type ``text`` and Enter; returns the output offset before it, to look for what follows."""
    start = tui.offset
    tui.send(text + "\r")
    return start


def wait_reported(tui: PtyProcess, start: int, timeout: float = TURN_TIMEOUT) -> int:
    """Wait until the status line went busy and then back to ready: the turn is saved and reported.

    The replies are streamed slowly (slow_echo) so that the busy state is on screen for a while: a
    turn faster than a frame could go from ready to ready without ever drawing it.
    """
    busy = tui.wait_for(BUSY, after=start, timeout=timeout)
    return tui.wait_for(b"ready", after=busy, timeout=timeout)


def wait_request(fake: FakeWorkersAI, seen: int, timeout: float = TURN_TIMEOUT):
    fake.wait_for_requests(seen + 1, timeout)
    return fake.requests[seen]


def finish(tui: PtyProcess, where: str) -> bytes:
    tui.close(quit_keys=None)
    output = tui.output
    check_output_for_secrets(where, output)
    return output


# --- crash -----------------------------------------------------------------------------------------

TUI_PHASES = {"typed": 1, "request": 2, "stream": 2, "save": 3, "reported": 1}


def test_tui_killed_mid_turn_loses_no_reported_turn(workspace: Workspace, workers_ai) -> None:
    rng = random.Random()
    workers_ai.default_reply = slow_echo(chunk_size=3, delay=0.01)
    reported: list[str] = []
    problems: list[str] = []
    tried = killed = 0
    user = "tuicrash"
    for round_ in range(3 * scale()):
        tui = start_tui(workspace, workers_ai, user)
        try:
            for j in range(rng.choice([1, 2, 3])):
                turn = f"r{round_}-{j}-{rng.randrange(16**5):05x}"
                tried += 1
                seen = len(workers_ai.requests)
                start = send(tui, turn)
                wait_reported(tui, start)
                reported.append(turn)
            # The last turn of this process: killed at a random moment.
            turn = f"r{round_}-last-{rng.randrange(16**5):05x}"
            phase = rng.choices(list(TUI_PHASES), list(TUI_PHASES.values()))[0]
            tried += 1
            seen = len(workers_ai.requests)
            start = send(tui, turn)
            if phase != "typed":
                request = wait_request(workers_ai, seen)
                if phase == "stream":
                    tui.wait_for(b"streaming", after=start)
                elif phase == "save":
                    request.finished.wait(TURN_TIMEOUT)
                    threading.Event().wait(rng.uniform(0.0, 0.05))
                elif phase == "reported":
                    wait_reported(tui, start)
                    reported.append(turn)
            tui.kill()
            killed += 1
        finally:
            output = finish(tui, "tui crash round")
        if b"could not be loaded" in output:
            problems.append(f"round {round_}: the TUI could not load the history")
        try:
            messages, warnings = read_history(workspace.data_dir, user)
        except Exception as exc:
            problems.append(f"after round {round_} ({phase}): {type(exc).__name__}: {exc}")
            continue
        if any("damaged" in w for w in warnings):
            problems.append(f"after round {round_} ({phase}): damaged: {warnings}")
        audit = audit_turns(messages, reported, echo_reply_ok)
        if not audit.ok:
            problems.append(f"after round {round_} ({phase}): {audit}")
    lost = sum("lost [" in p and "lost []" not in p for p in problems)
    FIGURES.add(CRASH_CLASS, command=f"{COMMAND} -k killed", tried=tried, lost=lost,
                unclear=len(problems) - lost, note=problems[0] if problems else None)
    assert not problems, problems
    assert killed == 3 * scale()


# --- concurrency -------------------------------------------------------------------------------------


def test_a_tui_and_one_shot_loops_chatting_as_one_user(workspace: Workspace, workers_ai) -> None:
    workers_ai.default_reply = slow_echo(chunk_size=4, delay=0.01)
    user, loops, turns = "shared", 2, 3 * scale()
    report = ConcurrencyReport(processes=loops + 1, turns=turns)
    env = workspace.local_env(workers_ai.api_base)
    tui = start_tui(workspace, workers_ai, user)
    lock = threading.Lock()
    threads = [threading.Thread(target=one_shot_loop, args=(env, user, f"p{p}", turns, report, lock))
               for p in range(loops)]
    tui_reported: list[str] = []
    try:
        for thread in threads:
            thread.start()
        for k in range(turns):
            turn = f"tui-t{k}"
            start = send(tui, turn)
            wait_reported(tui, start)
            tui_reported.append(turn)
        for thread in threads:
            thread.join()
        code = tui.close()
    finally:
        finish(tui, "tui concurrency")
    messages, _ = read_history(workspace.data_dir, user)
    audit = audit_turns(messages, report.reported + tui_reported, echo_reply_ok)
    stale = stale_contexts(workers_ai, messages, "")
    FIGURES.add(CONCURRENCY_CLASS, command=f"{COMMAND} -k one_user", tried=loops * turns + turns,
                lost=len(audit.lost), duplicated=len(audit.duplicated),
                unclear=len(report.failures) + len(audit.split) + len(stale))
    assert not report.failures, report.failures
    assert audit.ok, str(audit)
    assert not stale, stale
    assert code == 0, f"the TUI did not quit cleanly with Ctrl+Q (exit {code})"


# --- a failed save ---------------------------------------------------------------------------------


def test_the_typed_text_survives_a_failed_save(workspace: Workspace, workers_ai) -> None:
    """The data dir turns read-only: the turn fails, says nothing was saved, and its text is back in the
    input; once the folder is writable, Enter sends it and it is saved once."""
    user = "keeper"
    workers_ai.default_reply = slow_echo(chunk_size=3, delay=0.01)
    tui = start_tui(workspace, workers_ai, user)
    problems: list[str] = []
    try:
        wait_reported(tui, send(tui, "first"))
        try:
            with read_only(workspace.data_dir):
                start = send(tui, "keep-me-please")
                tui.wait_for(b"nothing was saved", after=start)
                tui.wait_for(b"back in the input", after=start)
        except Unavailable as exc:
            pytest.skip(str(exc))
        resent = tui.offset
        tui.send("\r")  # the text is back in the input: Enter sends it again
        wait_reported(tui, resent)
    finally:
        finish(tui, "tui failed save")
    messages, _ = read_history(workspace.data_dir, user)
    audit = audit_turns(messages, ["first", "keep-me-please"], echo_reply_ok)
    if not audit.ok:
        problems.append(str(audit))
    FIGURES.add(DISK_CLASS, command=f"{COMMAND} -k failed_save", tried=1, lost=len(audit.lost),
                duplicated=len(audit.duplicated), unclear=len(audit.split))
    assert not problems, problems


# --- escape sequences in the pty -----------------------------------------------------------------

#: What must never reach the terminal from untrusted text: sequence heads with their payloads (an OSC 8
#: link's target follows a ';', unlike the literal "[link=http://evil.example]" markup, which must show).
#: Each is used only when the TUI's own output in a normal turn does not contain it (the baseline).
NEEDLES = [b"PWNED", b"C1-TITLE", b"UFdORUQ", b";http://evil.example", b"\x1b]52;", b"\x1b]8;;http",
           b"\x1b[6n", b"\x1b[21t", b"\x1bP+q", b"\x1bc", b"\xc2\x9b", b"\xc2\x9d", b"\xc2\x90",
           b"\x08space", b"car\r", b"\x07 back"]
MARKUP_REPLY = "Literal: [bold red]markup[/] and [@click=app.quit]click[/] done."


def test_escape_sequences_never_reach_the_tuis_terminal(workspace: Workspace, workers_ai) -> None:
    workers_ai.default_reply = slow_echo(chunk_size=3, delay=0.01)
    tui = start_tui(workspace, workers_ai, "escapes")
    problems: list[str] = []
    try:
        start = send(tui, "hello")
        baseline_end = wait_reported(tui, start)
        baseline = tui.output[start:baseline_end]
        needles = [n for n in NEEDLES if n not in baseline]
        workers_ai.enqueue(Reply(HOSTILE_REPLY, chunk_size=3, delay=0.005),
                           ErrorReply(400, 5006, HOSTILE_REPLY),
                           Reply(MARKUP_REPLY, chunk_size=4, delay=0.01))
        hostile = send(tui, "show me")
        wait_reported(tui, hostile)
        failing = send(tui, "now fail")
        tui.wait_for(b"failed", after=failing)
        tui.send("\x15")  # Ctrl+U: empty the input the failed turn put its text back into
        markup = send(tui, "markup please")
        markup_end = wait_reported(tui, markup)
        alive = tui.proc.poll() is None
    finally:
        output = finish(tui, "tui escapes")
    segment = output[hostile:]
    found = [n for n in needles if n in segment]
    if found:
        problems.append(f"reached the terminal: {found}")
    if len(needles) < len(NEEDLES) - 4:
        dropped = sorted(set(NEEDLES) - set(needles))
        problems.append(f"the baseline holds too many needles to judge: {dropped}")
    shown = output[markup:markup_end]
    for literal in (b"[bold red]markup[/]", b"[@click=app.quit]click[/]"):
        if literal not in shown:
            problems.append(f"markup was interpreted instead of shown: {literal!r} not on screen")
    if not alive:
        problems.append("the TUI exited: a markup action ran")
    if secrets_in(output):
        problems.append("a token reached the terminal")
    FIGURES.add(ESCAPE_CLASS, command=f"{COMMAND} -k escape", tried=3, unclear=len(problems),
                note="; ".join(problems) or None)
    assert not problems, problems
