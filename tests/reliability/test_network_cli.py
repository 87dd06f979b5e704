"""A sample of the network faults through ``edgechat -m`` in a real process, for each backend.

Exit 1, exactly one ``edgechat: error:`` line, no traceback, nothing on stdout or stderr that could
drive a terminal, no token, nothing stored, the message sent once.
"""

from __future__ import annotations

import pytest

from tests.reliability.figures import FIGURES
from tests.reliability.network_cases import NetCase, cli_cases, run_cli_case

COMMAND = "pytest tests/reliability/test_network_cli.py -k {backend}"


@pytest.mark.parametrize("case", cli_cases(), ids=lambda case: case.id)
def test_network_fault_through_the_cli(case: NetCase, workspace) -> None:
    outcome = run_cli_case(case, workspace)
    FIGURES.add(f"network via CLI: {case.backend}", command=COMMAND.format(backend=case.backend), tried=1,
                lost=len(outcome.wrongly_stored), duplicated=len(outcome.duplicate_sends),
                unclear=len(outcome.unclear), note=str(outcome) if not outcome.ok else None)
    assert outcome.ok, str(outcome)
