"""Surrogate halves from a server: joined across pieces, a lone one made U+FFFD, never a traceback.

JSON may write a character outside the BMP as two escapes (``"\\ud83d\\ude00"``), and a stream may
split the pair between two events. Cases: a text with three astral characters split into two events
at every UTF-16 position (so through the middle of each pair), in Workers AI's ``response`` and in
``choices[0].delta.content``, and in an agent's ``delta`` events; a lone high half, a lone low half
and a high half at the very end; the same in whole (non-streamed) answers, in an agent's ``done``
message and in its history. Through ``edgechat -m --json`` the split reply is printed, saved whole and
reported saved; ``edgechat history`` then reads the profile.
"""

from __future__ import annotations

import json

import pytest

from edgechat_tui.backends.local.workers_ai import Completion, WorkersAIClient
from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.messages import Done, TextDelta
from tests.fakes.agent_server import AgentServer
from tests.fakes.seed_server import Scripted
from tests.fakes.workers_ai import DEFAULT_MODEL, ErrorReply, FakeWorkersAI
from tests.reliability.harness import ACCOUNT, REMOTE_TOKEN, TOKEN, run_edgechat

TEXT = "hi \U0001F600 there \U0001D11E and \U0001F680!"


def units(text: str) -> list[str]:
    """``text`` as UTF-16 code units, a surrogate pair as its two halves."""
    out: list[str] = []
    for char in text:
        if ord(char) > 0xFFFF:
            value = ord(char) - 0x10000
            out += [chr(0xD800 + (value >> 10)), chr(0xDC00 + (value & 0x3FF))]
        else:
            out.append(char)
    return out


SPLITS = list(range(1, len(units(TEXT))))


def _workers_ai_stream(pieces: list[str], style: str) -> bytes:
    def event(piece: str) -> dict:
        return {"response": piece} if style == "response" else {"choices": [{"delta": {"content": piece}}]}

    # json.dumps escapes each half as \udXXX, as a server writing JSON with ASCII escapes does
    return b"".join(b"data: " + json.dumps(event(p)).encode() + b"\n\n" for p in pieces) + b"data: [DONE]\n\n"


async def _local_chat(body: bytes, content_type: str = "text/event-stream") -> list:
    with FakeWorkersAI(token=TOKEN, account_id=ACCOUNT) as fake:
        fake.enqueue(ErrorReply(200, body=body, content_type=content_type))
        async with WorkersAIClient(account_id=ACCOUNT, api_token=TOKEN, api_base=fake.api_base,
                                   max_retries=0) as client:
            return [e async for e in client.chat([{"role": "user", "content": "hi"}], model=DEFAULT_MODEL,
                                                 max_tokens=5, temperature=None, session_id=None)]


