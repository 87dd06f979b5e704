"""Settings: every value of every setting, from every source, is checked when it is read.

The promise is a class: a value edgechat accepts never fails later (a traceback in one-shot mode, a
TUI stuck at "starting…"), and a value it refuses gets one clear line naming the setting, exit 2,
without showing a secret's value. Every string setting is tried with hostile values (non-ASCII, control
characters, line breaks, NUL, bytes that are not UTF-8, URL-changing characters) from the environment,
the config file and ``config set``.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import tomli_w

from edgechat_tui.config.settings import OPTIONS
from tests.reliability.figures import FIGURES
from tests.reliability.harness import (
    TOKEN,
    Run,
    Workspace,
    cli_unclear_reasons,
    run_edgechat,
)
from tests.reliability.test_input import run_main

CLASS = "settings: hostile values from env, file and config set"
COMMAND = "pytest tests/reliability/test_settings.py"

HOSTILE = [
    "tok\u00e9n", "“quoted”", "line\nbreak", "tab\there", "cr\rhere", "esc\x1b]0;x\x07", "del\x7f",
    "c1\x9b2J", "nul\x00here", "\udcff\udcfe", "spa ce", "a?b#c", "..", "%2e%2e", "😀", " ", "x" * 5000,
]
STRING_OPTIONS = [key for key in OPTIONS
                  if key not in ("max_tokens", "temperature", "context_window", "max_retries")
                  and not key.endswith("timeout")]


def _placed(key: str, value: str, workspace: Workspace) -> str:
    """A path value inside the workspace (a relative one would land in the current directory)."""
    return str(workspace.root / "dirs" / value) if key == "data_dir" else value


def _accepted(key: str, value: str) -> bool:
    try:
        OPTIONS[key].parse(value)
    except ValueError:
        return False
    return True


def _shown(value: str) -> str:
    return repr(value if len(value) < 40 else value[:20] + f"...({len(value)} characters)")


def _check_run(code: int, out: bytes, err: bytes, key: str, value: str) -> list[str]:
    run = Run([key, _shown(value)], code, out, err)
    if code == 0:
        return []
    reasons = cli_unclear_reasons(run, exit_code=(1, 2))
    if OPTIONS[key].secret and len(value) > 3 and value.encode("utf-8", "surrogateescape") in out + err:
        reasons.append("the secret's value is shown")
    return reasons


@pytest.mark.parametrize("key", STRING_OPTIONS)
def test_every_hostile_value_from_the_environment_is_refused_clearly_or_works(
        key: str, workspace: Workspace, workers_ai, monkeypatch, capsysbinary) -> None:
    problems = []
    tried = 0
    for value in HOSTILE:
        if "\x00" in value:
            continue  # an environment cannot hold a NUL: tried through the file below
        env = workspace.local_env(workers_ai.api_base)
        value = _placed(key, value, workspace)
        env[OPTIONS[key].env_var] = value
        code, out, err = run_main(monkeypatch, capsysbinary, env, ["-m", "hi"])
        tried += 1
        if not _accepted(key, value) and code != 2:
            problems.append(f"{_shown(value)}: refused by its parser, but the run exited {code}")
        problems += [f"{_shown(value)}: {r}" for r in _check_run(code, out, err, key, value)]
    FIGURES.add(CLASS, command=COMMAND, tried=tried, unclear=len(problems))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("key", STRING_OPTIONS)
def test_every_hostile_value_in_the_config_file_is_refused_clearly_or_works(
        key: str, workspace: Workspace, workers_ai, monkeypatch, capsysbinary) -> None:
    problems = []
    tried = 0
    for value in HOSTILE:
        if "\udcff" in value:
            continue  # TOML text is UTF-8: a lone surrogate cannot be written into it
        env = workspace.local_env(workers_ai.api_base)
        env.pop(OPTIONS[key].env_var, None)
        workspace.config_path.parent.mkdir(parents=True, exist_ok=True)
        value = _placed(key, value, workspace)
        workspace.config_path.write_bytes(tomli_w.dumps({key: value}).encode())
        os.chmod(workspace.config_path, 0o600)
        code, out, err = run_main(monkeypatch, capsysbinary, env, ["-m", "hi"])
        tried += 1
        if not _accepted(key, value) and code != 2:
            problems.append(f"{_shown(value)}: refused by its parser, but the run exited {code}")
        if not _accepted(key, value) and key not in err.decode("utf-8", "replace"):
            problems.append(f"{_shown(value)}: the error does not name '{key}'")
        problems += [f"{_shown(value)}: {r}" for r in _check_run(code, out, err, key, value)]
    workspace.config_path.unlink(missing_ok=True)
    FIGURES.add(CLASS, command=COMMAND, tried=tried, unclear=len(problems))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("key", ["api_token", "account_id", "model", "api_base", "remote_token", "data_dir"])
def test_config_set_refuses_what_a_later_run_could_not_use(key: str, workspace: Workspace, monkeypatch,
                                                            capsysbinary) -> None:
    problems = []
    for value in HOSTILE:
        if "\x00" in value or "\udcff" in value:
            continue  # argv cannot carry these
        code, out, err = run_main(monkeypatch, capsysbinary, workspace.env(), ["config", "set", key, value])
        if _accepted(key, value):
            continue
        if code != 2:
            problems.append(f"{_shown(value)}: exit {code}")
        problems += [f"{_shown(value)}: {r}" for r in _check_run(code, out, err, key, value)
                     if "exit" not in r]
    FIGURES.add(CLASS, command=COMMAND, tried=len(HOSTILE), unclear=len(problems))
    assert not problems, "\n".join(problems)
    assert not workspace.config_path.exists() or "\u00e9" not in workspace.config_path.read_text()


def test_a_token_that_is_not_ascii_fails_at_once_in_one_process(workspace: Workspace, workers_ai) -> None:
    """The case that was seen: every one-shot ended in a traceback. Now one line, exit 2, as a process."""
    env = workspace.local_env(workers_ai.api_base)
    env["CLOUDFLARE_API_TOKEN"] = "tok\u00e9n-" + TOKEN
    run = run_edgechat(["-m", "hi"], env)
    assert not cli_unclear_reasons(run, exit_code=2, words=("CLOUDFLARE_API_TOKEN", "ASCII")), str(run)
    assert TOKEN not in run.out + run.err


# --- what the config path is ------------------------------------------------------------------------


def test_a_config_path_that_is_a_fifo_is_refused_without_hanging(workspace: Workspace) -> None:
    workspace.config_path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(workspace.config_path)
    run = run_edgechat(["config", "show"], workspace.env(), timeout=30)
    assert not cli_unclear_reasons(run, exit_code=2, words=("not a regular file",)), str(run)


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_a_config_path_that_is_a_device_is_refused(workspace: Workspace, target: str) -> None:
    run = run_edgechat(["config", "show", "--config", target], workspace.env(), timeout=30)
    assert not cli_unclear_reasons(run, exit_code=2, words=("not a regular file",)), str(run)


def test_a_config_file_too_large_is_refused_before_it_is_read(workspace: Workspace) -> None:
    workspace.config_path.parent.mkdir(parents=True, exist_ok=True)
    with open(workspace.config_path, "wb") as f:
        f.truncate(64 << 20)  # sparse: 64 MiB of NULs
    run = run_edgechat(["config", "show"], workspace.env(), timeout=30)
    assert not cli_unclear_reasons(run, exit_code=2, words=("larger than",)), str(run)


def test_a_config_file_behind_a_symlink_is_read(workspace: Workspace, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "edgechat.toml"
    real.parent.mkdir()
    real.write_text('model = "@cf/meta/llama-3.1-8b-instruct"\n')
    workspace.config_path.parent.mkdir(parents=True, exist_ok=True)
    workspace.config_path.symlink_to(real)
    run = run_edgechat(["config", "show"], workspace.env(), timeout=30)
    assert run.returncode == 0 and "llama-3.1-8b-instruct" in run.out, str(run)


# --- tokens travelling in clear --------------------------------------------------------------------


@pytest.mark.parametrize("base,warned", [
    ("http://api.example.test/client/v4", True),
    ("http://10.1.2.3:8080/client/v4", True),
    ("http://127.0.0.1:9/client/v4", False),
    ("http://[::1]:9/client/v4", False),
    ("http://localhost:9/client/v4", False),
    ("https://api.example.test/client/v4", False),
])
def test_a_plain_http_api_base_off_this_machine_is_warned_about(workspace: Workspace, base: str,
                                                                 warned: bool) -> None:
    run = run_edgechat(["config", "show"], workspace.env(EDGECHAT_API_BASE=base), timeout=30)
    assert run.returncode == 0, str(run)
    assert ("plain http" in run.err) is warned, str(run)


# --- secrets from stdin -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [k for k, o in OPTIONS.items() if o.secret])
def test_a_secret_is_read_from_stdin_not_argv(workspace: Workspace, key: str) -> None:
    secret = "s3cret-" + "z" * 30
    run = run_edgechat(["config", "set", key, "-"], workspace.env(), input=secret + "\n")
    assert run.returncode == 0, str(run)
    assert secret not in run.out + run.err
    text = workspace.config_path.read_text()
    assert secret in text and '"-"' not in text
    assert stat.S_IMODE(workspace.config_path.stat().st_mode) == 0o600
    # Without a value at all, the same.
    run = run_edgechat(["config", "set", key], workspace.env(), input=secret[::-1] + "\n")
    assert run.returncode == 0 and secret[::-1] in workspace.config_path.read_text(), str(run)


def test_an_empty_secret_on_stdin_is_refused_and_the_file_kept(workspace: Workspace) -> None:
    run_edgechat(["config", "set", "api_token", "-"], workspace.env(), input="first-token-value\n")
    before = workspace.config_path.read_bytes()
    run = run_edgechat(["config", "set", "api_token", "-"], workspace.env(), input="\n")
    assert not cli_unclear_reasons(run, exit_code=2, words=("api_token",)), str(run)
    assert workspace.config_path.read_bytes() == before


def test_a_secret_typed_at_a_terminal_is_not_echoed(workspace: Workspace) -> None:
    """In a real pty: the prompt appears, the typed token is not echoed back, and it is stored."""
    import pty

    secret = "typed-secret-" + "q" * 20
    env = workspace.env()
    command = [sys.executable, "-m", "edgechat_tui", "config", "set", "api_token"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: edgechat on the pty
        os.execvpe(command[0], command, env)
    seen = bytearray()
    done = threading.Event()

    def reader() -> None:
        while True:
            try:
                data = os.read(fd, 1024)
            except OSError:
                break
            if not data:
                break
            seen.extend(data)
        done.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    # Wait for the prompt (a condition), then type.
    for _ in range(600):
        if b"api_token" in seen:
            break
        done.wait(0.05)
    os.write(fd, secret.encode() + b"\r")
    _, status = os.waitpid(pid, 0)
    done.wait(10)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, bytes(seen)
    assert secret.encode() not in bytes(seen)
    assert secret in workspace.config_path.read_text()


def test_env_is_not_needed_for_the_subprocess_helpers() -> None:
    # The pty test above runs the module directly; make sure it is importable as the tests run it.
    assert subprocess.run([sys.executable, "-c", "import edgechat_tui.cli"], timeout=60).returncode == 0
