"""Driving the TUI in a real pty: start it, type a turn, see it reported; and the TUI crash scenario
(shared by the tests and the soak).

The TUI reports a turn complete when its status line says "ready" again after the reply (the reply
is saved before that). Replies are streamed slowly (slow_echo) so the busy state is on screen for a
while: a turn faster than a frame could go from ready to ready without ever drawing it.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field

from tests.fakes.workers_ai import FakeWorkersAI, ReceivedRequest
from tests.reliability.harness import (
    Workspace,
    check_history,
    check_output_for_secrets,
    edgechat_command,
)
from tests.reliability.pty_driver import PtyProcess
from tests.reliability.scenarios import slow_echo

PROMPT = b"Message edgechat"
BUSY = re.compile(rb"waiting for the reply|streaming")
STARTUP_TIMEOUT = 90.0
TURN_TIMEOUT = 60.0


def start_tui(space: Workspace, fake: FakeWorkersAI, user: str) -> PtyProcess:
    """``edgechat --user USER`` in a pty, against ``fake``; returns once the input box is on screen."""
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
    """Wait until the status line went busy and then back to ready: the turn is saved and reported."""
    busy = tui.wait_for(BUSY, after=start, timeout=timeout)
    return tui.wait_for(b"ready", after=busy, timeout=timeout)


def wait_request(fake: FakeWorkersAI, seen: int, timeout: float = TURN_TIMEOUT) -> ReceivedRequest:
    fake.wait_for_requests(seen + 1, timeout)
    return fake.requests[seen]


def finish(tui: PtyProcess, where: str) -> bytes:
    """End the TUI (if still running) and check all it wrote for tokens."""
    tui.close(quit_keys=None)
    output = tui.output
    check_output_for_secrets(where, output)
    return output


#: Where the last turn of each TUI process is killed, and how often (weights).
TUI_PHASES = {"typed": 1, "request": 2, "stream": 2, "save": 3, "reported": 1}


@dataclass
class TuiCrashReport:
    rounds: int = 0
    turns: int = 0
    killed: int = 0
    reported: list[str] = field(default_factory=list)
    lost: set[str] = field(default_factory=set)
    duplicated: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.problems)

    def summary(self) -> str:
        return (f"{self.rounds} TUI processes, {self.turns} turns, {self.killed} killed, "
                f"{len(self.reported)} reported; lost {sorted(self.lost)[:5]}, "
                f"duplicated {sorted(self.duplicated)[:5]}, problems {self.problems[:3]}")


def tui_crash_rounds(space: Workspace, fake: FakeWorkersAI, rounds: int, rng: random.Random, *,
                     user: str = "tuicrash") -> TuiCrashReport:
    """``rounds`` TUI processes as ``user``: each completes 1-3 turns, then is killed with SIGKILL at a
    random moment of one more. After each kill the history must load and hold every reported turn once."""
    fake.default_reply = slow_echo(chunk_size=3, delay=0.01)
    report = TuiCrashReport()
    for round_ in range(rounds):
        report.rounds += 1
        tui = start_tui(space, fake, user)
        phase = "startup"
        try:
            for j in range(rng.choice([1, 2, 3])):
                turn = f"r{round_}-{j}-{rng.randrange(16**5):05x}"
                report.turns += 1
                wait_reported(tui, send(tui, turn))
                report.reported.append(turn)
            turn = f"r{round_}-last-{rng.randrange(16**5):05x}"
            phase = rng.choices(list(TUI_PHASES), list(TUI_PHASES.values()))[0]
            report.turns += 1
            seen = len(fake.requests)
            start = send(tui, turn)
            if phase != "typed":
                request = wait_request(fake, seen)
                if phase == "stream":
                    tui.wait_for(b"streaming", after=start)
                elif phase == "save":
                    request.finished.wait(TURN_TIMEOUT)
                    threading.Event().wait(rng.uniform(0.0, 0.05))
                elif phase == "reported":
                    wait_reported(tui, start)
                    report.reported.append(turn)
            tui.kill()
            report.killed += 1
        finally:
            output = finish(tui, "tui crash round")
        if b"could not be loaded" in output:
            report.problems.append(f"round {round_}: the TUI could not load the history")
        audit, problems = check_history(space.data_dir, user, report.reported,
                                        f"after round {round_} ({phase})")
        report.problems.extend(problems)
        if audit is None:
            continue
        report.lost.update(audit.lost)
        report.duplicated.update(audit.duplicated)
        report.problems.extend(s for s in audit.split if s not in report.problems)
    return report
