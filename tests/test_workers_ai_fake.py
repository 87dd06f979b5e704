"""The loopback Workers AI fake answers as the real API does (so tests built on it mean something)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fakes.workers_ai import (
    DEFAULT_MODEL,
    CutStream,
    ErrorReply,
    FakeWorkersAI,
    Garbage,
    NoDone,
    Reply,
    Stall,
    capacity_error,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake():
    with FakeWorkersAI() as server:
        yield server


def run(fake: FakeWorkersAI, body: dict, *, model: str = DEFAULT_MODEL, token: str | None = None,
        account: str | None = None) -> httpx.Response:
    url = f"{fake.api_base}/accounts/{account or fake.account_id}/ai/run/{model}"
    return httpx.post(url, json=body, headers={"Authorization": f"Bearer {token or fake.token}"}, timeout=10)


def sse_data(raw: str) -> list[str]:
    return [line[len("data: "):] for line in raw.split("\n") if line.startswith("data: ")]


HELLO = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 100}


def test_json_answer_uses_the_cloudflare_envelope(fake):
    fake.enqueue(Reply("Hi there"))
    answer = run(fake, HELLO)
    assert answer.status_code == 200
    data = answer.json()
    assert data["success"] is True and data["errors"] == []
    assert data["result"]["response"] == "Hi there"
    assert data["result"]["usage"]["total_tokens"] > 0
    request = fake.run_requests[0]
    assert request.model == DEFAULT_MODEL
    assert request.body == HELLO


def test_default_reply_echoes_the_conversation(fake):
    first = run(fake, HELLO).json()["result"]["response"]
    assert first == "You said: hello"
    body = {"messages": [{"role": "user", "content": "my name is Ada"},
                         {"role": "assistant", "content": "ok"},
                         {"role": "user", "content": "who am I?"}]}
    second = run(fake, body).json()["result"]["response"]
    assert "who am I?" in second and "my name is Ada" in second and "2 things" in second


def test_stream_sends_padded_events_usage_and_done(fake):
    fake.enqueue(Reply("New York City", chunk_size=None))
    answer = run(fake, {**HELLO, "stream": True})
    assert answer.headers["content-type"] == "text/event-stream"
    data = sse_data(answer.text)
    assert data[-1] == "[DONE]"
    events = [json.loads(d) for d in data[:-1]]
    assert [e["response"] for e in events[:-1]] == ["New", " York", " City"]
    assert all("p" in e for e in events)
    assert events[-1]["response"] == "" and events[-1]["usage"]["completion_tokens"] > 0


def test_stream_in_choices_style(fake):
    fake.enqueue(Reply("abcdef", chunk_size=4, style="choices", padding=False))
    events = [json.loads(d) for d in sse_data(run(fake, {**HELLO, "stream": True}).text)[:-1]]
    assert [e["choices"][0]["delta"].get("content") for e in events] == ["abcd", "ef", None]
    assert "usage" in events[-1]


def test_wrong_token_is_401_code_10000(fake):
    answer = run(fake, HELLO, token="nope")
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["code"] == 10000


def test_token_without_permission_is_403(fake):
    fake.token_has_permission = False
    answer = run(fake, HELLO)
    assert answer.status_code == 403 and answer.json()["errors"][0]["code"] == 10000


def test_wrong_account_is_7003(fake):
    answer = run(fake, HELLO, account="0" * 32)
    assert answer.json()["errors"][0]["code"] == 7003
    assert answer.json()["success"] is False


def test_unknown_model_is_5007_and_malformed_model_3042(fake):
    assert run(fake, HELLO, model="@cf/meta/no-such-model").json()["errors"][0]["code"] == 5007
    answer = run(fake, HELLO, model="llama")
    assert answer.status_code == 404 and answer.json()["errors"][0]["code"] == 3042


def test_bad_input_is_5006(fake):
    answer = run(fake, {"messages": [{"role": "user", "content": ["not", "a", "string"]}]})
    assert answer.status_code == 400 and answer.json()["errors"][0]["code"] == 5006


def test_context_window_counts_max_tokens():
    with FakeWorkersAI(context_window=1000) as fake:
        assert run(fake, {**HELLO, "max_tokens": 900}).status_code == 200
        answer = run(fake, {**HELLO, "max_tokens": 1000})
        assert answer.status_code == 413
        error = answer.json()["errors"][0]
        assert error["code"] == 5021
        assert "exceeded this model context window limit (1000)" in error["message"]


def test_queued_errors_carry_retry_after(fake):
    fake.enqueue(capacity_error(retry_after=7), ErrorReply(502, body="<html>bad gateway</html>",
                                                           content_type="text/html"))
    first = run(fake, HELLO)
    assert first.status_code == 429 and first.headers["retry-after"] == "7"
    assert first.json()["errors"][0] == {"code": 3040, "message": "Capacity temporarily exceeded, please try "
                                                                  "again."}
    second = run(fake, HELLO)
    assert second.status_code == 502 and second.text.startswith("<html>")
    assert run(fake, HELLO).status_code == 200  # queue empty: back to the echo


def test_cut_stream_ends_the_http_body_early(fake):
    fake.enqueue(CutStream("one two three four five", after_chunks=2))
    with pytest.raises(httpx.RemoteProtocolError):
        run(fake, {**HELLO, "stream": True})


def test_no_done_and_garbage(fake):
    fake.enqueue(NoDone("a b"), Garbage(after_chunks=1))
    assert "[DONE]" not in run(fake, {**HELLO, "stream": True}).text
    text = run(fake, {**HELLO, "stream": True}).text
    assert "data: {this is not json" in text and text.rstrip().endswith("data: [DONE]")


def test_a_stall_ends_when_the_client_goes_away(fake):
    fake.enqueue(Stall(seconds=60, after_chunks=1, text="first second"))
    with httpx.stream("POST", fake.run_url(), json={**HELLO, "stream": True},
                      headers={"Authorization": f"Bearer {fake.token}"}, timeout=10) as answer:
        lines = answer.iter_lines()
        assert next(lines).startswith("data: ")
    request = fake.run_requests[0]
    assert request.finished.wait(10)
    assert request.closed_early.is_set()


def test_token_verification(fake):
    url = f"{fake.api_base}/user/tokens/verify"
    good = httpx.get(url, headers={"Authorization": f"Bearer {fake.token}"})
    assert good.json()["result"]["status"] == "active" and good.json()["success"] is True
    bad = httpx.get(url, headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401 and bad.json()["errors"][0]["code"] == 1000


def test_control_endpoint_queues_replies(fake):
    queued = httpx.post(f"{fake.api_base}/_fake/enqueue",
                        json={"type": "ErrorReply",
                              "args": {"status": 429, "code": 4006, "message": "quota"}})
    assert queued.json() == {"queued": 1}
    assert run(fake, HELLO).json()["errors"][0]["code"] == 4006
    seen = httpx.get(f"{fake.api_base}/_fake/requests").json()
    assert seen[0]["body"] == HELLO


def test_runs_as_a_process():
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.workers_ai", "--port", "0", "--json", "--watch-stdin"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        info = json.loads(process.stdout.readline())
        answer = httpx.post(f"{info['api_base']}/accounts/{info['account_id']}/ai/run/{DEFAULT_MODEL}",
                            json=HELLO, headers={"Authorization": f"Bearer {info['token']}"}, timeout=10)
        assert answer.json()["result"]["response"] == "You said: hello"
    finally:
        process.stdin.close()  # end of stdin: the fake exits by itself
        assert process.wait(timeout=10) == 0
