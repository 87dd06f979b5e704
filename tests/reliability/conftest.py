"""Fixtures of the fault suite, and the figures it reports.

``EDGECHAT_RELIABILITY_FIGURES=path.json`` writes the figures (merged into the file, so several runs
add up); the table is printed at the end of every run that touched this folder.
``EDGECHAT_RELIABILITY_SCALE=N`` multiplies the random case counts (crash rounds, concurrent turns).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.workers_ai import FakeWorkersAI
from tests.reliability.figures import FIGURES
from tests.reliability.harness import ACCOUNT, TOKEN, Workspace, scan_tree_for_secrets


def _config_file(path: Path) -> bool:
    # The config file holds the token by design (the user put it there); its backup copy too.
    return path.name == "config.toml" or path.name == "config.toml.bak"


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    """A config file and data dir of its own; then every file but the config is searched for a token."""
    space = Workspace(tmp_path / "ws")
    yield space
    leaks = scan_tree_for_secrets(space.root, allowed=_config_file)
    assert not leaks, f"a token was written to a file: {leaks}"


@pytest.fixture
def workers_ai() -> Iterator[FakeWorkersAI]:
    """The fake Workers AI on loopback, accepting the suite's token."""
    with FakeWorkersAI(token=TOKEN, account_id=ACCOUNT) as fake:
        yield fake


def scale() -> int:
    """How many times the default case counts to run (EDGECHAT_RELIABILITY_SCALE, at least 1)."""
    try:
        return max(1, int(os.environ.get("EDGECHAT_RELIABILITY_SCALE", "1")))
    except ValueError:
        return 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("EDGECHAT_RELIABILITY_FIGURES")
    if target and FIGURES:
        FIGURES.write_json(Path(target))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    terminalreporter.write_line(FIGURES.table())
