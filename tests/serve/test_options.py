"""What serve decides before it starts: loopback or not, the app command, what it refuses, and the key."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from edgechat_tui.config.settings import load_settings
from edgechat_tui.serve.access import AccessPolicy, same_origin
from edgechat_tui.serve.options import child_command, is_loopback_host
from tests.fakes.workers_ai import FakeWorkersAI
from tests.serve.harness import ServeProcess, WsSession, cmdline, serve_env


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "localhost", "LOCALHOST", "localhost.", "::1",
                                  "[::1]", "::ffff:127.0.0.1"])
def test_loopback_hosts(host):
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["", "0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "8.8.8.8", "example.com",
                                  "localhost.example.com", "127.0.0.1.nip.io", "fe80::1"])
def test_other_hosts(host):
    assert not is_loopback_host(host)


def test_the_app_command_is_an_argv_of_validated_values_and_holds_no_secret(tmp_path):
    odd_dir = tmp_path / "a dir; with $(touch pwned) 'quotes' \"and\" `ticks`"
    env = {"CLOUDFLARE_ACCOUNT_ID": "0123456789abcdef0123456789abcdef",
           "CLOUDFLARE_API_TOKEN": "tok-SECRET-123",
           "EDGECHAT_REMOTE_TOKEN": "remote-SECRET-456"}
    settings = load_settings(config_path=tmp_path / "c.toml", env=env,
                             flags={"data_dir": str(odd_dir), "model": "@cf/meta/llama-3.1-8b-instruct-fast",
                                    "remote_url": "https://user:pass-SECRET@agent.example/"})
    argv, extra_env = child_command(settings, "alice.b-c_d")
    assert argv[1:] == ("-m", "edgechat_tui.serve.child", "--user", "alice.b-c_d",
                        "--config", str(tmp_path / "c.toml"), "--data-dir", str(odd_dir),
                        "--model", "@cf/meta/llama-3.1-8b-instruct-fast")
    assert argv[0] == sys.executable
    line = shlex.join(argv)
    assert shlex.split(line) == list(argv)  # quoted whole: the odd directory stays one argument
    assert not any(secret in line for secret in ("SECRET", "pass"))
    # The remote URL may hold a password: it goes by the environment, never the command line.
    assert extra_env == {"EDGECHAT_REMOTE_URL": "https://user:pass-SECRET@agent.example"}


def test_values_from_the_environment_or_file_are_inherited_not_repeated(tmp_path):
    env = {"EDGECHAT_DATA_DIR": str(tmp_path / "d"), "EDGECHAT_MODEL": "@cf/meta/llama-3.1-8b-instruct-fast"}
    settings = load_settings(config_path=tmp_path / "c.toml", env=env)
    argv, extra_env = child_command(settings, "bob")
    assert "--data-dir" not in argv and "--model" not in argv and extra_env == {}


def test_the_key_is_compared_whole():
    policy = AccessPolicy("k" * 43, loopback_only=False, port=1)
    assert policy.key_matches("k" * 43)
    for wrong in ("", None, "k" * 42, "k" * 44, "K" * 43, "ķ" * 43, "k" * 42 + "\0"):
        assert not policy.key_matches(wrong)
    assert not policy.check(host="h:1", query_key=None, cookie_key=None, origin=None, websocket=False).allowed
    verdict = policy.check(host="h:1", query_key="k" * 43, cookie_key=None, origin=None, websocket=False)
    assert verdict.allowed and verdict.key_from_url
    # A wrong key in the URL is refused even with the right cookie: the URL is what the user typed.
    assert not policy.check(host="h:1", query_key="x", cookie_key="k" * 43, origin=None,
                            websocket=False).allowed


def test_same_origin():
    assert same_origin("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert same_origin("https://chat.example.com", "chat.example.com")
    for origin in ("http://127.0.0.1:8001", "http://evil.example", "null", "file://", "127.0.0.1:8000"):
        assert not same_origin(origin, "127.0.0.1:8000")
    assert not same_origin("http://127.0.0.1:8000", None)


def test_without_its_dependencies_serve_says_exactly_what_to_install(tmp_path):
    code = ("import sys; sys.modules['textual_serve'] = None\n"
            "from edgechat_tui.cli import main\nraise SystemExit(main(['serve']))")
    env = serve_env(tmp_path, None) | {"CLOUDFLARE_ACCOUNT_ID": "0123456789abcdef0123456789abcdef",
                                       "CLOUDFLARE_API_TOKEN": "tok-TEST"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "edgechat: error: edgechat serve needs textual-serve, which is not installed.",
        f"  hint: install them: {sys.executable} -m pip install 'textual-serve>=1.1.3' 'aiohttp>=3.9' "
        "(or install edgechat with its serve extra: pip install 'edgechat[serve]')",
    ]


def test_without_credentials_serve_refuses_rather_than_ask_for_a_token_in_a_web_page(tmp_path):
    result = subprocess.run([sys.executable, "-m", "edgechat_tui", "serve", "--port", "0"],
                            env=serve_env(tmp_path, None), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "needs a Cloudflare account id and API token" in result.stderr


async def test_remote_mode_keeps_the_url_and_tokens_off_the_command_line(tmp_path):
    with FakeWorkersAI() as fake:
        # Nothing listens on port 9: the app shows that the agent is unreachable, and that is all.
        env = serve_env(tmp_path, fake) | {"EDGECHAT_REMOTE_TOKEN": "remote-SECRET-456"}
        serve = ServeProcess(env, "--remote", "http://user:pass-SECRET@127.0.0.1:9/")
        try:
            assert "pass-SECRET" not in serve.output()
            session = await WsSession.open(serve.base)
            await session.wait_for(b"remote 127.0.0.1")
            [pid] = serve.children()
            line = " ".join(cmdline(pid))
            for secret in ("pass-SECRET", "remote-SECRET-456", fake.token):
                assert secret not in line
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            assert b"EDGECHAT_REMOTE_URL=http://user:pass-SECRET@127.0.0.1:9" in environ
            await session.close()
        finally:
            assert serve.stop() == 0
        assert "SECRET" not in serve.output() and fake.token not in serve.output()
