"""Crash: one-shot processes killed with SIGKILL at random moments, turn after turn.

Every turn a process reported complete must be on disk exactly once with its reply after it, and
the history must load after every kill. ``EDGECHAT_RELIABILITY_SEED`` replays a run;
``EDGECHAT_RELIABILITY_SCALE`` multiplies the rounds. The TUI's crash test is in test_tui.py.
"""

from __future__ import annotations

import json
import os
import random

from tests.reliability.conftest import scale
from tests.reliability.figures import FIGURES
from tests.reliability.harness import run_edgechat
from tests.reliability.scenarios import crash_one_shot

CLASS = "crash: one-shot killed (SIGKILL) at random moments"
COMMAND = "pytest tests/reliability/test_crash.py"
ROUNDS = 36


def test_sigkill_at_random_moments_loses_no_reported_turn(workspace, workers_ai):
    seed = int(os.environ.get("EDGECHAT_RELIABILITY_SEED", random.randrange(1 << 30)))
    report = crash_one_shot(workspace, workers_ai, ROUNDS * scale(), random.Random(seed))
    FIGURES.add(CLASS, command=COMMAND, tried=report.rounds, lost=len(report.lost),
                duplicated=len(report.duplicated),
                unclear=len(report.load_failures) + len(report.unexpected_exits))
    assert report.ok, f"seed {seed}: {report.summary()}"
    # Kills must really have landed in every phase, or the test proves less than it claims.
    assert report.killed >= ROUNDS // 2, report.summary()
    assert all(report.phases[p] for p in ("startup", "request", "stream", "save")), report.summary()
    # And after all that, the CLI reads the history too.
    shown = run_edgechat(["history", "--user", "crash", "--format", "json"],
                         workspace.local_env(workers_ai.api_base))
    assert shown.returncode == 0, shown
    turns = [m["content"] for m in json.loads(shown.stdout)["messages"] if m["role"] == "user"]
    assert set(report.reported) <= set(turns)
    assert len(turns) == len(set(turns))
