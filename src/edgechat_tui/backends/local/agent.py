"""The local agent: the seed's Durable Object, moved onto the user's machine.

Each turn takes the seed's steps: load the history (here: pick up what other edgechat processes
appended), add the user's message, send the context to the model, add the reply, save, answer with
the message count. It avoids the seed's defects: a failed turn stores nothing, the context is trimmed
to the model's window, two processes for one user lose nothing (the store locks), and history
never lives in one value that grows without bound (the store appends).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Callable

from edgechat_tui.backends.base import Agent, TurnInProgress, run_to_completion
from edgechat_tui.backends.local.context import Budget, build_context, context_window_for
from edgechat_tui.backends.local.workers_ai import Completion, WorkersAIClient
from edgechat_tui.config.settings import Settings
from edgechat_tui.core.errors import ContextTooLong, MissingCredentials, UsageError
from edgechat_tui.core.messages import AgentInfo, ContextInfo, Done, Event, Message, Retrying, TextDelta
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.storage.async_store import AsyncHistoryStore
from edgechat_tui.storage.store import HistoryStore

# After the service says "context too long" despite our estimate, the next try sends this share
# (when the service's message does not say what the window really is).
_SHRINK_ON_OVERFLOW = 0.5
# "... exceeded this model context window limit (24000)" / "... maximum context length of 8192 tokens"
_WINDOW_IN_MESSAGE = re.compile(r"context window limit \((\d+)\)|maximum context length of (\d+)")


def window_from_error(message: str) -> int | None:
    """The context window a "context too long" error names, if it names one."""
    match = _WINDOW_IN_MESSAGE.search(message)
    if not match:
        return None
    window = int(match.group(1) or match.group(2))
    return window if window >= 256 else None


def session_affinity_id(account_id: str, user: str) -> str:
    """A stable id per user for ``x-session-affinity`` (prompt caching), without sending the user id."""
    return hashlib.sha256(f"edgechat\0{account_id}\0{user}".encode()).hexdigest()[:32]


def require_credentials(settings: Settings) -> tuple[str, str]:
    """The account id and token local mode needs, or MissingCredentials saying how to give them."""
    missing = [name for name, value in (("account id", settings.account_id),
                                        ("API token", settings.api_token)) if not value]
    if missing:
        raise MissingCredentials(
            f"No Cloudflare {' or '.join(missing)} is set.",
            hint="run edgechat to use the setup screen, or set CLOUDFLARE_ACCOUNT_ID and "
            "CLOUDFLARE_API_TOKEN, or: edgechat config set account_id ID / api_token TOKEN",
        )
    return settings.account_id, settings.api_token.reveal()


def workers_ai_client(settings: Settings, account_id: str, token: str, *,
                      max_retries: int | None = None) -> WorkersAIClient:
    """A Workers AI client with the settings' base URL, timeouts and retries."""
    return WorkersAIClient(
        account_id=account_id,
        api_token=token,
        api_base=settings.api_base,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        reply_timeout=settings.reply_timeout,
        max_retries=settings.max_retries if max_retries is None else max_retries,
    )


_PROBE_PROMPT = "Reply with the single word: ok"


async def check_credentials(settings: Settings, account_id: str, token: str,
                            progress: Callable[[str], None]) -> None:
    """Check an account id and token before they are saved: the token, then one tiny model call.

    Raises the EdgechatError of the first check that fails. Retries are off: a wrong token should
    fail in a second, not after a backoff.
    """
    client = workers_ai_client(settings, account_id, token, max_retries=0)
    try:
        progress("Checking the token…")
        await client.verify_token()
        progress(f"The token is active. Asking {settings.model} for a one-word reply…")
        async for _event in client.chat([{"role": "user", "content": _PROBE_PROMPT}], model=settings.model,
                                        max_tokens=4, temperature=0.0, session_id=None):
            pass
    finally:
        await client.aclose()


