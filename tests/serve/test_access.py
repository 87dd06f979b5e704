"""Who gets in: a non-loopback bind needs --allow-remote; then no key (or a wrong one) gets 403 and
starts nothing, the page's websocket included; the right key works, by URL then by cookie.

Real ``edgechat serve`` processes on 127.0.0.1 (``--allow-remote`` on a loopback address turns the
key on without listening anywhere else), real HTTP and websockets with aiohttp's client.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aiohttp
import pytest

from tests.fakes.workers_ai import FakeWorkersAI
from tests.serve.harness import ServeProcess, WsSession, alive, cmdline, serve_env


@pytest.fixture
def fake():
    with FakeWorkersAI() as server:
        yield server


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com"])
def test_a_non_loopback_bind_without_allow_remote_is_refused(tmp_path, fake, host):
    result = subprocess.run([sys.executable, "-m", "edgechat_tui", "serve", "--host", host, "--port", "0"],
                            env=serve_env(tmp_path, fake), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""  # no URL: nothing listens
    first = result.stderr.splitlines()[0]
    assert first == f"edgechat: error: Refusing to listen on {host}: it is not a loopback address."
    assert "--allow-remote" in result.stderr


async def _page_status(base: str, path: str = "/", **kw) -> int:
    async with aiohttp.ClientSession() as http, http.get(base + path, allow_redirects=False, **kw) as reply:
        return reply.status


async def _ws_status(base: str, query: str = "", **kw) -> int:
    """The status of a websocket handshake: 101 when it opened (then closed at once)."""
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(base.replace("http:", "ws:") + f"/ws?{query}width=80&height=24", **kw)
        except aiohttp.WSServerHandshakeError as error:
            return error.status
        await ws.close()
        return 101


async def test_without_the_key_every_route_is_403_and_no_app_process_starts(tmp_path, fake):
    serve = ServeProcess(serve_env(tmp_path, fake), "--host", "127.0.0.1", "--allow-remote")
    try:
        key = serve.url.split("?key=", 1)[1]
        assert len(key) >= 43  # secrets.token_urlsafe(32)
        wrong = ("A" if key[0] != "A" else "B") + key[1:]  # one character off
        cookie = f"edgechat_serve_{serve.netloc.rsplit(':', 1)[1]}"
        async with aiohttp.ClientSession() as http:
            for path, headers in [
                ("/", {}),
                (f"/?key={wrong}", {}),
                (f"/?key={key[:-1]}", {}),
                ("/?key=", {}),
                ("/", {"Cookie": f"{cookie}={wrong}"}),
                ("/static/client/js/textual.js", {}),
                ("/static/edgechat/page.js", {"Cookie": f"{cookie}={wrong}"}),
                ("/ws", {}),
            ]:
                async with http.get(serve.base + path, headers=headers, allow_redirects=False) as response:
                    assert response.status == 403, (path, response.status)
                    body = await response.text()
                    assert body.startswith("403 Forbidden") and "textual" not in body
        for headers in [{}, {"Cookie": f"{cookie}={wrong}"}, {"Cookie": f"{cookie}="}]:
            assert await _ws_status(serve.base, headers=headers) == 403
        assert await _ws_status(serve.base, query=f"key={wrong}&") == 403
        assert serve.children() == []  # nothing of the app started

        # The right key: a redirect that sets the cookie, then the page and the websocket by cookie.
        async with aiohttp.ClientSession() as http:
            async with http.get(serve.url, allow_redirects=False) as response:
                assert response.status == 303 and response.headers["Location"] == "/"
                set_cookie = response.headers["Set-Cookie"]
                assert f"{cookie}={key}" in set_cookie
                assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
            by_cookie = {"Cookie": f"{cookie}={key}"}
            async with http.get(serve.base + "/", headers=by_cookie) as response:
                assert response.status == 200
                assert "default-src 'none'" in response.headers["Content-Security-Policy"]
                page = await response.text()
                assert "textual-terminal" in page and "http" not in page.replace("http-equiv", "")
            async with http.get(serve.base + "/static/client/js/textual.js", headers=by_cookie) as response:
                assert response.status == 200
        # Another site's page cannot open the websocket, even with the cookie the browser would send.
        assert await _ws_status(serve.base, headers={**by_cookie, "Origin": "http://evil.example"}) == 403
        assert serve.children() == []

        session = await WsSession.open(serve.base, headers={**by_cookie, "Origin": serve.base})
        try:
            await session.wait_for(b"ready")
            [pid] = serve.children()
            argv = cmdline(pid)
            assert argv[1:4] == ["-m", "edgechat_tui.serve.child", "--user"]
            environ = open(f"/proc/{pid}/environ", "rb").read()
            for secret in (fake.token, key):
                assert secret not in "\0".join(argv)
            assert key.encode() not in environ  # the key stays in serve
        finally:
            await session.close()
        serve.wait_for(lambda: not alive(pid), what="the app process to end with its tab")
    finally:
        status = serve.stop()
    assert status == 0
    # The key was printed once, in the URL on stdout, and nowhere else.
    assert key not in serve.stderr_text()
    assert "".join(serve.stdout_lines).count(key) == 1
    assert "refused GET / from 127.0.0.1: wrong access key" in serve.stderr_text()
    assert "refused GET /ws from 127.0.0.1: no access key" in serve.stderr_text()


async def test_on_loopback_a_foreign_host_or_origin_is_refused(tmp_path, fake):
    serve = ServeProcess(serve_env(tmp_path, fake))
    try:
        assert "?key=" not in serve.url
        assert await _page_status(serve.base) == 200
        port = serve.netloc.rsplit(":", 1)[1]
        assert await _page_status(serve.base, headers={"Host": f"localhost:{port}"}) == 200
        # A web page at a DNS name rebound to 127.0.0.1 sends its own name as Host.
        assert await _page_status(serve.base, headers={"Host": f"rebound.example:{port}"}) == 403
        assert await _ws_status(serve.base, headers={"Host": f"rebound.example:{port}"}) == 403
        assert await _ws_status(serve.base, headers={"Origin": "http://evil.example"}) == 403
        assert await _ws_status(serve.base, headers={"Origin": f"http://127.0.0.1:{int(port) + 1}"}) == 403
        assert serve.children() == []
        assert await _ws_status(serve.base, headers={"Origin": serve.base}) == 101
    finally:
        assert serve.stop() == 0


async def test_past_max_sessions_a_new_tab_is_refused_and_starts_nothing(tmp_path, fake):
    serve = ServeProcess(serve_env(tmp_path, fake), "--max-sessions", "1")
    try:
        first = await WsSession.open(serve.base)
        await first.wait_for(b"ready")
        assert await _ws_status(serve.base) == 503
        assert len(serve.children()) == 1
        await first.close()
        serve.wait_for(lambda: not serve.children(), what="the first session to end")
        # The server counts the session out once it has reaped the process: wait for that, by asking.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while (status := await _ws_status(serve.base)) == 503 and loop.time() < deadline:
            await asyncio.sleep(0.02)
        assert status == 101  # room again
    finally:
        assert serve.stop() == 0
    assert "refused a session: 1 open already (--max-sessions 1)" in serve.stderr_text()
