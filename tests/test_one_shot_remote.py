"""One-shot mode and the subcommands with --remote: real processes against loopback agent servers."""

from __future__ import annotations

import json
import socket

import pytest

from tests.conftest import TEST_TOKEN, run_cli
from tests.fakes.agent_server import AgentServer
from tests.fakes.seed_server import Scripted, SeedServer


@pytest.fixture
def seed():
    with SeedServer(prefix="/team") as server:
        yield server


@pytest.fixture
def agent():
    with AgentServer(token=TEST_TOKEN) as server:
        yield server


def test_seed_worker_memory_count_and_isolation(isolated_env, seed):
    url = seed.url
    first = run_cli(["--remote", url, "--user", "alice", "-m", "I like tea", "--json"], isolated_env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["messageCount"] == 2
    second = run_cli(["--remote", url, "--user", "alice", "-m", "what do I like?"], isolated_env)
    assert "Before that you said: I like tea" in second.stdout
    bob = run_cli(["--remote", url, "--user", "bob", "-m", "hello"], isolated_env)
    assert "tea" not in bob.stdout and "first thing" in bob.stdout
    assert [m["content"] for m in seed.messages("alice")][::2] == ["I like tea", "what do I like?"]


def test_seed_worker_has_no_history_or_reset(isolated_env, seed):
    history = run_cli(["--remote", seed.url, "history"], isolated_env)
    assert history.returncode == 1 and "does not share its history" in history.stderr
    reset = run_cli(["--remote", seed.url, "reset"], isolated_env)
    assert reset.returncode == 1 and "not available" in reset.stderr


def test_seed_worker_model_failure_is_shown_and_nothing_sent_twice(isolated_env, seed):
    seed.script(Scripted.model_failure("3040: Capacity temporarily exceeded, please try again."))
    result = run_cli(["--remote", seed.url, "-m", "hi"], isolated_env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Capacity temporarily exceeded" in result.stderr
    assert seed.count("/api/chat", "POST") == 1


def test_wrong_url_and_refused_connection(isolated_env, seed):
    wrong = run_cli(["--remote", seed.url + "/nope", "-m", "hi"], isolated_env)
    assert wrong.returncode == 1 and ("404" in wrong.stderr or "URL" in wrong.stderr)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = run_cli(["--remote", f"http://127.0.0.1:{port}", "-m", "hi"], isolated_env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    bad_scheme = run_cli(["--remote", "ftp://example.invalid", "-m", "hi"], isolated_env)
    assert bad_scheme.returncode == 2


def test_our_protocol_streams_shares_history_resets_and_needs_the_token(isolated_env, agent):
    env = dict(isolated_env, EDGECHAT_REMOTE_TOKEN=TEST_TOKEN)
    no_token = run_cli(["--remote", agent.url, "-m", "hi"], isolated_env)
    assert no_token.returncode == 1 and "token" in no_token.stderr.lower()
    sent = run_cli(["--remote", agent.url, "--user", "carol", "-m", "remember 42", "--json"], env)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["messageCount"] == 2
    history = run_cli(["--remote", agent.url, "--user", "carol", "history", "--format", "json"], env)
    data = json.loads(history.stdout)
    assert data["userId"] == "carol" and data["messages"][0]["content"] == "remember 42"
    reset = run_cli(["--remote", agent.url, "--user", "carol", "reset"], env)
    assert reset.returncode == 0 and "archived" in reset.stdout
    after = run_cli(["--remote", agent.url, "--user", "carol", "history", "--format", "json"], env)
    assert json.loads(after.stdout)["messages"] == []
    for result in (no_token, sent, history, reset, after):
        assert TEST_TOKEN not in result.stdout + result.stderr