class LocalAgent(Agent):
    """Keeps ``user``'s conversation in a local history file and asks Workers AI for each reply."""

    def __init__(
        self,
        settings: Settings,
        user: str,
        *,
        client: WorkersAIClient | None = None,
        store: HistoryStore | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self._user = validate_user_id(user)
        self._settings = settings
        self._model: str = settings.model
        self._system_prompt: str = settings.system_prompt
        if client is None:
            client = workers_ai_client(settings, *require_credentials(settings))
        self._client = client
        self._session_id = session_affinity_id(settings.account_id or "", self._user)
        self._warn_callback = warn
        self._store = AsyncHistoryStore(store or HistoryStore(settings.data_dir, self._user, warn=warn))
        self._loaded = False
        # The window the service itself reported, when it refused a context our table allowed.
        self._learned_window: int | None = None

    # --- what it is ---------------------------------------------------------------------------

    @property
    def info(self) -> AgentInfo:
        return AgentInfo(user=self._user, mode="local", model=self._model)

    @property
    def store(self) -> AsyncHistoryStore:
        """The history, every call of it run in a thread."""
        return self._store

    def set_model(self, model: str) -> None:
        model = model.strip()
        if not model:
            raise UsageError("A model id cannot be empty.")
        self._model = model

    def set_system_prompt(self, text: str) -> None:
        self._system_prompt = text

    # --- the conversation ---------------------------------------------------------------------

    async def _messages(self) -> list[Message]:
        """The stored conversation, including what other processes appended since the last look.

        In a thread (the async store): the first load parses every line, a refresh may wait for the lock.
        """
        if not self._loaded:
            self._loaded = True
            return await self._store.load()
        return await self._store.refresh()

    async def history(self) -> list[Message]:
        return list(await self._messages())

    async def reset(self) -> str | None:
        archived = await self._store.archive()
        return str(archived) if archived else None

    def _budget(self, shrink: float = 1.0) -> Budget:
        window = context_window_for(self._model, self._settings.context_window)
        if self._learned_window:
            window = min(window, self._learned_window)
        return Budget(window=window, max_tokens=self._settings.max_tokens, shrink=shrink)

    async def context_preview(self, next_text: str = "") -> ContextInfo | None:
        history = await self._messages()
        try:
            return build_context(self._system_prompt, history, next_text, self._budget())[1]
        except UsageError:
            return None

    async def _run_turn(self, turn: TurnInProgress) -> AsyncIterator[Event]:
        shrink = 1.0
        while True:
            history = await self._messages()
            messages, context = build_context(self._system_prompt, history, turn.text, self._budget(shrink))
            turn.context = context
            try:
                chat = self._client.chat(
                    messages,
                    model=self._model,
                    max_tokens=self._settings.max_tokens,
                    temperature=self._settings.temperature,
                    session_id=self._session_id,
                )
                async with contextlib.aclosing(chat) as events:
                    async for event in events:
                        if isinstance(event, TextDelta | Retrying):
                            yield event
                        elif isinstance(event, Completion):
                            reply = Message(role="assistant", content=event.text, model=self._model,
                                            usage=event.usage)
                            count, cancelled = await run_to_completion(
                                self._store.append_turn(turn.user_message, reply))
                            done = Done(message=reply, message_count=count, usage=event.usage,
                                        context=context)
                            if cancelled:  # stopped while saving: the turn is saved whole, once
                                turn.done = done
                                raise asyncio.CancelledError
                            yield done
                            return
            except ContextTooLong as error:
                # Our estimate let through what the service refused: send less, once. There is
                # nothing to lose: no text arrived, and nothing was stored.
                if shrink < 1.0 or turn.parts or context.messages_sent == 0:
                    raise
                learned = window_from_error(error.message)
                if learned and learned < context.window:
                    self._learned_window = learned
                shrink = _SHRINK_ON_OVERFLOW
                continue
            return

    async def _save_stopped(self, turn: TurnInProgress) -> Done | None:
        reply = Message(role="assistant", content=turn.partial, model=self._model, stopped=True)
        count = await self._store.append_turn(turn.user_message, reply)
        return Done(message=reply, message_count=count, context=turn.context, stopped=True)

    def _warn(self, text: str) -> None:
        if self._warn_callback is not None:
            self._warn_callback(text)
        else:
            super()._warn(text)

    async def check(self) -> str:
        await self._client.verify_token()
        return "token active"

    async def aclose(self) -> None:
        await self._client.aclose()
