"""Every field that comes from a server or a stored file is made safe before it reaches a terminal.

Not only a message's text: its time, its model, usage counts that arrive as strings, a profile's last
activity, a remote agent's ids and counts. Each field in turn carries sequences that would set the
clipboard (OSC 52), retitle the window, clear the screen, or bytes that are not text; every command
that prints it (``history`` as Markdown and JSON, ``users``, one-shot ``--json``) is run as a real
process and its bytes are checked.
"""

from __future__ import annotations

import json

import pytest

from edgechat_tui.core.messages import Message
from edgechat_tui.storage.store import encode_header
from tests.fakes.agent_server import AgentServer
from tests.reliability.figures import FIGURES
from tests.reliability.harness import REMOTE_TOKEN, Workspace, run_edgechat, terminal_hazards

CLASS = "terminal: every field of stored and server data, on every command"
COMMAND = "pytest tests/reliability/test_output_fields.py"

PAYLOADS = {
    "osc52": "\x1b]52;c;ZWNobyBwd25lZA==\x07",
    "title": "\x1b]0;owned\x1b\\",
    "clear": "\x1b[2J\x1b[H",
    "c1-csi": "\x9b31m",
    "del-bel-cr": "\x7f\x07\r",
    "lone-surrogate": "\udcff",
}
FIELDS = ["content", "time", "model", "usage", "stopped"]


def _record(field: str, payload: str) -> bytes:
    user = Message("user", "question").to_json()
    reply = Message("assistant", "answer", model="@cf/meta/llama-3.3-70b-instruct-fp8-fast").to_json()
    if field == "usage":
        reply["usage"] = {"prompt_tokens": payload, "completion_tokens": payload, "total_tokens": 3}
    elif field == "stopped":
        reply["stopped"] = payload
    else:
        reply[field] = "x" + payload + "y"
        user[field] = "x" + payload + "y"
    return (json.dumps({"messages": [user, reply]}, ensure_ascii=True) + "\n").encode()


@pytest.mark.parametrize("payload", PAYLOADS, ids=list(PAYLOADS))
def test_stored_fields_never_drive_the_terminal(workspace: Workspace, payload: str) -> None:
    workspace.data_dir.mkdir(parents=True, exist_ok=True)
    path = workspace.data_dir / "default.jsonl"
    path.write_bytes(encode_header("default") + b"".join(_record(f, PAYLOADS[payload]) for f in FIELDS))
    path.chmod(0o600)
    problems = []
    for args in (["history"], ["history", "--format", "json"], ["users"]):
        run = run_edgechat(args, workspace.env())
        hazards = terminal_hazards(run.stdout) + terminal_hazards(run.stderr)
        if run.returncode != 0 or "Traceback" in run.err or hazards:
            problems.append(f"{args}: exit {run.returncode}, {hazards}, {run.err[-300:]!r}")
    FIGURES.add(CLASS, command=COMMAND, tried=3, unclear=len(problems))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("payload", PAYLOADS, ids=list(PAYLOADS))
def test_remote_fields_never_drive_the_terminal(workspace: Workspace, payload: str) -> None:
    text = "x" + PAYLOADS[payload] + "y"
    with AgentServer(token=REMOTE_TOKEN) as server:
        server.conversations["default"] = [
            {"role": "user", "content": text, "time": text, "model": text},
            {"role": "assistant", "content": text, "time": text, "model": text, "stopped": text,
             "usage": {"prompt_tokens": text, "completion_tokens": text}},
        ]
        env = workspace.remote_env(server.url)
        problems = []
        for args in (["history"], ["history", "--format", "json"]):
            run = run_edgechat(args, env)
            hazards = terminal_hazards(run.stdout) + terminal_hazards(run.stderr)
            if "Traceback" in run.err or hazards:
                problems.append(f"{args}: exit {run.returncode}, {hazards}, {run.err[-300:]!r}")
    FIGURES.add(CLASS, command=COMMAND, tried=2, unclear=len(problems))
    assert not problems, "\n".join(problems)