def _text(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


@pytest.mark.parametrize("style", ["response", "choices"])
async def test_workers_ai_joins_a_pair_split_at_every_position(style: str) -> None:
    for at in SPLITS:
        u = units(TEXT)
        events = await _local_chat(_workers_ai_stream(["".join(u[:at]), "".join(u[at:])], style))
        assert _text(events) == TEXT, at
        assert isinstance(events[-1], Completion) and events[-1].text == TEXT
        _encodable(events)


LONE = {  # pieces -> what is shown
    "lone-high": (["a\ud83d", "b"], "a\ufffdb"),
    "lone-low": (["a", "\ude00b"], "a\ufffdb"),
    "high-at-the-end": (["a", "b\ud83d"], "ab\ufffd"),
    "two-highs": (["\ud83d", "\ud83d\ude00"], "\ufffd\U0001F600"),
}


@pytest.mark.parametrize("case", list(LONE))
async def test_workers_ai_makes_a_lone_half_the_replacement_character(case: str) -> None:
    pieces, expected = LONE[case]
    events = await _local_chat(_workers_ai_stream(pieces, "response"))
    assert _text(events) == expected and events[-1].text == expected
    _encodable(events)


@pytest.mark.parametrize("shape", ["response", "choices"])
async def test_a_whole_workers_ai_answer_is_repaired(shape: str) -> None:
    text = "x\ud83d\ude00y\ud83dz\ude00"
    result = {"response": text} if shape == "response" else {"choices": [{"message": {"content": text}}]}
    body = json.dumps({"result": result, "success": True, "errors": []}).encode()
    events = await _local_chat(body, "application/json")
    assert events[-1].text == "x\U0001F600y\ufffdz\ufffd"
    _encodable(events)


async def _remote_turn(body: bytes, content_type: str = "text/event-stream") -> list:
    with AgentServer(token=REMOTE_TOKEN) as server:
        server.script(Scripted(200, body=body, content_type=content_type))
        async with RemoteAgent(server.url, "alice", token=REMOTE_TOKEN, max_retries=0) as agent:
            return [e async for e in agent.send("hi")]


def _agent_stream(pieces: list[str], done_message: str | None) -> bytes:
    events = b"".join(f"event: delta\ndata: {json.dumps({'text': p})}\n\n".encode() for p in pieces)
    done = {"messageCount": 2} if done_message is None else {"message": done_message, "messageCount": 2}
    return events + f"event: done\ndata: {json.dumps(done)}\n\n".encode()


async def test_an_agent_stream_joins_a_pair_split_at_every_position() -> None:
    for at in SPLITS:
        u = units(TEXT)
        events = await _remote_turn(_agent_stream(["".join(u[:at]), "".join(u[at:])], None))
        assert _text(events) == TEXT, at
        assert isinstance(events[-1], Done) and events[-1].message.content == TEXT
        _encodable(events)


@pytest.mark.parametrize("case", list(LONE))
async def test_an_agent_stream_makes_a_lone_half_the_replacement_character(case: str) -> None:
    pieces, expected = LONE[case]
    events = await _remote_turn(_agent_stream(pieces, "".join(pieces)))
    assert _text(events) == expected and events[-1].message.content == expected
    _encodable(events)


async def test_an_agents_whole_answer_and_history_are_repaired() -> None:
    body = json.dumps({"message": "x\ud83d\ude00\ud83d", "messageCount": 2}).encode()
    events = await _remote_turn(body, "application/json")
    assert events[-1].message.content == "x\U0001F600\ufffd"
    history = json.dumps({"messages": [{"role": "user", "content": "q\ude00", "time": "t\ud83d"},
                                       {"role": "assistant", "content": "\ud83d\ude00", "model": "m\ud83d"}]})
    with AgentServer(token=REMOTE_TOKEN) as server:
        server.script(Scripted(200, body=history.encode(), route="/api/history", method="GET"))
        async with RemoteAgent(server.url, "alice", token=REMOTE_TOKEN) as agent:
            messages = await agent.history()
    assert [(m.content, m.time, m.model) for m in messages] == [("q\ufffd", "t\ufffd", None),
                                                                ("\U0001F600", "", "m\ufffd")]


def _encodable(events: list) -> None:
    for event in events:
        text = getattr(event, "text", None) or getattr(getattr(event, "message", None), "content", "")
        text.encode("utf-8")  # a lone half would raise here, as it does when printed or saved


@pytest.mark.parametrize("mode", ["local", "remote"])
def test_one_shot_prints_and_saves_a_split_emoji_and_history_reads_it(mode: str, workspace) -> None:
    u = units(TEXT)
    pieces = ["".join(u[:4]), "".join(u[4:])]  # through the middle of the first pair
    if mode == "local":
        with FakeWorkersAI(token=TOKEN, account_id=ACCOUNT) as fake:
            fake.enqueue(ErrorReply(200, body=_workers_ai_stream(pieces, "response"),
                                    content_type="text/event-stream"))
            env = workspace.local_env(fake.api_base, EDGECHAT_MAX_RETRIES="0")
            run = run_edgechat(["--user", "emoji", "-m", "hello", "--json"], env)
            shown = run_edgechat(["history", "--user", "emoji", "--format", "json"], env)
    else:
        with AgentServer(token=REMOTE_TOKEN) as server:
            server.script(Scripted(200, body=_agent_stream(pieces, None), content_type="text/event-stream"))
            env = workspace.remote_env(server.url)
            run = run_edgechat(["--user", "emoji", "-m", "hello", "--json"], env)
    assert run.returncode == 0, run.stderr
    assert b"Traceback" not in run.stderr, run.stderr
    reported = json.loads(run.stdout.decode().strip().splitlines()[-1])
    assert TEXT in json.dumps(reported, ensure_ascii=False)
    if mode == "local":
        assert shown.returncode == 0, shown.stderr
        assert TEXT in shown.stdout.decode("utf-8")
