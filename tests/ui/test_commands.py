"""Slash commands, their completion, and the command palette."""

from __future__ import annotations

import json
import tomllib

import pytest

from edgechat_tui.ui.screens.confirm import ConfirmScreen
from edgechat_tui.ui.screens.help import HelpScreen
from tests.fakes.workers_ai import Reply
from tests.histories import conversations
from tests.ui.conftest import (
    SIZE,
    make_app,
    screen_text,
    send,
    stored_messages,
    type_text,
    wait_ready,
    wait_until,
    write_history,
)


def notices(app) -> list[str]:
    return [entry.text for entry in app.chat.chat_log.entries if entry.kind in ("info", "warning", "error")]


async def run(pilot, line: str, *, settle: bool = True) -> None:
    app = pilot.app
    before = len(app.chat.chat_log.entries)
    app.chat.prompt.set_text(line)
    await pilot.press("enter")
    if settle:
        await wait_until(pilot, lambda: len(app.chat.chat_log.entries) != before, what=f"{line} to answer")
        await pilot.pause()


async def test_completion_lists_commands_and_tab_completes(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await type_text(pilot, "/mo")
        suggestions = app.query_one("#suggestions")
        assert [item.label for item in suggestions.items] == ["/model [ID]"]
        assert "/model [ID]" in screen_text(app)
        await pilot.press("tab")
        assert app.chat.prompt.text == "/model "
        await type_text(pilot, "qwen")
        assert [item.label for item in suggestions.items] == ["@cf/qwen/qwen3-30b-a3b-fp8"]
        await pilot.press("enter")  # takes the completion and runs it
        await wait_until(pilot, lambda: app.chat.header.model == "@cf/qwen/qwen3-30b-a3b-fp8",
                         what="the header to show the new model")
        assert not suggestions.is_open
        await send(pilot, "hi")
        await wait_ready(pilot)
        assert fake.run_requests[-1].model == "@cf/qwen/qwen3-30b-a3b-fp8"


async def test_completion_keeps_up_with_fast_typing(settings, fake):
    """Keys typed faster than the list updates must not run the wrong command."""
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await pilot.press(*"/user", "space", *"bob", "enter")
        await wait_until(pilot, lambda: app.chat.user == "bob", what="the switch to bob")
        assert not isinstance(app.screen, HelpScreen)


async def test_help_opens_and_closes(settings):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await run(pilot, "/help", settle=False)
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        from edgechat_tui.ui.screens.help import HelpRow

        assert "edgechat help" in screen_text(app)
        names = {row._name for row in app.screen.query(HelpRow)}  # the help scrolls: every row, not the shown
        for usage in ("/clear", "/user [NAME]", "/setup", "/model [ID]", "/export [PATH]", "Ctrl+J", "Esc"):
            assert usage in names
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)


async def test_unknown_command_is_explained_and_kept(settings):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await run(pilot, "/frobnicate now")
        assert notices(app) == ["Unknown command /frobnicate."]
        assert app.chat.prompt.text == "/frobnicate now"
        app.chat.prompt.clear()
        await run(pilot, "/retry now")
        assert notices(app)[-1] == "/retry takes no argument."


async def test_double_slash_sends_a_message_starting_with_slash(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        app.chat.prompt.set_text("//etc/hosts is a file")
        await pilot.press("enter")
        await wait_ready(pilot)
        assert fake.run_requests[-1].body["messages"][-1]["content"] == "/etc/hosts is a file"


async def test_clear_asks_then_archives(settings, fake):
    write_history(settings.data_dir, "alice", 3)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await run(pilot, "/clear", settle=False)
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("n")
        await pilot.pause()
        assert len(stored_messages(settings.data_dir, "alice")) == 6
        assert "cancelled" in app.chat.status.plain
        await run(pilot, "/clear", settle=False)
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("y")
        await wait_until(pilot, lambda: any("archived" in n for n in notices(app)), what="the archive")
        assert stored_messages(settings.data_dir, "alice") == []
        archives = [c for c in conversations(settings.data_dir, "alice") if c.archived]
        assert len(archives) == 1 and len(archives[0].messages()) == 6
        assert archives[0].id in notices(app)[-1]
        assert [e.kind for e in app.chat.chat_log.entries] == ["info"]
        await wait_until(pilot, lambda: "no messages yet" in app.chat.status.plain, what="the context")


async def test_user_switches_profile_in_place(settings, fake):
    write_history(settings.data_dir, "bob", [("bob's question", "bob's answer")])
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "alice here")
        await wait_ready(pilot)
        await run(pilot, "/user bob")
        await wait_until(pilot, lambda: app.chat.user == "bob" and app.chat.status.state == "ready",
                         what="bob's conversation")
        assert app.chat.header.user == "bob"
        texts = [e.text for e in app.chat.chat_log.entries]
        assert texts[:2] == ["bob's question", "bob's answer"] and "alice here" not in texts
        await send(pilot, "bob again")
        await wait_ready(pilot)
        assert [m["content"] for m in stored_messages(settings.data_dir, "bob")][2] == "bob again"
        assert len(stored_messages(settings.data_dir, "alice")) == 2
        await run(pilot, "/user ../etc")
        assert "Invalid user id" in notices(app)[-1]
        assert app.chat.user == "bob"


