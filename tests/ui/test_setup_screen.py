"""First run in local mode: the setup screen checks the credentials against the API and saves them."""

from __future__ import annotations

import tomllib

from textual.widgets import Input

from edgechat_tui.ui.screens.setup import SetupScreen
from tests.ui.conftest import SIZE, make_app, make_settings, screen_text, send, wait_ready, wait_until


def setup_settings(tmp_path, fake):
    return make_settings(tmp_path, None, EDGECHAT_API_BASE=fake.api_base)


async def fill(pilot, account_id: str, token: str) -> None:
    app = pilot.app
    app.screen.query_one("#account_id", Input).value = account_id
    app.screen.query_one("#api_token", Input).value = token
    app.screen.query_one("#api_token", Input).focus()
    await pilot.press("enter")


def progress(app) -> str:
    return str(app.screen.query_one("#progress").render())


async def wait_for_setup(pilot) -> None:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, SetupScreen)
                     and bool(pilot.app.screen.query("#api_token")), what="the setup screen")
    await pilot.pause()


async def wait_for_verdict(pilot) -> None:
    await wait_until(pilot, lambda: not pilot.app.screen.checking and progress(pilot.app)
                     and "…" not in progress(pilot.app), what="the check to end")


async def test_missing_credentials_open_the_setup_screen_and_success_saves_them(tmp_path, fake):
    settings = setup_settings(tmp_path, fake)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_setup(pilot)
        token_input = app.screen.query_one("#api_token", Input)
        assert token_input.password
        await fill(pilot, fake.account_id, fake.token)
        assert fake.token not in screen_text(app)  # masked while it is checked
        await wait_until(pilot, lambda: not isinstance(app.screen, SetupScreen), what="the chat")
        await wait_ready(pilot)
        config = settings.config_path
        assert config.stat().st_mode & 0o777 == 0o600
        saved = tomllib.loads(config.read_text())
        assert saved == {"account_id": fake.account_id, "api_token": fake.token}
        # The checks were the token check, then one tiny model call.
        paths = [request.path for request in fake.requests]
        assert "tokens/verify" in paths[0] and "/ai/run/" in paths[1] and len(paths) == 2
        assert fake.requests[1].body["max_tokens"] <= 8
        await send(pilot, "now it works")
        await wait_ready(pilot)
        assert app.chat.chat_log.entries[-1].text == "You said: now it works"


async def test_a_wrong_token_is_explained_and_nothing_saved(tmp_path, fake):
    settings = setup_settings(tmp_path, fake)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_setup(pilot)
        await fill(pilot, fake.account_id, "not-the-right-token")
        await wait_for_verdict(pilot)
        assert "refused this token" in progress(app)
        assert not settings.config_path.exists()
        assert isinstance(app.screen, SetupScreen)


async def test_a_wrong_account_id_is_explained(tmp_path, fake):
    settings = setup_settings(tmp_path, fake)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_setup(pilot)
        await fill(pilot, "ffffffffffffffffffffffffffffffff", fake.token)
        await wait_for_verdict(pilot)
        assert "does not know account ffffffffffffffffffffffffffffffff" in progress(app)
        assert not settings.config_path.exists()


async def test_a_token_without_workers_ai_permission_is_explained(tmp_path, fake):
    fake.token_has_permission = False
    settings = setup_settings(tmp_path, fake)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_setup(pilot)
        await fill(pilot, fake.account_id, fake.token)
        await wait_for_verdict(pilot)
        assert "may not use Workers AI" in progress(app)


async def test_a_malformed_account_id_is_refused_before_any_request(tmp_path, fake):
    settings = setup_settings(tmp_path, fake)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_setup(pilot)
        await fill(pilot, "not an id!", fake.token)
        await pilot.pause()
        assert progress(app).startswith("The account id must be letters and digits only")
        assert fake.requests == []


async def test_esc_leaves_with_advice_on_environment_variables(tmp_path, fake):
    settings = setup_settings(tmp_path, fake)
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_setup(pilot)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app._exit, what="the app to exit")
    assert app.return_code == 2
    assert "CLOUDFLARE_ACCOUNT_ID" in app.exit_text and "CLOUDFLARE_API_TOKEN" in app.exit_text
    assert not settings.config_path.exists()
