"""The library fake (tests/fakes/library_server.py) answers as docs/protocol.md's ``conversations`` and
``search`` say, checked with plain httpx, independently of RemoteAgent: the client's fault tests on it
mean something.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.library_server import LibraryServer

CONVERSATION_ID = re.compile(r"[0-9a-hjkmnp-tv-z]{14}")


@pytest.fixture
def fake() -> Iterator[tuple[LibraryServer, httpx.Client]]:
    with LibraryServer(truncate_at=30) as server, httpx.Client(base_url=server.url) as client:
        yield server, client


def test_health_lists_the_library(fake):
    _, client = fake
    health = client.get("/").json()
    assert {"conversations", "search", "idempotency"} <= set(health["capabilities"])


def test_conversations_turns_and_the_tree(fake):
    _, client = fake
    user = {"userId": "ada"}
    made = client.post("/api/conversations", json=user | {"title": "Mine"}).json()["conversation"]
    assert CONVERSATION_ID.fullmatch(made["id"]) and made["messageCount"] == 0 and made["leaf"] is None
    turn = client.post("/api/chat", json=user | {"message": "hello there friend",
                                                  "conversationId": made["id"]})
    answer = turn.json()
    assert answer["conversationId"] == made["id"] and answer["truncated"] is True  # cut at 30 characters
    assert type(answer["messageId"]) is int and answer["userMessageId"] == answer["messageId"] - 1
    again = client.post(f"/api/conversations/{made['id']}/regenerate", json=user).json()
    assert again["userMessageId"] is None and again["messageCount"] == 2
    history = client.get("/api/history", params=user | {"conversationId": made["id"]}).json()
    reply = history["messages"][-1]
    assert reply["siblings"] == [answer["messageId"], again["messageId"]]
    assert reply["parent"] == answer["userMessageId"]
    more = client.post(f"/api/conversations/{made['id']}/continue", json=user).json()
    assert more["message"] == again["message"] + more["appended"] and more["messageId"] == again["messageId"]
    listed = client.get("/api/conversations", params=user).json()
    assert listed["current"] == made["id"] and listed["conversations"][0]["id"] == made["id"]


@pytest.mark.parametrize("request_, code", [
    (("GET", "/api/conversations/NOT-AN-ID", None), "bad_request"),
    (("GET", "/api/conversations/01m8sq52byjydm", None), "conversation_not_found"),
    (("POST", "/api/conversations/{id}/switch", {"messageId": 999}), "message_not_found"),
    (("POST", "/api/conversations/{id}/switch", {"messageId": "1"}), "bad_request"),
    (("POST", "/api/conversations/{id}/continue", {}), "conflict"),
    (("POST", "/api/conversations/{id}/delete", {"purge": True}), "conflict"),
    (("GET", "/api/search", None), "bad_request"),
], ids=lambda v: v if isinstance(v, str) else f"{v[0]} {v[1]}")
def test_refusals_have_the_protocols_codes(fake, request_, code):
    _, client = fake
    made = client.post("/api/conversations", json={"userId": "ada"}).json()["conversation"]
    method, path, body = request_
    path = path.format(id=made["id"])
    answer = client.request(method, path, params={"userId": "ada"} if method == "GET" else None,
                            json=None if body is None else {"userId": "ada", **body})
    assert answer.status_code == {"bad_request": 400, "conflict": 409}.get(code, 404)
    assert answer.json()["code"] == code


def test_an_idempotent_repeat_is_the_stored_turn(fake):
    server, client = fake
    headers = {"Idempotency-Key": "k-1", "Accept": "text/event-stream"}
    body = {"userId": "ada", "message": "once only"}
    first = client.post("/api/chat", json=body, headers=headers)
    second = client.post("/api/chat", json=body, headers=headers)
    other = client.post("/api/chat", json=body | {"message": "another"}, headers=headers)
    events = [json.loads(line[6:]) for line in second.text.splitlines() if line.startswith("data: ")]
    assert second.headers["idempotent-replayed"] == "true" and events[-1]["replayed"] is True
    assert events[0]["text"] == events[-1]["message"]  # one delta: the whole reply
    assert "event: done" in first.text and other.status_code == 400
    assert len(server.library("ada").messages) == 2
