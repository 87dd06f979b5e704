"""An overall deadline for a reply: a server that keeps the connection alive cannot keep edgechat waiting.

A server that sends a keep-alive comment, an empty text delta, one byte of a line that never ends, or
one byte of an error page, every 50 ms, never trips the read timeout (0.5 s between bytes).
``reply_timeout`` (1 s here) ends the reply anyway: ``edgechat -m`` exits 1 with one clear line
naming the setting, in local and remote mode, having sent the message once; in process the error
is a RequestTimeout with code ``reply_timeout``. ``reply_timeout = 0`` means no limit (the read
timeout still applies to a server that goes silent).
"""

from __future__ import annotations

import time

import pytest

from edgechat_tui.backends.local.workers_ai import WorkersAIClient
from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.config.settings import load_settings
from edgechat_tui.core.errors import RequestTimeout
from tests.fakes.raw_server import RawServer
from tests.reliability.harness import ACCOUNT, TOKEN, cli_unclear_reasons, run_edgechat

KINDS = ["trickle", "trickle-empty", "trickle-bytes", "trickle-error"]


@pytest.mark.parametrize("mode", ["local", "remote"])
@pytest.mark.parametrize("kind", KINDS)
def test_one_shot_ends_at_the_reply_deadline(kind: str, mode: str, workspace) -> None:
    with RawServer(kind) as server:
        timing = {"EDGECHAT_REPLY_TIMEOUT": "1", "EDGECHAT_MAX_RETRIES": "0", "EDGECHAT_READ_TIMEOUT": "0.5",
                  "EDGECHAT_REMOTE_TIMEOUT": "0.5"}
        env = (workspace.local_env(f"{server.url}/client/v4", **timing) if mode == "local"
               else workspace.remote_env(server.url, **timing))
        started = time.monotonic()
        run = run_edgechat(["--user", "alice", "-m", "hello"], env, timeout=60)
        elapsed = time.monotonic() - started
        # The message, sent once; a remote client's health check before it (whoami, idempotency) aside.
        sends = server.requests - server.health_checks
    assert not cli_unclear_reasons(run, exit_code=1, words=("reply_timeout",)), run.stderr
    assert sends == 1
    assert elapsed < 30  # not forever: the deadline, plus the start of a process on a loaded machine


@pytest.mark.parametrize("mode", ["local", "remote"])
async def test_the_deadline_covers_the_whole_reply_and_zero_means_none(mode: str, tmp_path) -> None:
    settings = load_settings(config_path=tmp_path / "c.toml", env={})
    assert settings.reply_timeout == 600.0  # the default
    unlimited = load_settings(config_path=tmp_path / "c.toml", env={"EDGECHAT_REPLY_TIMEOUT": "0"})
    assert unlimited.reply_timeout == 0

    async def reply(base: str, reply_timeout: float) -> BaseException:
        try:
            if mode == "local":
                async with WorkersAIClient(account_id=ACCOUNT, api_token=TOKEN, api_base=f"{base}/client/v4",
                                           read_timeout=0.5, reply_timeout=reply_timeout,
                                           max_retries=0) as client:
                    async for _ in client.chat([{"role": "user", "content": "hi"}], model="@cf/meta/x",
                                               max_tokens=5, temperature=None, session_id=None):
                        pass
            else:
                async with RemoteAgent(base, "alice", timeout=0.5, reply_timeout=reply_timeout,
                                       max_retries=0) as agent:
                    async for _ in agent.send("hi"):
                        pass
        except Exception as exc:  # the point is to see what comes out
            return exc
        raise AssertionError("the reply ended without an error")

    for kind in KINDS:
        with RawServer(kind) as server:
            error = await reply(server.url, 0.6)
        assert isinstance(error, RequestTimeout) and error.code == "reply_timeout", (kind, repr(error))
        assert "within 0.6 s" in error.message and "reply_timeout" in (error.hint or "")
    with RawServer("silent") as server:  # no deadline: the gap between bytes is still timed
        error = await reply(server.url, 0)
    assert isinstance(error, RequestTimeout) and error.code == "timeout", repr(error)
