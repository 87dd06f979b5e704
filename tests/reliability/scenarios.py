"""Crash and concurrency scenarios with real one-shot processes, shared by the tests and the soak.

A turn is *reported complete* when the process said so: with ``--json``, a JSON line on stdout
(printed only after the turn was saved); without it, exit status 0. Every reported turn must be on
disk exactly once, its reply right after it; the history must load after every kill.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from tests.fakes.workers_ai import FakeWorkersAI, ReceivedRequest, Reply
from tests.reliability.harness import (
    Workspace,
    audit_turns,
    check_history,
    check_output_for_secrets,
    echo_reply_ok,
    edgechat_command,
    read_history,
)

#: Where a kill lands, and how often (weights). "complete" lets the process finish.
KILL_PHASES = {"complete": 2, "startup": 2, "request": 2, "stream": 3, "save": 4}


def slow_echo(chunk_size: int = 3, delay: float = 0.003):
    """The fake's echo reply, streamed in small pieces so that kills land in the middle of it."""
    def reply(request: ReceivedRequest) -> Reply:
        echo = FakeWorkersAI.echo_reply(request)
        return Reply(echo.text, chunk_size=chunk_size, delay=delay)
    return reply


@dataclass
class CrashReport:
    """What a crash run did and found."""

    rounds: int = 0
    killed: int = 0
    reported: list[str] = field(default_factory=list)
    lost: set[str] = field(default_factory=set)
    duplicated: set[str] = field(default_factory=set)
    split: list[str] = field(default_factory=list)
    load_failures: list[str] = field(default_factory=list)
    unexpected_exits: list[str] = field(default_factory=list)
    phases: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.split or self.load_failures or self.unexpected_exits)

    def summary(self) -> str:
        return (f"{self.rounds} rounds, {self.killed} killed, {len(self.reported)} reported complete; "
                f"lost {sorted(self.lost)[:5]}, duplicated {sorted(self.duplicated)[:5]}, "
                f"split {self.split[:3]}, "
                f"load failures {self.load_failures[:3]}, unexpected exits {self.unexpected_exits[:3]}; "
                f"phases {dict(self.phases)}")


def _wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def _reported_by_json(stdout: bytes) -> int | None:
    """The messageCount of the JSON line a --json run printed, or None when it printed none whole."""
    for line in stdout.split(b"\n")[:-1]:  # a line without its newline was cut by the kill
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("messageCount"), int):
            return data["messageCount"]
    return None


def crash_one_shot(space: Workspace, fake: FakeWorkersAI, rounds: int, rng: random.Random, *,
                   user: str = "crash", timeout: float = 60.0) -> CrashReport:
    """``rounds`` one-shot turns as ``user``, most of them killed with SIGKILL at a random moment.

    The phases aim the kills: while Python starts, once the request reached the model, in the middle
    of the streamed reply, and just after the reply ended (while the turn is being saved).
    """
    fake.default_reply = slow_echo()
    env = space.local_env(fake.api_base)
    report = CrashReport()
    positions: dict[str, int] = {}
    phases, weights = zip(*KILL_PHASES.items(), strict=True)
    logs = space.root / "crash-logs"
    logs.mkdir(exist_ok=True)
    for index in range(rounds):
        turn = f"c{index:05d}-{rng.randrange(16**6):06x}"
        # Every phase once first, so that even a short run aims at each; then at random.
        phase = phases[index] if index < len(phases) else rng.choices(phases, weights)[0]
        as_json = rng.random() < 0.5
        report.rounds += 1
        report.phases[phase] += 1
        args = ["--user", user, "-m", turn] + (["--json"] if as_json else [])
        seen = len(fake.requests)
        out_path, err_path = logs / f"{index}.out", logs / f"{index}.err"
        # Files, not pipes: after a SIGKILL every byte the process wrote is there.
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(edgechat_command(args), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=env)
        try:
            if phase == "startup":
                time.sleep(rng.uniform(0.0, 0.6))
            elif phase != "complete":
                arrived = _wait_until(lambda p=proc, n=seen: len(fake.requests) > n or p.poll() is not None,
                                      timeout)
                request = fake.requests[seen] if arrived and len(fake.requests) > seen else None
                if request is not None and phase == "request":
                    time.sleep(rng.uniform(0.0, 0.01))
                elif request is not None and phase == "stream":
                    time.sleep(rng.uniform(0.0, 0.08))
                elif request is not None and phase == "save":
                    request.finished.wait(timeout)
                    time.sleep(rng.uniform(0.0, 0.03))
            if phase != "complete":
                proc.kill()
            proc.wait(timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stdout, stderr = out_path.read_bytes(), err_path.read_bytes()
        check_output_for_secrets("crash round", stdout, stderr)
        killed = proc.returncode == -9
        report.killed += killed
        count = _reported_by_json(stdout) if as_json else None
        done = count is not None if as_json else proc.returncode == 0
        if not killed and proc.returncode != 0:
            why = stderr.decode(errors="replace")[-300:]
            report.unexpected_exits.append(f"{turn}: exit {proc.returncode}: {why}")
        if done:
            report.reported.append(turn)
            if count is not None:
                positions[turn] = count
        audit, problems = check_history(space.data_dir, user, report.reported, f"after {turn} ({phase})")
        report.load_failures.extend(problems)
        if audit is None:
            continue
        report.lost.update(audit.lost)
        report.duplicated.update(audit.duplicated)
        report.split.extend(s for s in audit.split if s not in report.split)
        for reported_turn, count in positions.items():
            at = audit.turns.index(reported_turn) if reported_turn in audit.turns else -1
            if at >= 0 and count != 2 * at + 2:
                problem = f"{reported_turn} reported messageCount {count} but sits at message {2 * at + 1}"
                if problem not in report.split:
                    report.split.append(problem)
    return report


@dataclass
class ConcurrencyReport:
    processes: int = 0
    turns: int = 0
    reported: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    split: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.failures or self.lost or self.duplicated or self.split or self.stale)

    def summary(self) -> str:
        return (f"{self.processes} processes x {self.turns} turns, {len(self.reported)} reported; failures "
                f"{self.failures[:3]}, lost {self.lost[:5]}, duplicated {self.duplicated[:5]}, split "
                f"{self.split[:3]}, stale contexts {self.stale[:3]}")


