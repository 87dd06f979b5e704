"""Concurrency: several one-shot processes chatting as the same user at once.

No turn lost or duplicated, each user message with its reply right after it, and every process
building each context from the history as it stood (the others' turns included). The TUI variant
(a TUI and one-shot loops at once) is in test_tui.py.
"""

from __future__ import annotations

from tests.reliability.conftest import scale
from tests.reliability.figures import FIGURES
from tests.reliability.scenarios import concurrent_one_shot

CLASS = "concurrency: one-shot processes, one user"
COMMAND = "pytest tests/reliability/test_concurrency.py"


def test_processes_chatting_as_one_user_lose_and_duplicate_nothing(workspace, workers_ai):
    report = concurrent_one_shot(workspace, workers_ai, processes=3, turns=5 * scale())
    FIGURES.add(CLASS, command=COMMAND, tried=report.processes * report.turns, lost=len(report.lost),
                duplicated=len(report.duplicated), unclear=len(report.failures))
    assert report.ok, report.summary()
    assert len(report.reported) == report.processes * report.turns
