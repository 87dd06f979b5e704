"""The agent layer and the CLI's non-TUI paths never load Textual (fast start, usable headless)."""

from __future__ import annotations

import json
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


# edgechat search answers from the library's index: the conversation files' machinery (and the config's
# TOML parser, and platformdirs when every path is given) loads only when a file changed or an old
# history file is to be migrated. bench/bench_library.py measures what that saves.
LAZY_FOR_SEARCH = ["tomllib", "platformdirs", *(f"edgechat_tui.{name}" for name in (
    "storage.chat_file", "storage.chat_format", "storage.chat_tree", "storage.store", "storage.format",
    "storage.migrate", "storage.users", "storage.async_store", "core.conversations",
    "serve.options"))]  # the serve command's options: built only for a command line naming serve


def _search_and_list_lazy_modules(env: dict[str, str], text: str) -> tuple[str, list[str]]:
    code = ("import sys, runpy\n"
            f"sys.argv=['edgechat', 'search', {text!r}, '--user', 'alice', '--json']\n"
            "try:\n    runpy.run_module('edgechat_tui', run_name='__main__')\nexcept SystemExit as stop:\n"
            "    assert not stop.code, stop.code\n"
            "import json\n"
            f"print('LOADED', json.dumps(sorted(m for m in {LAZY_FOR_SEARCH!r} if m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    output, _, loaded = result.stdout.rpartition("LOADED ")
    return output, json.loads(loaded)


def test_search_of_an_up_to_date_index_loads_only_the_index(isolated_env, tmp_path) -> None:
    from edgechat_tui.core.messages import Message
    from edgechat_tui.storage.chat_turns import plan_turn, turn_record
    from edgechat_tui.storage.format import encode_header, encode_turn
    from edgechat_tui.storage.library import Library

    data = tmp_path / "data"
    data.mkdir()
    # An old single-conversation history: the first search migrates it (and loads what that needs).
    old = Message("user", "quokka from the old history")
    reply = Message("assistant", "ok")
    data.joinpath("alice.jsonl").write_bytes(encode_header("alice") + encode_turn(old, reply))
    output, loaded = _search_and_list_lazy_modules(isolated_env, "quokka")
    assert [hit["snippet"] for hit in json.loads(output)] == ["quokka from the old history"]
    assert "edgechat_tui.storage.migrate" in loaded and "edgechat_tui.storage.chat_file" in loaded

    # Nothing changed since: the search loads none of the file machinery, and answers the same.
    output, loaded = _search_and_list_lazy_modules(isolated_env, "quokka")
    assert [hit["snippet"] for hit in json.loads(output)] == ["quokka from the old history"]
    assert loaded == []

    # A turn saved by another process: the next search reads that file (loading what reads it) first.
    library = Library(data, "alice", warn=lambda _m: None)
    chat = library.list()[0].id
    plan = plan_turn(library.state(chat)[0], "chat", "quokka again", None)
    record = turn_record(plan, Message("user", "quokka again"), Message("assistant", "yes"), False)
    library.append(chat, record)
    library.close()
    output, loaded = _search_and_list_lazy_modules(isolated_env, "quokka")
    assert [hit["snippet"] for hit in json.loads(output)] == ["quokka again", "quokka from the old history"]
    assert "edgechat_tui.storage.chat_file" in loaded and "edgechat_tui.storage.migrate" not in loaded
    assert "tomllib" not in loaded and "platformdirs" not in loaded  # no config file; every path given
    output, loaded = _search_and_list_lazy_modules(isolated_env, "quokka again")
    assert len(json.loads(output)) == 1 and loaded == []


# What the chat screen's start imports before Textual (to read the newest messages meanwhile): the tail
# reader, not the store, its repair, the profile listing or the hashing modules they bring.
EARLY_CHECK = """
import sys
import edgechat_tui.ui.early
heavy = ("edgechat_tui.storage.store", "edgechat_tui.storage.async_store", "edgechat_tui.storage.repair",
         "edgechat_tui.storage.users", "edgechat_tui.storage.chat_file", "secrets", "hmac", "logging")
print(sorted(m for m in heavy if m in sys.modules))
"""


def test_the_early_tail_read_does_not_import_the_store():
    result = subprocess.run([sys.executable, "-c", EARLY_CHECK], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


def test_the_storage_package_still_gives_its_names():
    code = ("from edgechat_tui.storage import AsyncHistoryStore, HistoryStore, SCHEMA_VERSION, list_users\n"
            "import edgechat_tui.storage as s\n"
            "print(HistoryStore.__module__, AsyncHistoryStore.__module__, list_users.__module__,"
            " SCHEMA_VERSION)\n"
            "try:\n    s.nothing_here\nexcept AttributeError:\n    print('no such name')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[0].split()[:3] == ["edgechat_tui.storage.store", "edgechat_tui.storage.async_store",
                                    "edgechat_tui.storage.users"]
    assert lines[1] == "no such name"
