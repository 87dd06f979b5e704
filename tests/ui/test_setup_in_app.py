"""``/setup`` inside the chat, and the offer of it after a 401: new credentials are checked, saved,
and used by the next message, for the same profile; nothing typed or sent is lost. ``/user`` with
no name lists the profiles to pick from."""

from __future__ import annotations

import tomllib

from textual.widgets import Input, OptionList

from edgechat_tui.ui.screens.profiles import ProfilePicker
from edgechat_tui.ui.screens.setup import SetupScreen
from tests.ui.conftest import (
    SIZE,
    make_app,
    make_settings,
    screen_text,
    send,
    stored_messages,
    wait_ready,
    wait_until,
    write_history,
)


def bindings(app) -> set[str]:
    return {binding.key for _, binding, enabled, _ in app.screen.active_bindings.values() if enabled}


async def save_credentials(pilot, account_id: str, token: str) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen)
                     and bool(app.screen.query("#api_token")), what="the setup screen")
    await pilot.pause()
    assert app.screen.in_app and "back to the chat" in screen_text(app)
    app.screen.query_one("#account_id", Input).value = account_id
    app.screen.query_one("#api_token", Input).value = token
    app.screen.query_one("#api_token", Input).focus()
    await pilot.press("enter")
    await wait_until(pilot, lambda: not isinstance(app.screen, SetupScreen), what="the chat again")


async def test_a_refused_token_offers_setup_and_new_credentials_serve_the_next_message(tmp_path, fake):
    settings = make_settings(tmp_path, fake, CLOUDFLARE_API_TOKEN="an-expired-token")
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        assert "f2" not in bindings(app)  # offered only once the API has refused the token
        await send(pilot, "what is 2+2?")
        await wait_until(pilot, lambda: app.chat.failed_text == "what is 2+2?" and app.chat.turn is None,
                         what="the 401")
        error = [e for e in app.chat.chat_log.entries if e.kind == "error"][-1]
        assert "F2" in (error.advice or "") and "/setup" in (error.advice or "")
        assert "f2" in bindings(app) and "Set up" in screen_text(app)  # the footer shows the key
        assert app.chat.prompt.text == "what is 2+2?"  # the failed text is back in the input
        app.chat.prompt.set_text("what is 2+2? (and typed more)")
        await pilot.press("f2")
        await save_credentials(pilot, fake.account_id, fake.token)
        await wait_until(pilot, lambda: any("New credentials saved" in e.text
                                            for e in app.chat.chat_log.entries), what="the new agent")
        await wait_ready(pilot)
        assert app.chat.prompt.text == "what is 2+2? (and typed more)"  # nothing typed is lost
        assert app.chat.failed_text == "what is 2+2?"  # and Ctrl+R still sends the failed one
        assert "f2" not in bindings(app)  # the new credentials are not the refused ones
        # The token came from the environment, which wins at the next start: said, without the token.
        warning = [e.text for e in app.chat.chat_log.entries if e.kind == "warning"][-1]
        assert "CLOUDFLARE_API_TOKEN" in warning and fake.token not in screen_text(app)
        saved = tomllib.loads(settings.config_path.read_text())
        assert saved == {"account_id": fake.account_id, "api_token": fake.token}
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: app.chat.chat_log.entries[-1].text == "You said: what is 2+2?",
                         what="the reply with the new token")
        assert fake.run_requests[-1].headers.get("authorization") == f"Bearer {fake.token}"
        assert "f2" not in bindings(app)
    assert [m["content"] for m in stored_messages(settings.data_dir, "alice")] == [
        "what is 2+2?", "You said: what is 2+2?"]


async def test_setup_from_the_command_and_esc_changes_nothing(settings, fake):
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        agent = app.agent
        app.chat.prompt.set_text("/setup")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen), what="the setup screen")
        app.chat.prompt.set_text("draft")  # the chat's input, under the setup screen
        await pilot.press("escape")
        await wait_until(pilot, lambda: any("nothing was changed" in e.text
                                            for e in app.chat.chat_log.entries), what="the notice")
        assert app.is_running and app.agent is agent and not settings.config_path.exists()
        assert app.chat.prompt.text == "draft"


async def test_setup_in_remote_mode_says_what_to_set_instead(tmp_path):
    from tests.fakes.agent_server import AgentServer

    with AgentServer() as server:
        settings = make_settings(tmp_path, None, EDGECHAT_REMOTE_URL=server.url)
        app = make_app(settings)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.agent is not None and app.chat.session.ready, what="ready")
            app.chat.prompt.set_text("/setup")
            await pilot.press("enter")
            await wait_until(pilot, lambda: any(e.kind == "error" for e in app.chat.chat_log.entries),
                             what="the refusal")
            error = [e for e in app.chat.chat_log.entries if e.kind == "error"][-1]
            assert "remote agent" in error.text and "remote_token" in (error.hint or "")
            assert not isinstance(app.screen, SetupScreen)


async def test_user_without_a_name_lists_the_profiles_and_switches_to_the_one_picked(settings, fake):
    write_history(settings.data_dir, "bob", [("bob's question", "bob's answer")])
    write_history(settings.data_dir, "carol", 3)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        app.chat.prompt.set_text("/user")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfilePicker), what="the profiles")
        await pilot.pause()
        picker = app.screen
        options = picker.query_one(OptionList)
        # Every profile with a history, and the current one (alice has none yet), marked.
        assert picker.users == ["alice", "bob", "carol"]
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert "●" in labels[0] and "(current)" in labels[0] and "no messages yet" in labels[0]
        assert "2 messages" in labels[1] and "6 messages" in labels[2] and "●" not in labels[1] + labels[2]
        assert "last 2025-01-01 10:00 UTC" in labels[2]
        assert options.highlighted == 0  # on the current one
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: app.chat.user == "bob" and app.chat.session.ready, what="the switch")
        assert [e.text for e in app.chat.chat_log.entries][:2] == ["bob's question", "bob's answer"]
        # Esc: nothing changes.
        app.chat.prompt.set_text("/user")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfilePicker), what="the profiles again")
        await pilot.pause()
        assert app.screen.users == ["bob", "carol"]  # alice never sent anything: no profile on disk
        assert app.screen.query_one(OptionList).highlighted == 0  # bob, current now
        await pilot.press("escape")
        await wait_until(pilot, lambda: "nothing changed" in app.chat.status.plain, what="the status")
        assert app.chat.user == "bob"


async def test_profile_names_and_problems_are_shown_as_text(settings, fake):
    """A damaged history's problem is shown in the list, as plain text (no markup)."""
    write_history(settings.data_dir, "bob", 2)
    path = settings.data_dir / "bob.jsonl"
    header, first, second = path.read_bytes().splitlines(keepends=True)
    damaged = header + first + b'{"broken [b]x[/b]\n' + second  # a bad line in the middle
    path.write_bytes(damaged)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        app.chat.prompt.set_text("/user")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfilePicker), what="the profiles")
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        label = str(options.get_option_at_index(1).prompt)
        assert label.startswith("  bob") and "damaged" in label
        await pilot.press("escape")
    assert path.read_bytes() == damaged  # listing never repairs anything
