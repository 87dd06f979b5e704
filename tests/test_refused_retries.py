"""A refused connection (nothing listening) is retried soon and briefly, in both modes: the waits
are 0.25, 0.5 and 1 s with the default three retries, so a missing server is reported in under 2 s
and a restarting one (a development server reloading) is reached again. Real refused ports."""

from __future__ import annotations

import pytest

from edgechat_tui.backends.local.workers_ai import WorkersAIClient
from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.errors import ConnectionFailed
from edgechat_tui.core.messages import Retrying
from edgechat_tui.http.retry import REFUSED_FIRST_WAIT, refused_wait
from tests.fakes.raw_server import closed_port


def test_refused_waits_double_from_a_quarter_second_and_never_exceed_the_base():
    assert [refused_wait(n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    assert sum(refused_wait(n) for n in (1, 2, 3)) < 2
    for base in (0.0, 0.01, 0.1, REFUSED_FIRST_WAIT, 1.0, 5.0):
        first = refused_wait(1, base=base)
        assert first == min(base, REFUSED_FIRST_WAIT)
        assert refused_wait(2, base=base) == 2 * first


async def test_the_workers_ai_client_retries_a_refusal_on_the_short_schedule():
    client = WorkersAIClient(account_id="a" * 32, api_token="tok-Zq8", max_retries=3,
                             api_base=f"http://127.0.0.1:{closed_port()}/client/v4")
    waits: list[float] = []
    async with client:
        with pytest.raises(ConnectionFailed) as caught:
            async for event in client.chat([{"role": "user", "content": "hi"}], model="@cf/meta/x",
                                           max_tokens=10, temperature=None, session_id=None):
                if isinstance(event, Retrying):
                    waits.append(event.wait)
                    assert "refused" in event.reason
    assert caught.value.code == "refused"
    assert waits == [0.25, 0.5, 1.0]


async def test_the_remote_agent_retries_a_refusal_on_the_short_schedule():
    waits: list[float] = []
    async with RemoteAgent(f"http://127.0.0.1:{closed_port()}", "alice", max_retries=3) as agent:
        with pytest.raises(ConnectionFailed) as caught:
            async for event in agent.send("hi"):
                if isinstance(event, Retrying):
                    waits.append(event.wait)
    assert caught.value.code == "refused" and "not sent" in (caught.value.hint or "")
    assert waits == [0.25, 0.5, 1.0]
