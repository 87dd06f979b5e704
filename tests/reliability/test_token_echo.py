"""A server's error text that echoes the token never prints any of it, however the echo is written.

The token echoed whole, split by a line break, by spaces between every character, percent-encoded,
JSON-escaped character by character in a plain-text body, straddling the point where the message is
shortened, and in fragments (12 and 20 characters of it). Each echo is sent by a loopback server as
its error text: Workers AI's JSON envelope (local mode), and an agent endpoint's JSON error, plain
text error and SSE error event (remote mode). No run of 8 or more of the token's characters, in order,
may survive in the error's message, hint or repr, even with the white space taken out and escapes
decoded.
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

import pytest

from edgechat_tui.backends.local.workers_ai import WorkersAIClient
from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.errors import EdgechatError
from tests.fakes.agent_server import AgentServer, ScriptedStream
from tests.fakes.seed_server import Scripted
from tests.fakes.workers_ai import DEFAULT_MODEL, ErrorReply, FakeWorkersAI
from tests.reliability.harness import ACCOUNT, REMOTE_TOKEN, TOKEN


def _echoes(token: str) -> dict[str, str]:
    padding = "word " * 60
    return {
        "whole": f"invalid token {token} given",
        "line-break": f"invalid token {token[:11]}\n{token[11:]} given",
        "crlf-twice": f"token: {token[:6]}\r\n{token[6:20]}\r\n{token[20:]}",
        "spaces": "token " + " ".join(token),
        "tabs": f"token {token[:15]}\t\t{token[15:]}",
        "percent-encoded": "token=" + "".join(f"%{b:02X}" for b in token.encode()),
        "json-escaped": "token " + "".join(f"\\u{ord(c):04x}" for c in token),
        "json-newline-escape": f"token {token[:9]}\\n{token[9:]}",
        **{f"at-the-cut-{n}": padding[:n] + token for n in (170, 185, 195, 270, 285, 295)},
        "fragment-head": f"token starts {token[:12]} and so on",
        "fragment-middle": f"we saw ...{token[6:26]}...",
    }


def _leaks(error: BaseException, token: str) -> list[str]:
    """Runs of 8 characters of ``token`` found in what the error shows, however spaced or escaped."""
    assert isinstance(error, EdgechatError), repr(error)
    shown = f"{error.message} {error.hint or ''} {error!r}"
    variants = [shown, re.sub(r"\s+", "", shown), re.sub(r"\s+", "", unquote(shown)),
                re.sub(r"\s+", "", re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), shown))]
    grams = {token[i:i + 8] for i in range(len(token) - 7)}
    return sorted({g for g in grams for text in variants if g in text})


CASES = list(_echoes("T"))


@pytest.mark.parametrize("case", CASES)
async def test_workers_ai_error_text_never_shows_the_api_token(case: str) -> None:
    echo = _echoes(TOKEN)[case]
    with FakeWorkersAI(token=TOKEN, account_id=ACCOUNT) as fake:
        fake.enqueue(ErrorReply(400, 5006, echo),
                     ErrorReply(502, body=echo.encode(), content_type="text/plain"))
        async with WorkersAIClient(account_id=ACCOUNT, api_token=TOKEN, api_base=fake.api_base,
                                   max_retries=0) as client:
            for _ in range(2):
                try:
                    async for _event in client.chat([{"role": "user", "content": "hi"}], model=DEFAULT_MODEL,
                                                    max_tokens=5, temperature=None, session_id=None):
                        pass
                except EdgechatError as error:
                    assert not _leaks(error, TOKEN), (str(error), _leaks(error, TOKEN))
                else:
                    raise AssertionError("no error")


@pytest.mark.parametrize("case", CASES)
async def test_an_agents_error_text_never_shows_the_bearer_token(case: str) -> None:
    echo = _echoes(REMOTE_TOKEN)[case]
    with AgentServer(token=REMOTE_TOKEN) as server:
        server.script(Scripted.json(400, {"error": echo, "details": echo}),
                      Scripted.text(500, echo),
                      ScriptedStream(error_event={"error": echo, "code": "internal"}, error_after=1))
        async with RemoteAgent(server.url, "alice", token=REMOTE_TOKEN, max_retries=0) as agent:
            for _ in range(3):
                try:
                    async for _event in agent.send("hi"):
                        pass
                except EdgechatError as error:
                    assert not _leaks(error, REMOTE_TOKEN), (str(error), _leaks(error, REMOTE_TOKEN))
                else:
                    raise AssertionError("no error")


def test_the_masking_keeps_the_rest_of_the_text() -> None:
    from edgechat_tui.http.text import MASK, Redactor, shown

    redactor = Redactor([REMOTE_TOKEN])
    text = shown(f"bad token {REMOTE_TOKEN[:10]}\n{REMOTE_TOKEN[10:]} here", 300, redactor)
    assert text == f"bad token {MASK} here"
    assert shown("nothing secret in here", 300, redactor) == "nothing secret in here"
    assert json.dumps(repr(redactor)).count("RELIABILITY") == 0