async def test_model_id_changes_the_model(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await run(pilot, "/model @cf/meta/llama-3.1-8b-instruct-fast")
        assert app.chat.header.model == "@cf/meta/llama-3.1-8b-instruct-fast"
        await wait_until(pilot, lambda: "/128k" in app.chat.status.plain, what="the new window in ctx")
        await send(pilot, "which model?")
        await wait_ready(pilot)
        assert fake.run_requests[-1].model == "@cf/meta/llama-3.1-8b-instruct-fast"
        assert app.chat.chat_log.entries[-1].model == "@cf/meta/llama-3.1-8b-instruct-fast"
        await run(pilot, "/model @cf/acme/unknown-model")
        assert "does not know the context window" in notices(app)[-1]


async def test_system_sets_the_prompt_sent_first(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await run(pilot, "/system")
        assert notices(app)[-1] == f"System prompt: {settings.system_prompt}"
        await run(pilot, "/system You answer in French.")
        await send(pilot, "hello")
        await wait_ready(pilot)
        first = fake.run_requests[-1].body["messages"][0]
        assert first == {"role": "system", "content": "You answer in French."}


async def test_export_markdown_and_json(settings, fake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_history(settings.data_dir, "alice", [("What is 2+2?", "It is **4**.")], stopped_last=True)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await run(pilot, "/export")
        written = sorted(tmp_path.glob("edgechat-alice-*.md"))
        assert len(written) == 1
        assert notices(app)[-1] == f"Exported 2 messages as Markdown to {written[0]}."
        markdown = written[0].read_text()
        assert "What is 2+2?" in markdown and "It is **4**." in markdown and "stopped" in markdown
        await run(pilot, "/export chat.json")
        data = json.loads((tmp_path / "chat.json").read_text())
        assert data["user"] == "alice"
        assert [m["content"] for m in data["messages"]] == ["What is 2+2?", "It is **4**."]
        assert data["messages"][1]["stopped"] is True
        current = app.chat.library.current
        assert (data["chat"], data["title"]) == (current.id, current.title) and current.title
        assert f"{current.title} · conversation {current.id} · exported" in markdown.replace("\\", "")
        await run(pilot, "/export chat.json")  # never replaces a file
        assert "already exists" in notices(app)[-1]


async def test_copy_puts_the_last_reply_on_the_clipboard(settings, fake):
    fake.enqueue(Reply("Copy **me**\x1b]0;title\x07 please"))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await run(pilot, "/copy")
        assert notices(app)[-1] == "There is no reply to copy yet."
        await send(pilot, "say something")
        await wait_ready(pilot)
        await run(pilot, "/copy")
        assert app.clipboard == "Copy **me** please"
        assert "OSC 52" in notices(app)[-1]


async def test_retry_with_nothing_failed(settings):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await run(pilot, "/retry")
        assert notices(app) == ["Nothing to retry: no message has failed."]


async def test_quit(settings):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        app.chat.prompt.set_text("/quit")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app._exit, what="the app to exit")
    assert app.return_code == 0


async def test_theme_is_applied_and_saved_in_the_config(settings, tmp_path):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await run(pilot, "/theme nord")
        assert app.theme == "nord"
        config = settings.config_path
        await wait_until(pilot, lambda: config.exists() and "nord" in config.read_text(),
                         what="the saved theme")
        assert config.stat().st_mode & 0o777 == 0o600
        await run(pilot, "/theme no-such-theme")
        assert notices(app)[-1] == "There is no theme called no-such-theme."
    from tests.ui.conftest import make_settings

    again = make_app(make_settings(tmp_path, None))
    assert tomllib.loads(config.read_text())["theme"] == "nord"
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert again.theme == "nord"


@pytest.mark.parametrize(("query", "expected"), [("copy", "Copy the last reply"), ("json", "Export as JSON")])
async def test_palette_runs_the_same_actions(settings, fake, tmp_path, monkeypatch, query, expected):
    monkeypatch.chdir(tmp_path)
    fake.enqueue(Reply("palette reply"))
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        await send(pilot, "hi")
        await wait_ready(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await type_text(pilot, query)
        await wait_until(pilot, lambda: expected in screen_text(app), what=f"{expected} in the palette")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(notices(app)) == 1, what="the action")
        if query == "copy":
            assert app.clipboard == "palette reply"
        else:
            assert len(list(tmp_path.glob("edgechat-alice-*.json"))) == 1
