"""The agent layer and the CLI's non-TUI paths never load Textual (fast start, usable headless)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import edgechat_tui.cli.entry, edgechat_tui.config.settings, edgechat_tui.core.errors
import edgechat_tui.backends, edgechat_tui.backends.base, edgechat_tui.backends.local.context
import edgechat_tui.backends.factory, edgechat_tui.backends.local.agent, edgechat_tui.storage.store
import edgechat_tui.backends.local.workers_ai, edgechat_tui.backends.remote.agent, edgechat_tui.http.retry
import edgechat_tui.http.sse, edgechat_tui.core.sanitize, edgechat_tui.core.userid
edgechat_tui.cli.entry.build_parser().format_help()
loaded = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
print(loaded)
raise SystemExit(1 if loaded else 0)
"""


def test_agent_layer_and_cli_do_not_import_textual():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_help_does_not_import_textual():
    code = ("import sys, runpy\nsys.argv=['edgechat','--help']\n"
            "try:\n    runpy.run_module('edgechat_tui', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('TEXTUAL' if any(m.startswith('textual') for m in sys.modules) else 'CLEAN')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().endswith("CLEAN"), result.stdout + result.stderr


# edgechat serve (src/edgechat_tui/serve/): its web server's dependencies load only when serve runs.
REPORT_SERVE_DEPS = ("print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', "
                     "'textual_serve', 'selenium') or m == 'edgechat_tui.serve.server'))")


def _run_edgechat_and_list_serve_deps(argv: list[str], env: dict[str, str] | None = None) -> str:
    code = (f"import sys, runpy\nsys.argv={argv!r}\n"
            "try:\n    runpy.run_module('edgechat_tui', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            + REPORT_SERVE_DEPS)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                            input="")
    return result.stdout.strip().splitlines()[-1]


def test_help_and_serve_help_do_not_import_the_web_server():
    assert _run_edgechat_and_list_serve_deps(["edgechat", "--help"]) == "LOADED []"
    assert _run_edgechat_and_list_serve_deps(["edgechat", "serve", "--help"]) == "LOADED []"


def test_one_shot_does_not_import_the_web_server(tmp_path):
    import os

    from tests.fakes.workers_ai import FakeWorkersAI, Reply

    with FakeWorkersAI() as fake:
        fake.enqueue(Reply("pong"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGECHAT_", "CLOUDFLARE_"))}
        env |= {"CLOUDFLARE_ACCOUNT_ID": fake.account_id, "CLOUDFLARE_API_TOKEN": fake.token,
                "EDGECHAT_API_BASE": fake.api_base, "EDGECHAT_DATA_DIR": str(tmp_path / "data"),
                "EDGECHAT_CONFIG": str(tmp_path / "config.toml")}
        assert _run_edgechat_and_list_serve_deps(["edgechat", "-m", "ping"], env) == "LOADED []"
        assert fake.run_requests  # the message was sent: one-shot mode really ran
