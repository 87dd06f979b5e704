"""Stopping: Ctrl+C (SIGINT) or SIGTERM to serve stops every app process, each saving as Ctrl+Q
does (a reply still streaming is kept, marked stopped); one that does not quit is killed after
--stop-timeout; closing a tab, or Ctrl+Q in it, ends its process. Real processes and sockets.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.fakes.workers_ai import FakeWorkersAI, Reply
from tests.serve.harness import ServeProcess, WsSession, alive, cmdline, serve_env
from tests.ui.conftest import stored_messages

# About 12 s to stream in full: every test below stops it long before.
SLOW = Reply(" ".join(f"tok{i:03d}" for i in range(240)), chunk_size=7, delay=0.05)


@pytest.fixture
def fake():
    with FakeWorkersAI() as server:
        yield server


async def _ready(serve: ServeProcess) -> WsSession:
    session = await WsSession.open(serve.base)
    await session.wait_for(b"ready")
    await session.focus()
    return session


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_a_signal_stops_every_app_and_the_streaming_reply_is_saved_as_stopped(tmp_path, fake, sig):
    fake.enqueue(SLOW)
    serve = ServeProcess(serve_env(tmp_path, fake), "--user", "alice")
    try:
        streaming, _idle = await _ready(serve), await _ready(serve)
        pids = serve.children()
        assert len(pids) == 2
        mark = len(streaming.screen)
        await streaming.type("count for me")
        await streaming.type("\r")
        await streaming.wait_for(b"tok002", start=mark)
        started = time.monotonic()
        status = serve.stop(sig)
        took = time.monotonic() - started
        await streaming.close()
        await _idle.close()
    finally:
        serve.kill()
    messages = stored_messages(tmp_path / "data", "alice")
    assert [m["role"] for m in messages] == ["user", "assistant"], serve.stderr_text()
    assert messages[0]["content"] == "count for me"
    assert messages[1]["stopped"] is True
    assert messages[1]["content"].startswith("tok000 tok001")
    assert len(messages[1]["content"]) < len(SLOW.text)
    assert status == 0, serve.stderr_text()
    assert took < 5, f"stopping took {took:.1f} s"  # each app quit on its own: no stop timeout was reached
    assert not any(alive(pid) for pid in pids)
    assert "killed" not in serve.stderr_text()
    assert "session 1 ended (exit status 0)" in serve.stderr_text()
    assert "session 2 ended (exit status 0)" in serve.stderr_text()


async def test_if_serve_is_killed_its_apps_still_quit_and_save(tmp_path, fake):
    fake.enqueue(SLOW)
    serve = ServeProcess(serve_env(tmp_path, fake), "--user", "carol")
    try:
        session = await _ready(serve)
        [pid] = serve.children()
        await session.type("go on\r")
        await session.wait_for(b"tok002")
        serve.process.kill()  # SIGKILL: serve cannot stop anyone; Linux's parent-death signal does
        serve.process.wait()
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(pid)
        await session.close()
    finally:
        serve.kill()
    messages = stored_messages(tmp_path / "data", "carol")
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["stopped"] is True and messages[1]["content"].startswith("tok000")


async def test_an_app_that_does_not_quit_is_killed_after_the_stop_timeout(tmp_path, fake):
    serve = ServeProcess(serve_env(tmp_path, fake), "--stop-timeout", "1")
    try:
        session = await _ready(serve)
        [pid] = serve.children()
        os.kill(pid, signal.SIGSTOP)  # it cannot act on SIGTERM now; SIGKILL still works
        started = time.monotonic()
        status = serve.stop(signal.SIGTERM)
        took = time.monotonic() - started
        await session.close()
    finally:
        serve.kill()
    assert status == 0
    assert 0.9 < took < 5, took
    assert not alive(pid)
    assert "session 1: the app did not quit within 1 s: killed" in serve.stderr_text()


async def test_a_second_ctrl_c_kills_at_once(tmp_path, fake):
    serve = ServeProcess(serve_env(tmp_path, fake), "--stop-timeout", "60")
    try:
        session = await _ready(serve)
        [pid] = serve.children()
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        serve.process.send_signal(signal.SIGINT)
        serve.wait_for(lambda: "stopping 1 session" in serve.stderr_text(), what="serve to begin stopping")
        serve.process.send_signal(signal.SIGINT)
        status = serve.stop()
        took = time.monotonic() - started
        await session.close()
    finally:
        serve.kill()
    assert status == 0 and took < 10, (status, took)
    assert not alive(pid)
    assert "killing every app process" in serve.stderr_text()


async def test_closing_the_tab_stops_its_app_and_keeps_what_arrived(tmp_path, fake):
    fake.enqueue(SLOW)
    serve = ServeProcess(serve_env(tmp_path, fake), "--user", "bob")
    try:
        session = await _ready(serve)
        [pid] = serve.children()
        await session.type("go on\r")
        await session.wait_for(b"tok002")
        await session.close()
        serve.wait_for(lambda: not alive(pid), what="the app process to end with its tab")
        serve.wait_for(lambda: "session 1 ended (exit status 0)" in serve.stderr_text(),
                       what="the session's end")
        messages = stored_messages(tmp_path / "data", "bob")
        assert messages[-1]["role"] == "assistant" and messages[-1]["stopped"] is True
        # Ctrl+Q in a tab: the app quits, serve closes that websocket and the process is gone.
        session = await _ready(serve)
        [pid] = serve.children()
        assert cmdline(pid)[2] == "edgechat_tui.serve.child"
        await session.type("\x11")
        await session.closed.wait()
        serve.wait_for(lambda: not alive(pid), what="the app to quit")
        await session.close()
        assert serve.process.poll() is None  # serve itself goes on
    finally:
        status = serve.stop()
    assert status == 0
    assert "session 2 ended (exit status 0)" in serve.stderr_text()
