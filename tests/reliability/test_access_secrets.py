"""The Access credentials of issue 12 never show: not in output, errors, reprs or config show.

The client may hold an Access service token (``access_client_secret``) and a user's Access token
printed by ``access_token_command``; both are searched for in everything edgechat writes, as the
other tokens are (:func:`tests.reliability.harness.run_edgechat`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.errors import EdgechatError
from tests.fakes.agent_server import AgentServer, error_answer
from tests.reliability.figures import FIGURES
from tests.reliability.harness import (
    ACCESS_CLIENT_SECRET,
    ACCESS_TOKEN,
    TOKEN_CLASS,
    Workspace,
    run_edgechat,
    secrets_in,
)

COMMAND = "pytest tests/reliability/test_access_secrets.py"


def _token_command(tmp: Path) -> str:
    script = tmp / "print_token.py"
    script.write_text(f"print({ACCESS_TOKEN!r})\n")
    return f"{sys.executable} {script}"


def _echoing_errors(server: AgentServer) -> None:
    """Every route answers an error that quotes the credentials back, as a careless proxy might."""
    echo = f"bad secret {ACCESS_CLIENT_SECRET} and token {ACCESS_TOKEN}"
    routes = (("/api/whoami", "GET"), ("/api/chat", "POST"), ("/api/history", "GET"))
    server.script(*[error_answer("unauthorized", echo, route=route, method=method)
                    for route, method in routes for _ in range(3)])


def test_access_credentials_never_reach_the_output(workspace: Workspace, tmp_path: Path) -> None:
    with AgentServer(capabilities=("stream", "history", "reset")) as server:
        _echoing_errors(server)
        env = workspace.remote_env(server.url, token=None, EDGECHAT_ACCESS_CLIENT_ID="client-id.access",
                                   EDGECHAT_ACCESS_CLIENT_SECRET=ACCESS_CLIENT_SECRET,
                                   EDGECHAT_ACCESS_TOKEN_COMMAND=_token_command(tmp_path))
        runs = [run_edgechat(["-m", "hello"], env), run_edgechat(["history"], env),
                run_edgechat(["config", "show"], env)]
        sent = [r.headers for r in server.requests if r.path != "/"]
    # run_edgechat searched every output; the credentials were really sent, and refused clearly.
    assert any(h.get("cf-access-client-secret") == ACCESS_CLIENT_SECRET for h in sent)
    assert any(h.get("cf-access-token") == ACCESS_TOKEN for h in sent)
    assert runs[0].returncode == 1 and "access" in runs[0].err.lower(), runs[0]
    assert "******** (set, hidden)" in runs[2].out


async def test_reprs_and_errors_never_show_access_credentials(tmp_path: Path) -> None:
    with AgentServer() as server:
        _echoing_errors(server)
        agent = RemoteAgent(server.url, "alice", access_client_id="client-id.access",
                            access_client_secret=ACCESS_CLIENT_SECRET,
                            access_token_command=_token_command(tmp_path), max_retries=0)
        shown: list[str] = []
        try:
            try:
                async for _event in agent.send("hello"):
                    pass
            except EdgechatError as error:
                shown += [str(error), repr(error), error.message, error.hint or ""]
            shown += [repr(agent), repr(vars(agent)), repr(agent._credentials),
                      repr(vars(agent._credentials))]
        finally:
            await agent.aclose()
    problems = [f"{text[:80]}: {secrets_in(text)}" for text in shown if secrets_in(text)]
    FIGURES.add(TOKEN_CLASS, command=COMMAND, tried=len(shown), lost=len(problems),
                note=problems[0] if problems else None)
    assert len(shown) >= 6
    assert not problems, problems
