"""Shared pieces of the TUI tests: a loopback Workers AI server, settings that point at it, helpers.

Every test runs the real app (``EdgechatApp``) with the real ``LocalAgent`` talking HTTP to
``FakeWorkersAI`` on 127.0.0.1; histories are real files under ``tmp_path``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from edgechat_tui.config.settings import Settings, load_settings
from edgechat_tui.core.messages import Message
from edgechat_tui.storage.store import encode_header, encode_turn
from edgechat_tui.ui.app import EdgechatApp
from tests.fakes.workers_ai import FakeWorkersAI

SIZE = (100, 30)


@pytest.fixture
def fake() -> Iterator[FakeWorkersAI]:
    with FakeWorkersAI() as server:
        yield server


def make_settings(tmp_path: Path, fake: FakeWorkersAI | None, **env: str) -> Settings:
    """Settings as the CLI would load them, from an environment that points at ``fake``."""
    values = {"EDGECHAT_DATA_DIR": str(tmp_path / "data"), "EDGECHAT_CACHE_DIR": str(tmp_path / "cache")}
    if fake is not None:
        values |= {
            "CLOUDFLARE_ACCOUNT_ID": fake.account_id,
            "CLOUDFLARE_API_TOKEN": fake.token,
            "EDGECHAT_API_BASE": fake.api_base,
        }
    values |= env
    return load_settings(config_path=tmp_path / "config" / "config.toml", env=values)


@pytest.fixture
def settings(tmp_path: Path, fake: FakeWorkersAI) -> Settings:
    return make_settings(tmp_path, fake)


def make_app(settings: Settings, user: str = "alice") -> EdgechatApp:
    return EdgechatApp(settings, user, cursor_blink=False)


def write_history(data_dir: Path, user: str, turns: list[tuple[str, str]] | int, *,
                  stopped_last: bool = False) -> Path:
    """A history file as the store writes it: ``turns`` pairs, or that many numbered turns."""
    if isinstance(turns, int):
        turns = [(f"question {i}", f"**answer {i}**\n\n- item {i}") for i in range(turns)]
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{user}.jsonl"
    lines = [encode_header(user, created="2025-01-01T00:00:00.000Z")]
    for index, (question, answer) in enumerate(turns):
        stopped = stopped_last and index == len(turns) - 1
        lines.append(encode_turn(
            Message("user", question, time="2025-01-01T10:00:00.000Z"),
            Message("assistant", answer, time="2025-01-01T10:00:01.000Z",
                    model="@cf/meta/llama-3.3-70b-instruct-fp8-fast", stopped=stopped),
        ))
    path.write_bytes(b"".join(lines))
    return path


def stored_messages(data_dir: Path, user: str) -> list[dict[str, Any]]:
    """The messages of ``user``'s most recent conversation (its current branch), as stored JSON."""
    from tests.histories import stored_messages as branch

    return [message.to_json() for message in branch(data_dir, user)]


async def wait_until(pilot: Pilot, predicate: Callable[[], Any], timeout: float = 10.0,
                     what: str = "the condition") -> None:
    """Let the app run until ``predicate()`` is true; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def wait_ready(pilot: Pilot) -> None:
    """Until the agent is attached and the history shown."""
    app = pilot.app
    await wait_until(pilot, lambda: app.agent is not None and app.chat.status.state == "ready"
                     and app.chat.turn is None, what="the chat to be ready")


async def wait_settled(pilot: Pilot) -> None:
    """Until every reply has rendered all it holds (code colours included)."""
    from edgechat_tui.ui.widgets.messages import AssistantMessage

    await wait_until(pilot, lambda: all(w.body.settled for w in pilot.app.query(AssistantMessage)),
                     what="the replies to settle")


def screen_text(app: EdgechatApp) -> str:
    """What the terminal shows, as text (the top screen, composed)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def type_text(pilot: Pilot, text: str) -> None:
    """Type ``text`` key by key (spaces and all)."""
    keys = ["space" if ch == " " else ch for ch in text]
    await pilot.press(*keys)


async def send(pilot: Pilot, text: str) -> None:
    """Type a message and press Enter."""
    await type_text(pilot, text)
    await pilot.press("enter")
