"""Shared fixtures: an isolated environment for every test that runs the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The token every test uses: tests/test_secrets.py searches all output for it.
TEST_TOKEN = "tok-TEST-SECRET-9f8e7d6c5b4a"
TEST_ACCOUNT = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    """An environment with its own config file and data dir, and no real credentials."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EDGECHAT_", "CLOUDFLARE_"))}
    env["EDGECHAT_CONFIG"] = str(tmp_path / "config" / "config.toml")
    env["EDGECHAT_DATA_DIR"] = str(tmp_path / "data")
    env["EDGECHAT_CACHE_DIR"] = str(tmp_path / "cache")
    env["PYTHONPATH"] = str(ROOT)  # lets subprocesses import tests.fakes
    for key in list(os.environ):
        if key.startswith(("EDGECHAT_", "CLOUDFLARE_")):
            monkeypatch.delenv(key)
    for key in ("EDGECHAT_CONFIG", "EDGECHAT_DATA_DIR", "EDGECHAT_CACHE_DIR"):
        monkeypatch.setenv(key, env[key])
    return env


def run_cli(args: list[str], env: dict[str, str], *, input: str | bytes | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``edgechat ARGS`` in a fresh interpreter, as a user would, with stdin not a terminal."""
    data = input.encode() if isinstance(input, str) else (input if input is not None else b"")
    result = subprocess.run([sys.executable, "-m", "edgechat_tui", *args], input=data, env=env,
                            capture_output=True, timeout=timeout)
    result.stdout = result.stdout.decode("utf-8", "replace")
    result.stderr = result.stderr.decode("utf-8", "replace")
    return result
