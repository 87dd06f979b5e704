"""End to end: today's client against our Worker in identity mode ``user-tokens`` (issue 12).

The Worker runs in workerd as in test_worker_e2e.py, with a signing key; tokens come from
``worker/scripts/mint-token.mjs``. The client does not know the mode yet: it sends its token and its
``--user`` as before, which works when the user is the token's, and is refused (403) otherwise.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.errors import AuthError
from tests.test_worker_e2e import NODE, WORKER, WorkerProcess, turn

SIGNING_KEY = "e2e-signing-key-7c1d9a0b3e5f4a6c8d2e0f1a"


@pytest.fixture(scope="module")
def per_user_worker() -> Iterator[str]:
    server = WorkerProcess("--var", f"EDGECHAT_SIGNING_KEY={SIGNING_KEY}")
    try:
        yield server.url
    finally:
        server.stop()


def mint(user: str) -> str:
    assert NODE is not None
    done = subprocess.run([NODE, "scripts/mint-token.mjs", "--user", user, "--days", "1"], cwd=WORKER,
                          env={**os.environ, "EDGECHAT_SIGNING_KEY": SIGNING_KEY},
                          capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip().splitlines()[-1]


async def test_todays_client_works_with_its_own_per_user_token(per_user_worker):
    token = mint("alice")
    async with RemoteAgent(per_user_worker, "alice", token=token) as agent:
        await agent.check()
        assert agent.capabilities is not None and agent.capabilities.auth
        _, done = await turn(agent, "hello, I am alice")
        assert done.message_count == 2
        history = await agent.history()
        assert history is not None and history[0].content == "hello, I am alice"


async def test_todays_client_is_refused_another_users_conversation(per_user_worker):
    token = mint("mallory")
    async with RemoteAgent(per_user_worker, "alice", token=token) as agent:
        with pytest.raises(AuthError) as refused:
            await turn(agent, "let me in")
        assert refused.value.status == 403
        assert token not in str(refused.value)
    async with RemoteAgent(per_user_worker, "mallory", token="ec1.forged.token") as agent:
        with pytest.raises(AuthError):
            await turn(agent, "let me in")
