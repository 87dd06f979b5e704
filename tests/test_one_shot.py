"""One-shot mode as a user runs it: a real process, Workers AI served on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import run_cli
from tests.fakes.workers_ai import ErrorReply, FakeWorkersAI, Reply, html_error_page
from tests.histories import stored_messages


@pytest.fixture
def fake():
    with FakeWorkersAI() as server:
        yield server


@pytest.fixture
def env(isolated_env, fake):
    return dict(isolated_env, CLOUDFLARE_ACCOUNT_ID=fake.account_id, CLOUDFLARE_API_TOKEN=fake.token,
                EDGECHAT_API_BASE=fake.api_base)


def test_reply_is_streamed_to_stdout_and_remembered(env, fake):
    first = run_cli(["-m", "hello there"], env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "You said: hello there\n"
    second = run_cli(["-m", "again"], env)
    assert "first: hello there" in second.stdout


def test_json_output(env, fake):
    result = run_cli(["-m", "hi", "--json"], env)
    data = json.loads(result.stdout)
    assert data["message"] == "You said: hi" and data["messageCount"] == 2
    assert data["usage"]["prompt_tokens"] > 0


def test_message_from_stdin(env, fake):
    assert run_cli(["-m", "-"], env, input="piped text\n").stdout.startswith("You said: piped text")
    assert run_cli([], env, input="no flag at all").stdout.startswith("You said: no flag at all")
    bad = run_cli(["-m", "-"], env, input=b"\xff\xfe bad")
    assert bad.returncode == 2 and "UTF-8" in bad.stderr


def test_users_are_separate(env, fake):
    run_cli(["--user", "alice", "-m", "I am alice"], env)
    bob = run_cli(["--user", "bob", "-m", "who?"], env)
    assert "alice" not in bob.stdout
    listing = run_cli(["users"], env).stdout
    assert "alice" in listing and "bob" in listing


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (ErrorReply(401, 10000, "Authentication error"), ["token", "Workers AI"]),
        (ErrorReply(400, 7003, "Could not route to /accounts/x/ai/run, perhaps your object identifier is "
                                "invalid?"), ["account"]),
        (ErrorReply(429, 4006, "you have used up your daily free allocation of 10,000 neurons"), ["daily"]),
        (html_error_page(502), ["502"]),
    ],
)
def test_runtime_errors_are_one_clear_line_and_exit_1(env, fake, reply, words):
    for _ in range(5):
        fake.enqueue(reply)
    result = run_cli(["-m", "hi", "--json"], env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("edgechat: error:")]
    assert len(errors) == 1
    for word in words:
        assert word.lower() in result.stderr.split("edgechat: error:")[1].lower()
    assert fake.token not in result.stderr + result.stdout
    assert stored_messages(__import__("pathlib").Path(env["EDGECHAT_DATA_DIR"]), "default") == []


def test_escape_sequences_never_reach_stdout(env, fake):
    fake.enqueue(Reply("safe \x1b]0;pwned\x07text \x1b[2J\x9b31m done", chunk_size=3))
    result = run_cli(["-m", "hi"], env)
    assert "\x1b" not in result.stdout and "\x9b" not in result.stdout and "\x07" not in result.stdout
    assert result.stdout == "safe text  done\n"


def test_interrupt_keeps_the_partial_reply_marked_stopped(env, fake):
    words = " ".join(f"word{i}" for i in range(200))
    fake.enqueue(Reply(words, chunk_size=6, delay=0.05))
    proc = subprocess.Popen([sys.executable, "-m", "edgechat_tui", "-m", "count slowly"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.set_blocking(proc.stdout.fileno(), False)
    received = b""
    deadline = time.monotonic() + 20
    while len(received) < 20 and time.monotonic() < deadline:
        chunk = proc.stdout.read()
        if chunk:
            received += chunk
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    stored = stored_messages(__import__("pathlib").Path(env["EDGECHAT_DATA_DIR"]), "default")
    assert stored[-1].stopped
    assert stored[-1].content.startswith(received.decode())
    assert len(stored[-1].content) < len(words)