def one_shot_loop(env: dict[str, str], user: str, prefix: str, turns: int, report: ConcurrencyReport,
                  lock: threading.Lock, timeout: float = 90.0) -> None:
    """Send ``turns`` one-shot messages ``{prefix}-t{k}`` as ``user``, one after the other; record each."""
    for k in range(turns):
        turn = f"{prefix}-t{k}"
        proc = subprocess.run(edgechat_command(["--user", user, "-m", turn, "--json"]), env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        check_output_for_secrets("concurrent turn", proc.stdout, proc.stderr)
        with lock:
            if proc.returncode == 0 and _reported_by_json(proc.stdout) is not None:
                report.reported.append(turn)
            else:
                report.failures.append(f"{turn}: exit {proc.returncode}: "
                                       f"{proc.stderr.decode(errors='replace')[-300:]}")


def concurrent_one_shot(space: Workspace, fake: FakeWorkersAI, processes: int, turns: int, *,
                        user: str = "shared", prefix: str = "p") -> ConcurrencyReport:
    """``processes`` loops, each sending ``turns`` one-shot messages as ``user``, all at once."""
    fake.default_reply = slow_echo(chunk_size=4, delay=0.01)
    env = space.local_env(fake.api_base)
    report = ConcurrencyReport(processes=processes, turns=turns)
    lock = threading.Lock()
    threads = [threading.Thread(target=one_shot_loop, args=(env, user, f"{prefix}{p}", turns, report, lock))
               for p in range(processes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    messages, _warnings = read_history(space.data_dir, user)
    audit = audit_turns(messages, report.reported, echo_reply_ok)
    report.lost, report.duplicated, report.split = audit.lost, audit.duplicated, audit.split
    report.stale = stale_contexts(fake, messages, prefix)
    return report


def stale_contexts(fake: FakeWorkersAI, history: list, prefix: str) -> list[str]:
    """Requests whose context was not the history as it stood: each process must pick up the others' turns.

    The context of a process's k-th message (what was sent between the system prompt and the new
    message) must be the stored history from its start (nothing skipped, nothing reordered), and must
    include that process's own turn k-1 and everything saved before it.
    """
    stored = [(m.role, m.content) for m in history]
    problems = []
    for request in fake.run_requests:
        sent = [(m.get("role"), m.get("content")) for m in (request.body or {}).get("messages", [])]
        if not sent or not str(sent[-1][1]).startswith(prefix):
            continue
        turn = str(sent[-1][1])
        context = [m for m in sent[:-1] if m[0] != "system"]
        if context != stored[: len(context)]:
            problems.append(f"{turn}: its context is not the stored history's first {len(context)} messages")
            continue
        process, _, k = turn.rpartition("-t")
        if k.isdigit() and int(k) > 0:
            previous = ("user", f"{process}-t{int(k) - 1}")
            if previous in stored and previous not in context:
                problems.append(f"{turn}: sent without this process's own previous turn")
    return problems
