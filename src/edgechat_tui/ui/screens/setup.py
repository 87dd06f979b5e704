"""First run in local mode: ask for the Cloudflare account id and API token, check them, save them.

The check is the one a user would do by hand: is the token active (Cloudflare's token-verify
endpoint), then can this account run the configured model (one tiny chat call). Each failure is
explained in words that say what to fix. Only then are both saved to the config file, which
:func:`~edgechat_tui.config.settings.update_config_file` writes with mode 0600.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Input, Static

from edgechat_tui.config.settings import OPTIONS, Settings, update_config_file
from edgechat_tui.core.errors import (
    AccountNotFound,
    AuthError,
    ConnectionFailed,
    EdgechatError,
    ModelNotFound,
    QuotaExceeded,
    RateLimited,
    RequestTimeout,
)
from edgechat_tui.core.sanitize import sanitize

ENV_ADVICE = (
    "To skip this screen, set the credentials in the environment instead:\n"
    "  export CLOUDFLARE_ACCOUNT_ID=<your account id>\n"
    "  export CLOUDFLARE_API_TOKEN=<a token with Workers AI Read and Edit>\n"
    "or save them once with: edgechat config set account_id ID  (and api_token TOKEN)"
)


def explain_failure(error: EdgechatError, *, account_id: str, model: str, stage: str) -> str:
    """A plain sentence saying what a failed check means and what to do."""
    detail = sanitize(error.message)
    if isinstance(error, AccountNotFound):
        return (f"Cloudflare does not know account {account_id}, or this token cannot reach it. "
                "Copy the account id from the Workers AI page of the dashboard (\"Use REST API\"). "
                f"({detail})")
    if isinstance(error, AuthError):
        if stage == "token":
            return ("Cloudflare refused this token: it may be mistyped, expired or revoked. "
                    f"Create one with the \"Workers AI\" template and paste it whole. ({detail})")
        return ("The token is active but may not use Workers AI on this account: give it the "
                f"\"Workers AI\" Read and Edit permissions for account {account_id}. ({detail})")
    if isinstance(error, ModelNotFound):
        return (f"The credentials work, but the model {model} is not available: choose another with "
                f"edgechat config set model ID. ({detail})")
    if isinstance(error, QuotaExceeded):
        return f"The credentials work, but today's free allocation is used up. ({detail})"
    if isinstance(error, RateLimited):
        return f"Cloudflare is busy (rate limited): try again in a moment. ({detail})"
    if isinstance(error, ConnectionFailed | RequestTimeout):
        return (f"Could not reach the Cloudflare API: check the network (or a proxy). ({detail})")
    hint = f" {sanitize(error.hint)}." if error.hint else ""
    return f"The check failed: {detail}{hint}"


def env_override_notice(settings: Settings) -> str | None:
    """When the environment sets a credential, it wins over the file at the next start: say so."""
    names = [OPTIONS[key].env_var for key in ("account_id", "api_token")
             if settings.sources.get(key, "").startswith("env")]
    if not names:
        return None
    return (f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'} set in the environment, which "
            "wins over the config file: this session uses the new credentials, but the next start will "
            f"use the environment's again. Update or unset {'it' if len(names) == 1 else 'them'}.")


class SetupScreen(Screen[Settings | None]):
    """Asks for the account id and token. Dismisses with the new settings, or None on Esc."""

    DEFAULT_CSS = """
    SetupScreen { align: center middle; background: $background; }
    SetupScreen > VerticalScroll {
        width: 84;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        padding: 1 2;
        border: thick $accent 80%;
        background: $surface;
    }
    SetupScreen .label { margin-top: 1; text-style: bold; }
    SetupScreen .help { color: $text-muted; }
    SetupScreen Input { margin: 0; }
    SetupScreen Horizontal { height: auto; margin-top: 1; }
    SetupScreen #progress { margin-top: 1; height: auto; }
    SetupScreen #progress.-error { color: $text-error; }
    SetupScreen #progress.-ok { color: $text-success; }
    SetupScreen #leave { margin-top: 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "leave", "Leave without saving")]

    def __init__(self, settings: Settings, *, in_app: bool = False) -> None:
        super().__init__()
        self.settings = settings
        #: Opened from the chat (``/setup``): Esc goes back to it instead of leaving edgechat.
        self.in_app = in_app
        self.checking = False

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "Set up edgechat"
            yield Static(Content(
                "edgechat calls Cloudflare Workers AI with your own account. It needs the account id "
                "and an API token; they are checked, then saved in your config file (readable only by you)."
            ))
            yield Static("Account id", classes="label")
            yield Input(self.settings.account_id or "", placeholder="32 hex characters", id="account_id")
            yield Static(Content("Cloudflare dashboard → AI → Workers AI → \"Use REST API\"."),
                         classes="help")
            yield Static("API token", classes="label")
            yield Input(placeholder="paste the token", password=True, id="api_token")
            yield Static(Content("Create one there with the \"Workers AI\" template (Read and Edit)."),
                         classes="help")
            with Horizontal():
                yield Button("Check and save", id="save", variant="primary")
            yield Static("", id="progress")
            leave = ("Esc goes back to the chat, nothing saved." if self.in_app
                     else "Esc leaves without saving.")
            yield Static(Content(f"{leave} Saved to: {self.settings.config_path}"), id="leave")

    def on_mount(self) -> None:
        if not getattr(self.app, "cursor_blink", True):  # screenshots must not depend on the blink
            for field in self.query(Input):
                field.cursor_blink = False
        target = "#api_token" if self.settings.account_id else "#account_id"
        self.query_one(target, Input).focus()

    @on(Input.Submitted, "#account_id")
    def _next_field(self) -> None:
        self.query_one("#api_token", Input).focus()

    @on(Input.Submitted, "#api_token")
    @on(Button.Pressed, "#save")
    def _submit(self) -> None:
        if self.checking:
            return
        account_id = self.query_one("#account_id", Input).value.strip()
        token = self.query_one("#api_token", Input).value.strip()
        for key, value, name in (("account_id", account_id, "account id"), ("api_token", token, "API token")):
            try:
                OPTIONS[key].parse(value)
            except ValueError as exc:
                self._progress(f"The {name} {exc}.", tone="error")
                self.query_one(f"#{key}", Input).focus()
                return
        self._check_and_save(account_id, token)

    def _progress(self, text: str, *, tone: str = "") -> None:
        progress = self.query_one("#progress", Static)
        progress.update(Content(text))
        progress.set_class(tone == "error", "-error")
        progress.set_class(tone == "ok", "-ok")

    @work(exclusive=True, group="setup-check", exit_on_error=False)
    async def _check_and_save(self, account_id: str, token: str) -> None:
        import asyncio

        self.checking = True
        self.query_one("#save", Button).disabled = True
        stage = "token"

        def progress(text: str) -> None:
            nonlocal stage
            if "one-word" in text:
                stage = "model"
            self._progress(text)

        from edgechat_tui.backends.local.agent import check_credentials

        try:
            await check_credentials(self.settings, account_id, token, progress)
            progress("Both checks passed. Saving…")
            path = self.settings.config_path
            await asyncio.to_thread(update_config_file, path, {"account_id": account_id, "api_token": token})
        except EdgechatError as error:
            self._progress(explain_failure(error, account_id=account_id, model=self.settings.model,
                                           stage=stage), tone="error")
            return
        except Exception as error:  # a bug, not the user's doing: say so rather than hang
            self._progress(f"The check failed unexpectedly: {type(error).__name__}: {sanitize(str(error))}",
                           tone="error")
            return
        finally:
            self.checking = False
            self.query_one("#save", Button).disabled = False
        self._progress(f"Saved to {path}.", tone="ok")
        new_settings = self.settings.with_values(
            account_id=account_id, api_token=OPTIONS["api_token"].parse(token)
        )
        self.dismiss(new_settings)

    def action_leave(self) -> None:
        self.dismiss(None)
