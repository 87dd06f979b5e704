"""The loopback fakes answer as the seed contract and docs/protocol.md say: tests on them mean something.

Checked with plain httpx, independently of RemoteAgent; and each fake runs as a process of its own
(``python -m tests.fakes.seed_server --port 0``), as subprocess and TUI tests use them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.messages import Done
from tests.fakes.agent_server import AgentServer, error_answer
from tests.fakes.seed_server import Scripted, SeedServer

ROOT = Path(__file__).resolve().parent.parent
CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-allow-headers": "Content-Type",
    "access-control-max-age": "86400",
}


@pytest.fixture
def seed() -> Iterator[tuple[SeedServer, httpx.Client]]:
    with SeedServer() as server, httpx.Client(base_url=server.url) as client:
        yield server, client


def cors_of(response: httpx.Response) -> dict[str, str]:
    return {k: response.headers.get(k, "") for k in CORS}


def test_seed_health(seed: tuple[SeedServer, httpx.Client]) -> None:
    _, client = seed
    response = client.get("/")
    body = response.json()
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert set(body) == {"status", "service", "timestamp"}
    assert body["status"] == "ok" and body["service"] == "Cloudflare AI Chat Worker"
    assert datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert cors_of(response) == CORS


def test_seed_chat_counts_and_remembers(seed: tuple[SeedServer, httpx.Client]) -> None:
    _, client = seed
    first = client.post("/api/chat", json={"message": "one", "userId": "alice"})
    second = client.post("/api/chat", json={"message": "two", "userId": "alice"})
    assert first.status_code == 200 and set(first.json()) == {"message", "messageCount"}
    assert first.json()["messageCount"] == 2 and second.json()["messageCount"] == 4
    assert "Before that you said: one." in second.json()["message"]
    assert cors_of(second) == CORS


@pytest.mark.parametrize("body", [{"message": "hi"}, {"message": "hi", "userId": ""}])
def test_seed_missing_user_is_default_user(seed: tuple[SeedServer, httpx.Client], body: dict) -> None:
    server, client = seed
    assert client.post("/api/chat", json=body).status_code == 200
    assert len(server.messages("default-user")) == 2


def test_seed_non_json_body(seed: tuple[SeedServer, httpx.Client]) -> None:
    _, client = seed
    response = client.post("/api/chat", content=b"not json", headers={"content-type": "text/plain"})
    assert (response.status_code, response.json()) == (500, {"error": "Internal server error"})
    assert cors_of(response) == CORS


def test_seed_model_failure_keeps_the_message(seed: tuple[SeedServer, httpx.Client]) -> None:
    server, client = seed
    server.script(Scripted.model_failure("3040: Capacity temporarily exceeded, please try again."))
    failed = client.post("/api/chat", json={"message": "one", "userId": "alice"})
    assert failed.status_code == 500 and failed.json() == {
        "error": "Failed to process message",
        "details": "AI request failed: 3040: Capacity temporarily exceeded, please try again.",
    }
    assert client.post("/api/chat", json={"message": "two", "userId": "alice"}).json()["messageCount"] == 3


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/chat"), ("POST", "/"), ("GET", "/api/history"),
                                              ("POST", "/api/reset"), ("GET", "/favicon.ico")])
def test_seed_anything_else_is_a_plain_404(seed: tuple[SeedServer, httpx.Client], method: str,
                                           path: str) -> None:
    _, client = seed
    response = client.request(method, path)
    assert (response.status_code, response.text) == (404, "Not Found")
    assert response.headers["content-type"].startswith("text/plain")
    assert cors_of(response) == CORS


def test_seed_options_is_204_with_the_origin_echoed(seed: tuple[SeedServer, httpx.Client]) -> None:
    _, client = seed
    response = client.options("/api/chat", headers={"Origin": "https://app.example"})
    assert response.status_code == 204 and response.content == b""
    assert response.headers["access-control-allow-origin"] == "https://app.example"


def test_agent_server_extensions() -> None:
    with AgentServer(token="t0k") as server, httpx.Client(base_url=server.url) as client:
        health = client.get("/").json()
        assert health["protocol"] == 1 and health["capabilities"] == ["stream", "history", "reset"]
        assert health["auth"] is True
        refused = client.post("/api/chat", json={"message": "hi", "userId": "a"})
        assert (refused.status_code, refused.json()["code"]) == (401, "unauthorized")
        client.headers["Authorization"] = "Bearer t0k"
        with client.stream("POST", "/api/chat", json={"message": "hi", "userId": "a"},
                           headers={"Accept": "text/event-stream"}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            text = response.read().decode()
        assert text.startswith("event: delta\ndata: ") and "event: done" in text
        as_json = client.post("/api/chat", json={"message": "again", "userId": "a"})
        assert as_json.headers["content-type"] == "application/json" and as_json.json()["messageCount"] == 4
        history = client.get("/api/history", params={"userId": "a", "limit": 1}).json()
        assert history["messageCount"] == 4 and len(history["messages"]) == 1
        bad = client.post("/api/chat", json={"message": "x", "userId": "../etc"})
        assert (bad.status_code, bad.json()["code"]) == (400, "bad_request")
        server.script(error_answer("rate_limited", retry_after=5))
        limited = client.post("/api/chat", json={"message": "x", "userId": "a"})
        assert limited.status_code == 429 and limited.headers["retry-after"] == "5"
        assert limited.json()["retryAfter"] == 5
        reset = client.post("/api/reset", json={"userId": "a"}).json()
        assert reset["ok"] is True and reset["messageCount"] == 0 and reset["archived"]


@pytest.mark.parametrize("module", ["tests.fakes.seed_server", "tests.fakes.agent_server"])
async def test_each_fake_runs_as_a_process(module: str) -> None:
    process = subprocess.Popen([sys.executable, "-m", module, "--port", "0", "--prefix", "team"], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/team")
        async with RemoteAgent(url, "alice") as agent:
            await agent.check()
            events = [event async for event in agent.send("hello")]
        assert isinstance(events[-1], Done) and events[-1].message_count == 2
    finally:
        process.terminate()
        process.wait(timeout=10)
