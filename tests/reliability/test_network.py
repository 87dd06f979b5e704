"""Network faults for each backend: every one a typed, clear error (or a success where it should be),
nothing stored for a failed turn, no message sent twice. The cases are in network_cases.py."""

from __future__ import annotations

import pytest

from tests.reliability.figures import FIGURES
from tests.reliability.network_cases import NetCase, all_cases, run_case

COMMAND = "pytest tests/reliability/test_network.py -k {backend}"


@pytest.mark.parametrize("case", all_cases(), ids=lambda case: case.id)
async def test_network_fault(case: NetCase, tmp_path) -> None:
    outcome = await run_case(case, tmp_path)
    FIGURES.add(f"network: {case.backend}", command=COMMAND.format(backend=case.backend), tried=1,
                lost=len(outcome.wrongly_stored), duplicated=len(outcome.duplicate_sends),
                unclear=len(outcome.unclear), note=str(outcome) if not outcome.ok else None)
    assert outcome.ok, str(outcome)
