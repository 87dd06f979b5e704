"""The agent layer and the CLI's non-TUI paths never load Textual (fast start, usable headless)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import edgechat_tui.cli, edgechat_tui.config, edgechat_tui.errors
import edgechat_tui.agent, edgechat_tui.agent.base, edgechat_tui.agent.context
import edgechat_tui.agent.factory, edgechat_tui.agent.local, edgechat_tui.agent.store
import edgechat_tui.agent.workers_ai, edgechat_tui.agent.remote, edgechat_tui.agent.retry
import edgechat_tui.agent.sse, edgechat_tui.sanitize, edgechat_tui.userid
edgechat_tui.cli.build_parser().format_help()
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
