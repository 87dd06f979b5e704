"""The web server of ``edgechat serve`` (aiohttp): the page, the static files, one websocket per tab.

textual-serve provides the browser side (its terminal client, ``textual.js``, with its CSS and
fonts, served from the installed package: nothing is loaded from another site, and the page's
Content-Security-Policy says so to the browser). The server side is ours rather than
textual-serve's ``Server`` because that one runs its command through a shell, has no access
control, and waits without limit for its app processes when it stops: here every request passes
``AccessPolicy`` first, each tab's process is started from an argv in its own session
(``session.AppSession``), and stopping (SIGINT or SIGTERM) ends every process within
``stop_timeout`` seconds, each saving as Ctrl+Q does.

No access log is kept: a URL can hold the access key. The key is printed once, in the URL to open.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.serve.access import AccessPolicy, cookie_name
from edgechat_tui.serve.options import ServeConfig
from edgechat_tui.serve.session import AppSession, clamp_size

HERE = Path(__file__).parent
PAGE = (HERE / "page.html").read_text("utf-8")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
COMMON_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
MAX_MESSAGE = 1024 * 1024
#: Ctrl+C, kill, and the terminal closing: each stops serve and its apps gracefully.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PROG = "edgechat serve"


def _say(text: str, stream: Any = None) -> None:
    stream = stream or sys.stderr
    stream.write(text + "\n")
    stream.flush()


class ChatServer:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.policy = AccessPolicy(config.key, loopback_only=config.loopback_only, port=config.port)
        self.port = config.port
        self.sessions: dict[int, AppSession] = {}
        self.sockets: set[web.WebSocketResponse] = set()
        self._numbers = itertools.count(1)
        self.closing = False
        self.child_env = {
            **os.environ,
            **config.child_env,
            "TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver",
            "TEXTUAL_FPS": "60",
            "TEXTUAL_COLOR_SYSTEM": "truecolor",
            "TERM_PROGRAM": "textual",
            "EDGECHAT_SERVE_PID": str(os.getpid()),
        }
        for name in ("TEXTUAL", "TEXTUAL_LOG"):  # no devtools in served apps
            self.child_env.pop(name, None)

    def log(self, text: str) -> None:
        _say(f"{PROG}: {text}")

    # --- the web application ------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        app.router.add_get("/", self.page)
        app.router.add_get("/ws", self.websocket)
        app.router.add_static("/static/client", self.config.client_static, show_index=False,
                              follow_symlinks=False)
        app.router.add_static("/static/edgechat", HERE / "static", show_index=False, follow_symlinks=False)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Every request, before any handler: the access policy (403), then the security headers."""
        websocket = request.path == "/ws"
        cookie_key = request.cookies.get(self.policy.cookie_name)
        query_key = request.query.get("key")
        verdict = self.policy.check(host=request.host if "Host" in request.headers else None,
                                    query_key=query_key, cookie_key=cookie_key,
                                    origin=request.headers.get("Origin"), websocket=websocket)
        if not verdict.allowed:
            # The path only: the query may hold a (wrong) key, and nothing of a key is ever logged.
            self.log(f"refused {request.method} {sanitize(request.path)[:200]} from {request.remote}: "
                     f"{verdict.reason}")
            return web.Response(status=403, text="403 Forbidden: this edgechat server needs the URL it "
                                "printed when it started.\n", headers=COMMON_HEADERS)
        if verdict.key_from_url and request.path == "/":
            # Keep the key out of the address bar and the history: a cookie carries it from now on.
            response: web.StreamResponse = web.Response(status=303,
                                                        headers={**COMMON_HEADERS, "Location": "/"})
            response.set_cookie(self.policy.cookie_name, query_key or "", httponly=True, samesite="Strict",
                                path="/")
            return response
        try:
            response = await handler(request)
        except web.HTTPException as error:
            error.headers.update(COMMON_HEADERS)
            raise
        if not response.prepared:
            response.headers.update(COMMON_HEADERS)
        return response

    async def page(self, request: web.Request) -> web.Response:
        font_size = max(8, min(40, clamp_size(request.query.get("fontsize", "16"), 16)))
        text = PAGE.replace("{user}", html.escape(self.config.user)).replace("{font_size}", str(font_size))
        return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if self.closing:
            raise web.HTTPServiceUnavailable(text="edgechat serve is stopping.\n")
        if len(self.sessions) >= self.config.max_sessions:
            self.log(f"refused a session: {len(self.sessions)} open already (--max-sessions "
                     f"{self.config.max_sessions})")
            raise web.HTTPServiceUnavailable(text="Too many sessions are open; close a tab and try again.\n")
        width = clamp_size(request.query.get("width", "80"), 80)
        height = clamp_size(request.query.get("height", "24"), 24)
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        number = next(self._numbers)
        session = AppSession(number, self.config.child_argv, self.child_env,
                             send_bytes=ws.send_bytes, on_exit=ws.close, log=self.log)
        self.sessions[number] = session
        self.sockets.add(ws)
        try:
            await session.start(width, height)
            self.log(f"session {number} started (app process {session.pid}); {len(self.sessions)} open")
            await self._relay(ws, session)
        except Exception as error:
            self.log(f"session {number}: {sanitize(type(error).__name__)}: {sanitize(str(error))[:300]}")
        finally:
            status = await session.stop(self.config.stop_timeout)
            with contextlib.suppress(Exception):
                await ws.close()
            self.sockets.discard(ws)
            self.sessions.pop(number, None)
            self.log(f"session {number} ended (exit status {status}); {len(self.sessions)} open")
        return ws

    async def _relay(self, ws: web.WebSocketResponse, session: AppSession) -> None:
        """What the browser sends, to the app: ``["stdin", text]``, ``["resize", {...}]``, ping, focus..."""
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                envelope = json.loads(message.data)
            except ValueError:
                continue
            if not isinstance(envelope, list) or not envelope:
                continue
            kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
            if kind == "stdin" and isinstance(data, str):
                await session.send_input(data)
            elif kind == "resize" and isinstance(data, dict):
                await session.resize(clamp_size(data.get("width"), 80), clamp_size(data.get("height"), 24))
            elif kind == "ping" and isinstance(data, str):
                await ws.send_json(["pong", data[:64]])
            elif kind in ("focus", "blur"):
                await session.send_meta({"type": kind})

    # --- running and stopping -----------------------------------------------------------------

    async def stop_all(self) -> None:
        """Stop every app process (each saving as Ctrl+Q does), in parallel, within the stop timeout."""
        self.closing = True
        sessions = list(self.sessions.values())
        if sessions:
            self.log(f"stopping {len(sessions)} session{'s' if len(sessions) != 1 else ''}…")
        await asyncio.gather(*(s.stop(self.config.stop_timeout) for s in sessions), return_exceptions=True)
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=1001, message=b"server stopping"), 2)

    def kill_all(self) -> None:
        for session in list(self.sessions.values()):
            session.kill()

    async def serve(self) -> int:
        config = self.config
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False, shutdown_timeout=2)
        await runner.setup()
        site = web.TCPSite(runner, config.host or None, config.port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            _say(f"edgechat: error: cannot listen on {config.host}:{config.port}: "
                 f"{sanitize(os.strerror(error.errno) if error.errno else str(error))}.\n"
                 "  hint: choose another with --port (0 picks a free one)")
            return 1
        self.port = self._bound_port(runner)
        self.policy.cookie_name = cookie_name(self.port)
        stop = asyncio.Event()
        signals_seen = 0

        def on_signal() -> None:
            nonlocal signals_seen
            signals_seen += 1
            if signals_seen == 1:
                stop.set()
            else:  # a second Ctrl+C: do not wait for anyone
                self.log("killing every app process")
                self.kill_all()

        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, on_signal)
        try:
            self._announce(runner)
            await stop.wait()
            await self.stop_all()
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
            await runner.cleanup()
        self.log("stopped")
        return 0

    def _bound_port(self, runner: web.AppRunner) -> int:
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                return int(address[1])
        return self.config.port

    def _announce(self, runner: web.AppRunner) -> None:
        config = self.config
        port = self.port
        host = config.host
        if not host or host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        url = f"http://{host}:{port}/" + (f"?key={config.key}" if config.key else "")
        # The one place the key is ever written: the URL to open, on stdout.
        _say(f"{PROG}: open {url} in a browser ({config.user}, {config.mode}); Ctrl+C stops it", sys.stdout)
        if config.key:
            _say(f"{PROG}: anyone with this URL can use this chat with your Cloudflare account. Beyond a "
                 "trusted network, put it behind TLS and an access gate such as Cloudflare Access "
                 "(docs/serve.md).")
        else:
            _say(f"{PROG}: listening on loopback only: other machines cannot reach it (docs/serve.md).")
        import shlex

        _say(f"{PROG}: each tab runs: {sanitize(shlex.join(config.child_argv))}")


def run(config: ServeConfig) -> int:
    return asyncio.run(ChatServer(config).serve())
