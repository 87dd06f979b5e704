"""End to end: the Python client against our Worker in workerd in each identity mode (issue 12).

- ``token``: a shared token; the client names the user; ``whoami`` says nobody in particular.
- ``user-tokens``: tokens minted with ``worker/scripts/mint-token.mjs``; the client asks ``whoami``,
  shows the verified user, refuses a ``--user`` that differs before sending anything, shows a
  per-user limit with its reset time, and reads a history in pages.
- ``access``: the Worker verifies Access JWTs against a team's keys served here on loopback (an RSA
  key made by Node's crypto, JWTs signed RS256 in Python with integer arithmetic). In front of the
  Worker stands a stand-in for Cloudflare's Access edge (:class:`AccessEdge`): it turns the client's
  ``cf-access-token`` into ``Cf-Access-Jwt-Assertion``, and a service token
  (``CF-Access-Client-Id``/``-Secret``) into a JWT of its own, as Access does.

Skipped when the worker's npm dependencies are not installed (``npm ci`` in worker/).
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.errors import AuthError, QuotaExceeded, UsageError
from tests.conftest import run_cli
from tests.test_worker_e2e import NODE, WorkerProcess, turn
from tests.test_worker_identity_e2e import SIGNING_KEY, mint

SHARED_TOKEN = "e2e-MODES-shared-token-91c4"
AUD = "e2e-aud-3f7a0c"
SERVICE_ID = "edgechat-ci.access"
SERVICE_SECRET = "svc-MODES-secret-6d2b8e"


# --- token -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_worker() -> Iterator[str]:
    server = WorkerProcess("--token", SHARED_TOKEN)
    try:
        yield server.url
    finally:
        server.stop()


async def test_token_mode_the_client_names_the_user(token_worker: str) -> None:
    async with RemoteAgent(token_worker, "bob", token=SHARED_TOKEN) as agent:
        await agent.check()
        assert agent.info.auth_mode == "token"
        assert agent.whoami is not None and agent.whoami.user_id is None
        assert agent.info.user == "bob" and not agent.info.user_verified
        _, done = await turn(agent, "hello from bob")
        assert done.message_count == 2
    async with RemoteAgent(token_worker, "bob", token="not-the-token") as agent:
        with pytest.raises(AuthError) as refused:
            await agent.check()
        assert refused.value.status == 401


# --- user-tokens ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def user_worker() -> Iterator[str]:
    server = WorkerProcess("--var", f"EDGECHAT_SIGNING_KEY={SIGNING_KEY}", "--var", "USER_TURNS_PER_MINUTE=4")
    try:
        yield server.url
    finally:
        server.stop()


async def test_user_tokens_whoami_names_the_user(user_worker: str) -> None:
    async with RemoteAgent(user_worker, "default", user_given=False, token=mint("carol")) as agent:
        status = await agent.check()
        assert "you are carol" in status
        assert agent.info.user == "carol" and agent.info.user_verified
        assert agent.info.auth_mode == "user-tokens"
        assert agent.whoami is not None and agent.whoami.expires_at
        _, done = await turn(agent, "hello, I am carol")
        assert done.message_count == 2
        history = await agent.history()
        assert history is not None and history[0].content == "hello, I am carol"


def test_user_tokens_cli_uses_whoami_and_refuses_another_user(user_worker: str, isolated_env) -> None:
    env = {**isolated_env, "EDGECHAT_REMOTE_URL": user_worker, "EDGECHAT_REMOTE_TOKEN": mint("dora")}
    sent = run_cli(["-m", "hello, I am dora"], env)
    assert sent.returncode == 0, sent.stderr
    refused = run_cli(["--user", "mallory", "-m", "let me in"], env)
    assert refused.returncode == 2, refused.stderr
    assert "mallory" in refused.stderr and "dora" in refused.stderr
    shown = run_cli(["history", "--format", "json"], env)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["userId"] == "dora"
    assert [m["content"] for m in data["messages"] if m["role"] == "user"] == ["hello, I am dora"]
    assert env["EDGECHAT_REMOTE_TOKEN"] not in sent.stdout + sent.stderr + refused.stderr + shown.stdout


async def test_user_tokens_a_mismatch_is_refused_before_sending(user_worker: str) -> None:
    token = mint("erin")
    async with RemoteAgent(user_worker, "mallory", token=token) as agent:
        with pytest.raises(UsageError) as refused:
            await agent.check()
        assert "mallory" in refused.value.message and "erin" in refused.value.message
        with pytest.raises(UsageError):
            await turn(agent, "let me in")
    async with RemoteAgent(user_worker, "erin", token=token) as agent:
        assert await agent.history() == []  # nothing reached erin's conversation either


async def test_user_tokens_a_per_user_limit_shows_when_it_resets(user_worker: str) -> None:
    async with RemoteAgent(user_worker, "default", user_given=False, token=mint("frank")) as agent:
        await agent.check()
        for i in range(4):
            await turn(agent, f"turn {i}")
        started = time.monotonic()
        with pytest.raises(QuotaExceeded) as limited:
            await turn(agent, "one too many")
        assert time.monotonic() - started < 5  # not retried: the limit holds for most of a minute
        assert "turns for this minute" in limited.value.message
        reset_at = limited.value.reset_at  # the Worker's resetAt, shown in local time
        assert reset_at is not None and 0 < reset_at.timestamp() - time.time() <= 61
        assert f"resets at {reset_at.astimezone().strftime('%H:%M:%S')}" in limited.value.message
        history = await agent.history()
        assert history is not None and len(history) == 8


async def test_user_tokens_history_in_pages(user_worker: str) -> None:
    async with RemoteAgent(user_worker, "default", user_given=False, token=mint("gina")) as agent:
        await agent.check()
        assert agent.capabilities is not None and "history-pages" in agent.capabilities.names
        for i in range(4):
            await turn(agent, f"page turn {i}")
        agent.history_page_limit = 3
        history = await agent.history()
    assert history is not None
    assert [m.content for m in history if m.role == "user"] == [f"page turn {i}" for i in range(4)]
    assert len(history) == 8


# --- access -----------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


class RsaKey:
    """An RSA key made by Node's crypto; RS256 signatures with Python's integers (RFC 8017 PKCS #1 v1.5)."""

    _SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")

    def __init__(self, kid: str) -> None:
        assert NODE is not None
        made = subprocess.run([NODE, "-e", "const {generateKeyPairSync} = require('node:crypto');"
                               "const {privateKey} = generateKeyPairSync('rsa', {modulusLength: 2048});"
                               "console.log(JSON.stringify(privateKey.export({format: 'jwk'})))"],
                              capture_output=True, text=True, check=True, timeout=60)
        jwk = json.loads(made.stdout)
        self.kid = kid
        self.public = {"kty": "RSA", "n": jwk["n"], "e": jwk["e"], "kid": kid, "alg": "RS256", "use": "sig"}
        self._n, self._d = _unb64(jwk["n"]), _unb64(jwk["d"])

    def sign(self, claims: dict) -> str:
        head = _b64(json.dumps({"alg": "RS256", "kid": self.kid, "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims).encode())
        size = (self._n.bit_length() + 7) // 8
        digest = self._SHA256_PREFIX + hashlib.sha256(f"{head}.{body}".encode()).digest()
        encoded = b"\x00\x01" + b"\xff" * (size - len(digest) - 3) + b"\x00" + digest
        signature = pow(int.from_bytes(encoded, "big"), self._d, self._n).to_bytes(size, "big")
        return f"{head}.{body}.{_b64(signature)}"


class TeamKeys(ThreadingHTTPServer):
    """The team domain's ``/cdn-cgi/access/certs`` on loopback."""

    def __init__(self, key: RsaKey) -> None:
        keys = json.dumps({"keys": [key.public]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = (200, keys) if self.path.startswith("/cdn-cgi/access/certs") else (404, b"{}")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.daemon_threads = True
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class AccessEdge:
    """What Cloudflare Access does in front of the Worker, as far as the client can tell: a user's
    ``cf-access-token`` goes on as ``Cf-Access-Jwt-Assertion``; a known service token becomes a JWT
    naming it (``common_name``); anything else is refused with 403 (Access's own page). HTTP/1.1 with
    Content-Length bodies (what edgechat sends); answers are passed back byte for byte."""

    def __init__(self, upstream: str, key: RsaKey, issuer: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port.split("/")[0]))
        self.key, self.issuer = key, issuer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.seen: list[dict[str, str]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        server = socket.create_connection(self.upstream)

        def answers() -> None:
            try:
                while data := server.recv(65536):
                    client.sendall(data)
            except OSError:
                pass
            finally:
                client.close()

        threading.Thread(target=answers, daemon=True).start()
        reader = client.makefile("rb")
        try:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = reader.read(int(headers.get("content-length", "0")))
                self.seen.append(headers)
                kept = [line for line in lines[1:] if line and line.split(":", 1)[0].strip().lower() not in (
                    "cf-access-token", "cf-access-client-id", "cf-access-client-secret",
                    "cf-access-jwt-assertion")]
                jwt = headers.get("cf-access-token")
                if headers.get("cf-access-client-id") == SERVICE_ID \
                        and headers.get("cf-access-client-secret") == SERVICE_SECRET:
                    now = int(time.time())
                    jwt = self.key.sign({"iss": self.issuer, "aud": [AUD], "iat": now, "nbf": now,
                                         "exp": now + 3600, "common_name": SERVICE_ID, "type": "app"})
                if jwt is None and lines[0].split(" ")[1] != "/":
                    page = b"<html><title>Forbidden</title>Access denied</html>"
                    client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: "
                                   + str(len(page)).encode() + b"\r\n\r\n" + page)
                    continue
                if jwt is not None:
                    kept.append(f"Cf-Access-Jwt-Assertion: {jwt}")
                server.sendall(("\r\n".join([lines[0], *kept]) + "\r\n\r\n").encode("latin-1") + body)
        except OSError:
            pass
        finally:
            server.close()


@pytest.fixture(scope="module")
def access_setup() -> Iterator[tuple[str, RsaKey, str]]:
    key = RsaKey("e2e-key-1")
    team = TeamKeys(key)
    worker = WorkerProcess("--var", f"ACCESS_TEAM_DOMAIN={team.origin}", "--var", f"ACCESS_AUD={AUD}")
    edge = AccessEdge(worker.url, key, team.origin)
    try:
        yield edge.url, key, team.origin
    finally:
        edge.close()
        worker.stop()
        team.shutdown()


def _user_jwt(key: RsaKey, issuer: str, email: str, *, lifetime: int = 3600) -> str:
    now = int(time.time())
    return key.sign({"iss": issuer, "aud": [AUD], "iat": now, "nbf": now, "exp": now + lifetime,
                     "email": email, "type": "app", "sub": "0d1f"})


def _command_printing(tmp_path: Path, token: str) -> str:
    path = tmp_path / "access-token.txt"
    path.write_text(token)
    return f"{sys.executable} -c \"import sys; print(open(sys.argv[1]).read())\" {path}"


async def test_access_a_users_token_from_the_command(access_setup, tmp_path: Path) -> None:
    url, key, issuer = access_setup
    command = _command_printing(tmp_path, _user_jwt(key, issuer, "Hanna@Example.com"))
    async with RemoteAgent(url, "default", user_given=False, access_token_command=command) as agent:
        await agent.check()
        assert agent.info.auth_mode == "access" and agent.info.user_verified
        assert agent.info.user.startswith("hanna_example.com-")
        _, done = await turn(agent, "hello from hanna")
        assert done.message_count == 2
    async with RemoteAgent(url, "mallory", access_token_command=command) as agent:
        with pytest.raises(UsageError) as refused:
            await agent.check()
        assert "mallory" in refused.value.message and "hanna_example.com-" in refused.value.message


async def test_access_a_service_token(access_setup) -> None:
    url, _key, _issuer = access_setup
    async with RemoteAgent(url, "default", user_given=False, access_client_id=SERVICE_ID,
                           access_client_secret=SERVICE_SECRET) as agent:
        await agent.check()
        assert agent.info.user_verified and agent.info.user.startswith("service-edgechat-ci.access-")
        await turn(agent, "hello from the pipeline")
    async with RemoteAgent(url, "default", user_given=False, access_client_id=SERVICE_ID,
                           access_client_secret="wrong-secret-000") as agent:
        with pytest.raises(AuthError):
            await agent.check()


async def test_access_an_expired_token_is_refused_clearly(access_setup, tmp_path: Path) -> None:
    url, key, issuer = access_setup
    command = _command_printing(tmp_path, _user_jwt(key, issuer, "ivan@example.com", lifetime=-600))
    async with RemoteAgent(url, "default", user_given=False, access_token_command=command) as agent:
        with pytest.raises(AuthError) as refused:
            await agent.check()
    assert refused.value.status == 401 and "access" in str(refused.value).lower()
