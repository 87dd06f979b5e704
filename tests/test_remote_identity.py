"""The client side of issue 12 against the fake agent: identity modes, whoami, --user agreement,
idempotency keys and when they allow a retry, per-user limits and the identity errors, the Access
credentials (service token, token command), and history pages."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.backends.remote.capabilities import Capabilities
from edgechat_tui.backends.remote.errors import describe_reset
from edgechat_tui.backends.remote.identity import jwt_expiry
from edgechat_tui.config.settings import OPTIONS, load_settings
from edgechat_tui.core.errors import (
    AuthError,
    ConnectionFailed,
    ProtocolError,
    QuotaExceeded,
    ServerError,
    UsageError,
)
from edgechat_tui.core.messages import Done, Event, Retrying, TextDelta
from tests.conftest import run_cli
from tests.fakes.agent_server import AgentServer, ScriptedStream, error_answer
from tests.fakes.seed_server import Scripted

TOKEN = "idtok-7f3a91c2d4e5b6a8"


async def turn(agent: RemoteAgent, text: str) -> list[Event]:
    return [event async for event in agent.send(text)]


def jwt(payload: dict) -> str:
    import base64

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(payload)}.c2lnbmF0dXJl"


# --- the health answer --------------------------------------------------------------------------


@pytest.mark.parametrize(("health", "mode"), [
    ({"status": "ok"}, "none"),  # the seed
    ({"status": "ok", "protocol": 1, "capabilities": [], "auth": True}, "token"),
    ({"status": "ok", "protocol": 1, "capabilities": [], "auth": False}, "none"),
    ({"status": "ok", "protocol": 2, "auth": True, "authMode": "user-tokens"}, "user-tokens"),
    ({"status": "ok", "protocol": 2, "auth": True, "authMode": "access"}, "access"),
    ({"status": "ok", "protocol": 2, "auth": True, "authMode": "passkeys"}, "passkeys"),
    ({"status": "ok", "protocol": 2, "auth": True, "authMode": 7}, "token"),
])
def test_the_identity_mode_is_read_from_authmode_else_auth(health: dict, mode: str) -> None:
    caps = Capabilities.from_health(health)
    assert caps.auth_mode == mode
    assert caps.verifies_user == (mode in ("user-tokens", "access"))


# --- whoami and --user ------------------------------------------------------------------------------


async def test_whoami_names_the_user_when_none_was_given() -> None:
    with AgentServer(whoami_user="alice", token=TOKEN) as server:
        async with RemoteAgent(server.url, "default", user_given=False, token=TOKEN) as agent:
            status = await agent.check()
            assert "you are alice" in status
            assert agent.info.user == "alice" and agent.info.user_verified
            assert agent.info.auth_mode == "user-tokens"
            events = await turn(agent, "hello")
        assert isinstance(events[-1], Done)
        chat = [r for r in server.requests if r.path == "/api/chat"]
        assert chat[0].json().get("userId") in (None, "alice")
        assert server.messages("alice")[0]["content"] == "hello"


async def test_a_given_user_that_agrees_is_used() -> None:
    with AgentServer(whoami_user="alice", token=TOKEN) as server:
        async with RemoteAgent(server.url, "alice", user_given=True, token=TOKEN) as agent:
            await agent.check()
            assert agent.info.user == "alice" and agent.info.user_verified
            await turn(agent, "hi")
        assert server.count() == 1


async def test_a_given_user_that_differs_is_refused_before_anything_is_sent() -> None:
    with AgentServer(whoami_user="alice", token=TOKEN) as server:
        async with RemoteAgent(server.url, "bob", user_given=True, token=TOKEN) as agent:
            with pytest.raises(UsageError) as refused:
                await agent.check()
            assert "bob" in refused.value.message and "alice" in refused.value.message
            assert refused.value.exit_code == 2
            with pytest.raises(UsageError):
                await turn(agent, "hi")
            with pytest.raises(UsageError):
                await agent.history()
        assert server.count() == 0
        assert not [r for r in server.requests if r.path not in ("/", "/api/whoami")]


def test_cli_user_mismatch_exits_2_naming_both_and_sends_nothing(isolated_env) -> None:
    with AgentServer(whoami_user="alice", token=TOKEN) as server:
        env = {**isolated_env, "EDGECHAT_REMOTE_URL": server.url, "EDGECHAT_REMOTE_TOKEN": TOKEN}
        refused = run_cli(["--user", "bob", "-m", "hello"], env)
        assert refused.returncode == 2, refused.stderr
        assert "bob" in refused.stderr and "alice" in refused.stderr
        assert server.count() == 0
        ok = run_cli(["-m", "hello"], env)
        assert ok.returncode == 0, ok.stderr
        shown = run_cli(["history", "--format", "json"], env)
        assert json.loads(shown.stdout)["userId"] == "alice"


async def test_without_identity_whoami_changes_nothing() -> None:
    with AgentServer(capabilities=("stream", "history", "reset", "whoami")) as server:
        server.script(Scripted.json(200, {"userId": None, "auth": "none"}, route="/api/whoami", method="GET"))
        async with RemoteAgent(server.url, "bob", user_given=True) as agent:
            await agent.check()
            assert agent.info.user == "bob" and not agent.info.user_verified
            await turn(agent, "hi")
        assert server.messages("bob")


# --- idempotency ---------------------------------------------------------------------------------


async def test_every_attempt_of_a_turn_carries_its_key_and_a_new_turn_a_new_one() -> None:
    with AgentServer(capabilities=("stream", "idempotency")) as server:
        server.script(error_answer("rate_limited", retry_after=0))
        async with RemoteAgent(server.url, "alice", retry_delay=0.01) as agent:
            await agent.check()
            await turn(agent, "one")
            await turn(agent, "two")
        keys = [r.headers.get("idempotency-key") for r in server.requests if r.path == "/api/chat"]
    assert len(keys) == 3 and keys[0] == keys[1] != keys[2]
    assert all(key and 1 <= len(key) <= 255 and all("!" <= c <= "~" for c in key) for key in keys)


async def test_with_idempotency_a_lost_connection_after_sending_is_retried() -> None:
    with AgentServer(capabilities=("stream", "idempotency")) as server:
        server.script(ScriptedStream(cut_after=0))
        async with RemoteAgent(server.url, "alice", retry_delay=0.01) as agent:
            await agent.check()
            events = await turn(agent, "hello")
        assert isinstance(events[-1], Done)
        assert any(isinstance(e, Retrying) for e in events)
        assert server.count() == 2


async def test_without_idempotency_a_lost_connection_is_not_retried() -> None:
    with AgentServer(capabilities=("stream",)) as server:
        server.script(ScriptedStream(cut_after=0))
        async with RemoteAgent(server.url, "alice", retry_delay=0.01) as agent:
            await agent.check()
            with pytest.raises(ConnectionFailed):
                await turn(agent, "hello")
        assert server.count() == 1


async def test_a_replay_after_text_shows_the_reply_once() -> None:
    with AgentServer(capabilities=("stream", "idempotency")) as server:
        whole = "one two three four"
        server.script(ScriptedStream(cut_after=2, reply=whole),
                      Scripted.json(200, {"message": whole, "messageCount": 2, "replayed": True}))
        async with RemoteAgent(server.url, "alice", retry_delay=0.01) as agent:
            await agent.check()
            events = await turn(agent, "count")
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    done = events[-1]
    assert isinstance(done, Done) and done.replayed
    assert text == whole == done.message.content


# --- the errors of identity and limits --------------------------------------------------------------


async def test_a_per_user_limit_says_when_it_resets_and_is_not_retried() -> None:
    reset = (datetime.now(UTC) + timedelta(hours=2, minutes=5, seconds=30)).replace(microsecond=0)
    with AgentServer() as server:
        server.script(Scripted.json(429, {
            "error": "You have used your tokens for today.", "code": "quota_exceeded",
            "details": "200412 of 200000 tokens used this UTC day", "limit": "daily_tokens",
            "resetAt": reset.isoformat().replace("+00:00", "Z"), "retryAfter": 7500},
            headers={"Retry-After": "7500"}))
        async with RemoteAgent(server.url, "alice", retry_delay=0.01) as agent:
            with pytest.raises(QuotaExceeded) as limited:
                await turn(agent, "hi")
        assert server.count() == 1
    local = reset.astimezone().strftime("%H:%M")
    assert "tokens for today" in limited.value.message
    # "at 14:17", or "at Wed 02 Dec 00:17" when that is tomorrow: the time of day either way.
    assert "resets at " in limited.value.message and f"{local} (" in limited.value.message
    assert "in 2 h 5 min" in limited.value.message


def test_describe_reset_names_the_day_when_it_is_not_today() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert "in 1 h 0 min" in describe_reset(now + timedelta(hours=1), now)
    assert describe_reset(now + timedelta(days=2), now).startswith("at " + (now + timedelta(days=2))
                                                                  .astimezone().strftime("%a"))


async def test_forbidden_says_whose_the_credential_is() -> None:
    with AgentServer(whoami_user="alice", token=TOKEN) as server:
        async with RemoteAgent(server.url, "default", user_given=False, token=TOKEN) as agent:
            await agent.check()
            server.script(error_answer("forbidden", "not yours", status=403, route="/api/history",
                                       method="GET"))
            with pytest.raises(AuthError) as refused:
                await agent.history()
    assert "another user's conversation" in refused.value.message
    assert "alice" in refused.value.message


async def test_misconfigured_says_the_operator_must_act_and_is_not_retried() -> None:
    with AgentServer() as server:
        server.script(error_answer("misconfigured", "The agent is misconfigured", status=500,
                                   details="EDGECHAT_TOKEN is set but empty", route="/", method="GET"))
        async with RemoteAgent(server.url, "alice") as agent:
            with pytest.raises(ServerError) as broken:
                await agent.check()
    assert "misconfigured" in broken.value.message
    assert broken.value.hint and "operator" in broken.value.hint


async def test_unavailable_is_retried_after_the_time_asked() -> None:
    with AgentServer() as server:
        server.script(error_answer("unavailable", "Cannot verify credentials", status=503, retry_after=0))
        async with RemoteAgent(server.url, "alice", retry_delay=0.01) as agent:
            events = await turn(agent, "hi")
        assert isinstance(events[-1], Done) and server.count() == 2
        retry = next(e for e in events if isinstance(e, Retrying))
        assert "credentials" in retry.reason


# --- Access credentials ---------------------------------------------------------------------------


def _command(tmp_path: Path, tokens: list[str], *, fail: bool = False) -> tuple[str, Path]:
    """A token command printing the next of ``tokens`` each run; counts its runs in a file."""
    runs = tmp_path / "runs"
    script = tmp_path / "token.py"
    script.write_text(
        "import pathlib, sys\n"
        f"runs = pathlib.Path({str(runs)!r})\n"
        "n = int(runs.read_text()) if runs.exists() else 0\n"
        "runs.write_text(str(n + 1))\n"
        f"tokens = {tokens!r}\n"
        + ("sys.stderr.write('not signed in to Access\\n'); sys.exit(3)\n" if fail else "")
        + "print(tokens[min(n, len(tokens) - 1)])\n")
    return f"{sys.executable} {script}", runs


async def test_the_service_token_goes_in_the_access_headers() -> None:
    with AgentServer() as server:
        async with RemoteAgent(server.url, "alice", access_client_id="abc.access",
                               access_client_secret="svc-secret-1234567890") as agent:
            await agent.check()
            await turn(agent, "hi")
        chat = next(r for r in server.requests if r.path == "/api/chat")
        health = next(r for r in server.requests if r.path == "/")
    assert chat.headers["cf-access-client-id"] == "abc.access"
    assert chat.headers["cf-access-client-secret"] == "svc-secret-1234567890"
    assert "cf-access-client-secret" not in health.headers


async def test_the_token_command_runs_once_while_its_token_is_valid(tmp_path: Path) -> None:
    valid = jwt({"exp": int(datetime.now(UTC).timestamp()) + 3600, "email": "a@example.com"})
    command, runs = _command(tmp_path, [valid])
    with AgentServer() as server:
        async with RemoteAgent(server.url, "alice", access_token_command=command) as agent:
            await agent.check()
            await turn(agent, "one")
            await turn(agent, "two")
            await agent.history()
        sent = [r.headers.get("cf-access-token") for r in server.requests if r.path != "/"]
    assert sent == [valid, valid, valid]
    assert runs.read_text() == "1"


async def test_an_expired_token_and_a_401_run_the_command_again(tmp_path: Path) -> None:
    expired = jwt({"exp": int(datetime.now(UTC).timestamp()) - 10})
    fresh = jwt({"exp": int(datetime.now(UTC).timestamp()) + 3600, "n": 2})
    newer = jwt({"exp": int(datetime.now(UTC).timestamp()) + 3600, "n": 3})
    command, runs = _command(tmp_path, [expired, fresh, newer])
    with AgentServer() as server:
        async with RemoteAgent(server.url, "alice", access_token_command=command) as agent:
            await turn(agent, "one")  # the expired token is fetched again before the next request
            server.script(error_answer("unauthorized", "Access token expired"))
            await turn(agent, "two")  # refused once: the command runs again and the turn is sent again
        sent = [r.headers.get("cf-access-token") for r in server.requests if r.path == "/api/chat"]
    assert sent == [expired, fresh, newer]
    assert runs.read_text() == "3"
    assert server.messages("alice")[-2]["content"] == "two"


async def test_a_failing_token_command_is_a_clear_error_without_its_output(tmp_path: Path) -> None:
    command, _runs = _command(tmp_path, ["never-shown-token-value-123"], fail=True)
    with AgentServer() as server:
        async with RemoteAgent(server.url, "alice", access_token_command=command) as agent:
            with pytest.raises(AuthError) as failed:
                await turn(agent, "hi")
        assert server.count() == 0
    assert "exit status 3" in failed.value.message and "not signed in" in failed.value.message
    assert "never-shown" not in str(failed.value)


async def test_the_token_command_is_not_run_by_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    command = f"{sys.executable} -c 'print(1)' ; touch {marker}"
    with AgentServer() as server:
        async with RemoteAgent(server.url, "alice", access_token_command=command, max_retries=0) as agent:
            await turn(agent, "hi")  # python prints 1 and ignores the other words: that is the token
        assert next(r for r in server.requests if r.path == "/api/chat").headers["cf-access-token"] == "1"
    assert not marker.exists()


def test_jwt_expiry_reads_exp_without_verifying() -> None:
    assert jwt_expiry(jwt({"exp": 1700000000})) == 1700000000
    assert jwt_expiry("not-a-jwt") is None
    assert jwt_expiry("a.!!!.c") is None
    assert jwt_expiry(jwt({"sub": "x"})) is None


def test_access_settings_are_options_and_the_secret_is_hidden(tmp_path: Path) -> None:
    assert OPTIONS["access_client_secret"].secret
    assert not OPTIONS["access_client_id"].secret
    settings = load_settings(config_path=tmp_path / "c.toml", env={
        "EDGECHAT_ACCESS_CLIENT_ID": "abc.access", "EDGECHAT_ACCESS_CLIENT_SECRET": "s3cr3t-value-xyz",
        "EDGECHAT_ACCESS_TOKEN_COMMAND": "cloudflared access token -app=https://chat.example.com"})
    assert settings.access_client_id == "abc.access"
    assert "s3cr3t" not in repr(settings.values)
    with pytest.raises(Exception, match="split"):
        load_settings(config_path=tmp_path / "c.toml", env={"EDGECHAT_ACCESS_TOKEN_COMMAND": "cmd 'unclosed"})


def test_half_a_service_token_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="access_client_secret"):
        RemoteAgent("http://127.0.0.1:9", "alice", access_client_id="abc.access")


# --- history pages --------------------------------------------------------------------------------


def _fill(server: AgentServer, user: str, turns: int) -> None:
    for i in range(turns):
        server.store_turn(user, f"question {i}", f"answer {i}")


async def test_history_pages_are_followed_to_the_first_message() -> None:
    with AgentServer(capabilities=("stream", "history", "history-pages"), page_size=3) as server:
        _fill(server, "alice", 10)
        async with RemoteAgent(server.url, "alice") as agent:
            history = await agent.history()
        pages = [r for r in server.requests if r.path == "/api/history"]
    assert history is not None
    assert [m.content for m in history] == [t for i in range(10) for t in (f"question {i}", f"answer {i}")]
    assert len(pages) == 7


async def test_cursors_are_not_followed_without_the_capability() -> None:
    with AgentServer(capabilities=("stream", "history")) as server:
        page = {"userId": "alice", "messageCount": 4, "previous": "c2",
                "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
        server.script(Scripted.json(200, page, route="/api/history", method="GET"))
        async with RemoteAgent(server.url, "alice") as agent:
            history = await agent.history()
        assert history is not None and len(history) == 2
        assert len([r for r in server.requests if r.path == "/api/history"]) == 1


async def test_history_pages_are_bounded_with_a_clear_error() -> None:
    with AgentServer(capabilities=("stream", "history", "history-pages"), page_size=3) as server:
        _fill(server, "alice", 10)
        async with RemoteAgent(server.url, "alice") as agent:
            agent.max_history_pages = 2
            with pytest.raises(ProtocolError, match="more than 2 pages"):
                await agent.history()
            agent.max_history_pages, agent.max_history_bytes = 1000, 300
            with pytest.raises(ProtocolError, match="larger than"):
                await agent.history()
    looping = AgentServer(capabilities=("stream", "history", "history-pages"), page_size=3, cursor_loop=True)
    with looping as server:
        _fill(server, "alice", 10)
        async with RemoteAgent(server.url, "alice") as agent:
            with pytest.raises(ProtocolError, match="already read"):
                await agent.history()
