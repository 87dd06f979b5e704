"""The TUI in a real pseudo-terminal: killed with SIGKILL in the middle of turns, chatting as one user
beside one-shot loops, a failed save whose typed text comes back, and escape sequences from a model
or a server checked in the very bytes the terminal receives.

The TUI reports a turn complete when its status line says "ready" again after the reply (the reply
is saved before that); that is the moment these tests count a turn as reported.
"""

from __future__ import annotations

import random
import signal
import threading

import pytest

from tests.fakes.workers_ai import ErrorReply, Reply
from tests.reliability.conftest import scale
from tests.reliability.figures import FIGURES
from tests.reliability.harness import (
    Unavailable,
    Workspace,
    audit_turns,
    echo_reply_ok,
    read_history,
    read_only,
    secrets_in,
)
from tests.reliability.scenarios import ConcurrencyReport, one_shot_loop, slow_echo, stale_contexts
from tests.reliability.test_security import HOSTILE_REPLY
from tests.reliability.tui_session import finish, send, start_tui, tui_crash_rounds, wait_reported

CRASH_CLASS = "crash: TUI killed (SIGKILL) mid-turn in a pty"
CONCURRENCY_CLASS = "concurrency: a TUI and one-shot loops, one user"
ESCAPE_CLASS = "security: escape sequences in the TUI's pty bytes"
DISK_CLASS = "disk: the TUI's typed text survives a failed save"
COMMAND = "pytest tests/reliability/test_tui.py"
# --- crash -----------------------------------------------------------------------------------------


def test_tui_killed_mid_turn_loses_no_reported_turn(workspace: Workspace, workers_ai) -> None:
    report = tui_crash_rounds(workspace, workers_ai, 3 * scale(), random.Random())
    FIGURES.add(CRASH_CLASS, command=f"{COMMAND} -k killed", tried=report.turns, lost=len(report.lost),
                duplicated=len(report.duplicated), unclear=len(report.problems),
                note=report.summary() if not report.ok else None)
    assert report.ok, report.summary()
    assert report.killed == 3 * scale()


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
        code = tui.close(timeout=45)
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


# --- signals ---------------------------------------------------------------------------------------

SIGNAL_CLASS = "signals: SIGTERM / SIGHUP to the TUI mid-reply"
LONG_ANSWER = " ".join(f"word{i}" for i in range(3000))


@pytest.mark.parametrize("how", ["SIGTERM", "SIGHUP", "hangup"])
def test_a_signal_mid_reply_keeps_the_message_and_the_partial_reply(workspace: Workspace, workers_ai,
                                                                     how: str) -> None:
    """SIGTERM, SIGHUP, or the terminal going away (its master side closed, then SIGHUP, as when a
    terminal window is closed) while a reply streams: the typed message and what arrived are saved,
    the reply marked stopped, exactly as Ctrl+Q keeps them."""
    user = f"signal-{how.lower()}"
    workers_ai.enqueue(Reply(LONG_ANSWER, chunk_size=8, delay=0.02))
    tui = start_tui(workspace, workers_ai, user)
    try:
        start = send(tui, "keep this message")
        tui.wait_for(b"streaming", after=start)
        tui.wait_for(b"word40", after=start)  # some of the reply is on screen
        if how == "hangup":
            tui.hang_up()
        tui.proc.send_signal(signal.SIGTERM if how == "SIGTERM" else signal.SIGHUP)
        code = tui.proc.wait(30)
    finally:
        finish(tui, f"tui {how}")
    messages, _ = read_history(workspace.data_dir, user)
    contents = [(m.role, m.content[:20], m.stopped) for m in messages]
    ok = (len(messages) == 2 and messages[0].content == "keep this message" and messages[1].stopped
          and messages[1].content.startswith("word0 word1") and LONG_ANSWER.startswith(messages[1].content))
    FIGURES.add(SIGNAL_CLASS, command=f"{COMMAND} -k signal", tried=1, lost=0 if ok else 1,
                duplicated=0, unclear=0)
    assert ok, contents
    assert code in (128 + signal.SIGTERM, 128 + signal.SIGHUP, -signal.SIGHUP), code


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
