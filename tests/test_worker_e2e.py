"""End to end: edgechat (one-shot mode and RemoteAgent) against our Worker running in workerd.

The Worker and its Durable Objects run in real workerd on a loopback port (worker/scripts/serve-test.mjs,
through Miniflare), with real SQLite storage; only the Workers AI binding is a stub
(worker/testing/ai-stub.js), which answers from what it was sent: 'You said "<message>". I remember N
earlier messages from you; the first was "<...>".' Directives in a message steer it (``[[words N]]``,
``[[slow MS]]``, ``[[error CODE]]``).

Skipped when the worker's npm dependencies are not installed (``npm ci`` in worker/).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.errors import AuthError, ContextTooLong, InvalidUserId, QuotaExceeded, RateLimited
from edgechat_tui.core.messages import Done, TextDelta
from edgechat_tui.core.userid import validate_user_id
from tests.conftest import run_cli

WORKER = Path(__file__).resolve().parent.parent / "worker"
NODE = shutil.which("node")

if NODE is None or not (WORKER / "node_modules" / "miniflare").is_dir():
    pytest.skip("the worker's dependencies are not installed (cd worker && npm ci)", allow_module_level=True)

#: Building the Worker and starting workerd takes a few seconds, more on a busy machine.
START_TIMEOUT = 120.0
TOKEN = "e2e-WORKER-TOKEN-5b1f0c"


class WorkerProcess:
    """serve-test.mjs as a child process: started, asked for its URL, stopped and reaped."""

    def __init__(self, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [NODE, str(WORKER / "scripts" / "serve-test.mjs"), "--port", "0", *extra],
            cwd=WORKER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.url = self._read_url()

    def _read_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()
                if line:
                    return json.loads(line)["url"].rstrip("/")
            if self.proc.poll() is not None:
                break
        self.stop()
        stderr = self.proc.stderr.read().decode("utf-8", "replace") if self.proc.stderr else ""
        raise RuntimeError(f"serve-test.mjs did not start: {stderr[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # it exits when its stdin closes
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="module")
def worker() -> Iterator[str]:
    server = WorkerProcess()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def guarded_worker() -> Iterator[str]:
    server = WorkerProcess("--token", TOKEN)
    try:
        yield server.url
    finally:
        server.stop()


async def turn(agent: RemoteAgent, text: str) -> tuple[list[str], Done]:
    """Sends ``text``; returns the pieces that arrived and the Done event."""
    pieces: list[str] = []
    done: Done | None = None
    async for event in agent.send(text):
        if isinstance(event, TextDelta):
            pieces.append(event.text)
        elif isinstance(event, Done):
            done = event
    assert done is not None
    return pieces, done


# --- one-shot mode ----------------------------------------------------------------------------------


def test_one_shot_remembers_across_turns_and_keeps_users_apart(worker, isolated_env):
    first = run_cli(["--remote", worker, "--user", "ada", "-m", "my name is Ada"], isolated_env)
    assert first.returncode == 0, first.stderr
    assert 'You said "my name is Ada". This is the first message I have from you.' in first.stdout

    second = run_cli(["--remote", worker, "--user", "ada", "-m", "what is my name?", "--json"], isolated_env)
    assert second.returncode == 0, second.stderr
    answer = json.loads(second.stdout)
    assert answer["messageCount"] == 4
    assert 'the first was "my name is Ada"' in answer["message"]

    other = run_cli(["--remote", worker, "--user", "grace", "-m", "what is my name?", "--json"], isolated_env)
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout)["messageCount"] == 2
    assert "Ada" not in other.stdout


def test_one_shot_history_and_reset(worker, isolated_env):
    base = ["--remote", worker, "--user", "cli-history"]
    assert run_cli([*base, "-m", "first words"], isolated_env).returncode == 0
    shown = run_cli([*base, "history", "--format", "json"], isolated_env)
    assert shown.returncode == 0, shown.stderr
    messages = json.loads(shown.stdout)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[0]["content"] == "first words"

    reset = run_cli([*base, "reset"], isolated_env)
    assert reset.returncode == 0, reset.stderr
    assert "archived" in reset.stdout
    after = run_cli([*base, "history", "--format", "json"], isolated_env)
    assert json.loads(after.stdout)["messages"] == []


def test_one_shot_needs_the_token_when_the_agent_has_one(guarded_worker, isolated_env):
    refused = run_cli(["--remote", guarded_worker, "--user", "cli-auth", "-m", "hello"], isolated_env)
    assert refused.returncode == 1
    assert "token" in refused.stderr.lower()

    env = dict(isolated_env, EDGECHAT_REMOTE_TOKEN=TOKEN)
    allowed = run_cli(["--remote", guarded_worker, "--user", "cli-auth", "-m", "hello", "--json"], env)
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["messageCount"] == 2
    assert TOKEN not in allowed.stdout + allowed.stderr + refused.stdout + refused.stderr


# --- RemoteAgent ------------------------------------------------------------------------------------


async def test_remote_agent_learns_the_extensions_and_streams(worker):
    async with RemoteAgent(worker, "streamer") as agent:
        status = await agent.check()
        assert status
        caps = agent.capabilities
        assert caps is not None and {"stream", "history", "reset"} <= set(caps.names)
        assert agent.info.streams and agent.info.shares_history and agent.info.can_reset
        assert agent.info.model == "@cf/meta/llama-3.3-70b-instruct-fp8-fast"

        pieces, done = await turn(agent, "a long answer please [[words 60]]")
        assert len(pieces) > 10
        assert "".join(pieces) == done.message.content
        assert done.message.content.split(" ") == [f"w{i}" for i in range(60)]
        assert done.message_count == 2
        assert done.usage is not None and done.usage.completion_tokens == 60

        _, again = await turn(agent, "do you remember?")
        assert again.message_count == 4
        assert 'the first was "a long answer please [[words 60]]"' in again.message.content


async def test_remote_agent_history_and_reset(worker):
    async with RemoteAgent(worker, "historian") as agent:
        for text in ("one", "two"):
            await turn(agent, text)
        history = await agent.history()
        assert history is not None
        assert [(m.role, m.content) for m in history][::2] == [("user", "one"), ("user", "two")]
        assert all(m.role == "assistant" for m in history[1::2])
        assert all(m.time for m in history)

        archived = await agent.reset()
        assert archived
        assert await agent.history() == []
        _, done = await turn(agent, "fresh start")
        assert done.message_count == 2
        assert "This is the first message I have from you." in done.message.content


async def test_remote_agent_users_are_isolated(worker):
    async with RemoteAgent(worker, "iso-a") as a, RemoteAgent(worker, "iso-b") as b:
        await turn(a, "secret of a")
        _, done = await turn(b, "what do you know?")
        assert "secret of a" not in done.message.content
        assert done.message_count == 2
        history_b = await b.history()
        assert history_b is not None and all("secret of a" not in m.content for m in history_b)


async def test_remote_agent_stopped_reply_is_kept_marked_stopped(worker):
    async with RemoteAgent(worker, "stopper") as agent:
        pieces: list[str] = []
        events = agent.send("talk slowly [[words 400]] [[slow 15]]")
        async for event in events:
            if isinstance(event, TextDelta):
                pieces.append(event.text)
                if len(pieces) >= 5:
                    break
        await events.aclose()
        # The Worker notices the hang-up, stops the model and stores what was generated.
        history: list = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            history = await agent.history() or []
            if history:
                break
            await asyncio.sleep(0.05)
        assert len(history) == 2
        assert history[1].stopped
        assert history[1].content.startswith("".join(pieces))
        assert len(history[1].content.split(" ")) < 400
        _, done = await turn(agent, "still there?")
        assert done.message_count == 4


async def test_remote_agent_errors_are_typed(worker):
    async with RemoteAgent(worker, "failing", max_retries=0) as agent:
        with pytest.raises(RateLimited):
            await turn(agent, "busy [[error 3040]]")
        with pytest.raises(QuotaExceeded):
            await turn(agent, "spent [[error 4006]]")
        with pytest.raises(ContextTooLong):
            await turn(agent, "x" * 100_000)
        assert await agent.history() == []  # failed turns leave nothing behind


async def test_remote_agent_token(guarded_worker):
    async with RemoteAgent(guarded_worker, "token-user") as anonymous:
        assert "token" in (await anonymous.check()).lower()
        assert anonymous.capabilities is not None and anonymous.capabilities.auth
        with pytest.raises(AuthError) as refused:
            await turn(anonymous, "hello")
        assert TOKEN not in str(refused.value)
    async with RemoteAgent(guarded_worker, "token-user", token="not-the-token") as wrong:
        with pytest.raises(AuthError):
            await wrong.history()
    async with RemoteAgent(guarded_worker, "token-user", token=TOKEN) as agent:
        _, done = await turn(agent, "hello")
        assert done.message_count == 2
        assert TOKEN not in repr(agent)


# --- the same user id rules on both sides -----------------------------------------------------------


def _python_accepts(user_id: str) -> bool:
    try:
        validate_user_id(user_id)
    except InvalidUserId:
        return False
    return True


_ID_PIECES = [*"abcXYZ019._-", "..", " ", "/", "\\", ":", "é", "\x00", "\n",
              "con", "NUL", "com1", "lpt9", "aux."]
_ID_ALPHABET = st.sampled_from(_ID_PIECES)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user_id=st.lists(_ID_ALPHABET, min_size=1, max_size=30).map("".join)
       | st.text(min_size=1, max_size=70))
def test_worker_accepts_exactly_the_ids_python_accepts(worker, user_id):
    with httpx.Client(timeout=30) as client:
        res = client.post(f"{worker}/api/reset", json={"userId": user_id})
    expected = 200 if _python_accepts(user_id) else 400
    assert res.status_code == expected, (user_id, res.text)
    if expected == 400:
        assert res.json()["code"] == "bad_request"

