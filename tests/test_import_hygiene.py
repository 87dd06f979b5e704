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
