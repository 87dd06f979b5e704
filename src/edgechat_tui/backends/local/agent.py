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
import os
import re
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from edgechat_tui.backends.base import Agent, TurnInProgress, run_to_completion
from edgechat_tui.backends.conversations import Conversations
from edgechat_tui.backends.local.context import Budget, build_context, context_window_for
from edgechat_tui.backends.local.conversations import LocalConversations
from edgechat_tui.backends.local.titles import TitleMaker
from edgechat_tui.config.settings import Settings
from edgechat_tui.core.errors import (
    ContextTooLong,
    ConversationConflict,
    HistoryChanged,
    MissingCredentials,
    UsageError,
)
from edgechat_tui.core.messages import AgentInfo, ContextInfo, Done, Event, Message, Retrying, TextDelta
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.storage.chat_file import created_of
from edgechat_tui.storage.chat_tree import ChatState
from edgechat_tui.storage.chat_turns import TurnPlan, plan_turn, turn_record
from edgechat_tui.storage.library import Library

if TYPE_CHECKING:
    from edgechat_tui.backends.local.workers_ai import Completion, WorkersAIClient

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
    from edgechat_tui.backends.local.workers_ai import WorkersAIClient  # loads httpx: only when needed

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


def is_truncated(completion: Completion, max_tokens: int) -> bool:
    """The reply reached ``max_tokens``: the service said so ("length"), or it counted that many tokens."""
    if completion.finish_reason is not None:
        return completion.finish_reason == "length"
    used = completion.usage.completion_tokens if completion.usage else None
    return used is not None and used >= max_tokens


class LocalAgent(Agent):
    """Keeps ``user``'s conversations in the profile's local library and asks Workers AI for each reply."""

    def __init__(
        self,
        settings: Settings,
        user: str,
        *,
        client: WorkersAIClient | None = None,
        library: Library | None = None,
        warn: Callable[[str], None] | None = None,
        need_model: bool = True,
    ) -> None:
        """``need_model=False``: an agent for the library only (listing, reading, searching), which
        asks for no credentials; the HTTP client is made when a model is first called."""
        self._user = validate_user_id(user)
        self._settings = settings
        self._model: str = settings.model
        self._system_prompt: str = settings.system_prompt
        self._client_value = client
        self._credentials: tuple[str, str] | None = None
        if client is None:
            self._credentials = require_credentials(settings) if need_model else \
                (settings.account_id or "", settings.api_token.reveal() if settings.api_token else "")
        self._session_id = session_affinity_id(settings.account_id or "", self._user)
        self._warn_callback = warn
        self._library = library or Library(settings.data_dir, self._user, warn=self._warn)
        self._conversations = LocalConversations(self._library, lambda: self._busy)
        self._titles = TitleMaker(self._library, lambda: self._client,
                                  enabled=need_model and settings.values.get("auto_title", True),
                                  warn=self._warn)
        # The turn being run: its plan and conversation, for saving it stopped.
        self._plan: tuple[TurnInProgress, TurnPlan, str, str | None] | None = None
        # The window the service itself reported, when it refused a context our table allowed.
        self._learned_window: int | None = None
        # The window the account's model catalog gives for the model in use (set_context_window).
        self._catalog_window: int | None = None

    @property
    def _client(self) -> WorkersAIClient:
        if self._client_value is None:
            assert self._credentials is not None
            self._client_value = workers_ai_client(self._settings, *self._credentials)
        return self._client_value

    # --- what it is ---------------------------------------------------------------------------

    @property
    def info(self) -> AgentInfo:
        return AgentInfo(user=self._user, mode="local", model=self._model)

    @property
    def conversations(self) -> Conversations:
        return self._conversations

    @property
    def library(self) -> Library:
        """The profile's library (blocking: call it in a thread)."""
        return self._library

    def set_model(self, model: str) -> None:
        model = model.strip()
        if not model:
            raise UsageError("A model id cannot be empty.")
        if model != self._model:
            self._catalog_window = self._learned_window = None  # they were the old model's
        self._model = model

    def set_context_window(self, window: int | None) -> None:
        """The model catalog's window for the model in use (None: the settings' or the table's)."""
        self._catalog_window = window

    def set_system_prompt(self, text: str) -> None:
        self._system_prompt = text

    # --- the conversation ---------------------------------------------------------------------

    async def _messages(self) -> list[Message]:
        """The open conversation's current branch, with what other processes appended since the last look
        (in a thread: a first read parses the file, a later one only what is new)."""
        state = await self._conversations.open_state()
        return state.messages() if state is not None else []

    async def history(self) -> list[Message]:
        return await self._messages()

    async def history_stamp(self) -> object | None:
        """The open conversation and its file's identity, size and modification time (a stat, in a
        thread), in either place it may be (active or trash)."""
        chat_id = await self._conversations.open_id()
        if chat_id is None:
            return ("none", None)
        paths = self._library.paths

        def stat() -> tuple[tuple[int, int, int] | None, ...]:
            found: list[tuple[int, int, int] | None] = []
            for place in ("active", "trash"):
                try:
                    info = os.stat(paths.chat_path(chat_id, place))
                except OSError:
                    found.append(None)
                else:
                    found.append((info.st_ino, info.st_size, info.st_mtime_ns))
            return tuple(found)

        return (chat_id, await asyncio.to_thread(stat))

    async def reset(self) -> str | None:
        """Start afresh: the open conversation is archived (when it has messages) and a new one opened.
        Returns the archived conversation's id."""
        conversations = self._conversations
        state = await conversations.open_state()
        if state is None or not state.nodes:
            return None
        archived = state.id
        if not state.archived:
            await conversations.archive(archived)
        await conversations.create()
        return archived

    def _budget(self, shrink: float = 1.0) -> Budget:
        window = self._catalog_window or context_window_for(self._model, self._settings.context_window)
        if self._learned_window:
            window = min(window, self._learned_window)
        return Budget(window=window, max_tokens=self._settings.max_tokens, shrink=shrink)

    async def context_preview(self, next_text: str = "") -> ContextInfo | None:
        history = await self._messages()
        try:
            return build_context(self._system_prompt, history, next_text, self._budget())[1]
        except UsageError:
            return None

    async def _plan_turn(self, turn: TurnInProgress) -> tuple[TurnPlan, str, str | None]:
        conversations = self._conversations
        new: str | None = None
        if turn.action == "chat":
            chat_id, new = await conversations.ensure_open()
        else:
            chat_id = await conversations.open_id()
            if chat_id is None:
                raise ConversationConflict("There is no exchange in this conversation yet.",
                                           hint="send a message first")
        if new:
            state = ChatState(chat_id, created_of(chat_id))
        else:
            state, place = await asyncio.to_thread(self._library.state, chat_id)
            if place == "trash":
                raise ConversationConflict("This conversation is in the trash.", hint="restore it first")
        plan = plan_turn(state, turn.action, turn.text, turn.target)
        if plan.question is not None and turn.action in ("regenerate", "continue"):
            turn.user_message = plan.question
        return plan, chat_id, new

    async def _save(self, turn: TurnInProgress, reply: Message, truncated: bool) -> ChatState:
        assert self._plan is not None
        _turn, plan, chat_id, new = self._plan
        make = turn_record(plan, turn.user_message, reply, truncated)
        if new == "first":
            state = await asyncio.to_thread(self._library.append_first, chat_id, make)
        else:
            state = await asyncio.to_thread(self._library.append, chat_id, make, create=new == "new")
        if new:
            self._conversations.opened(chat_id, state.id)
            self._plan = (turn, plan, state.id, None)
        return state

    def _done(self, state: ChatState, plan: TurnPlan, chat_id: str, context: ContextInfo | None,
              *, usage=None, stopped: bool = False, truncated: bool = False) -> Done:
        reply_id = plan.target if plan.action == "continue" else state.leaf
        node = state.nodes[reply_id] if reply_id in state.nodes else None
        message = node.message if node is not None else Message(role="assistant", content="")
        return Done(message=message, message_count=len(state.branch_nodes()), usage=usage, context=context,
                    stopped=stopped, conversation_id=state.id, message_id=reply_id, truncated=truncated)

    async def _run_turn(self, turn: TurnInProgress) -> AsyncIterator[Event]:
        from edgechat_tui.backends.local.workers_ai import Completion  # loaded with the client

        plan, chat_id, new = await self._plan_turn(turn)
        if turn.seen is not None and turn.action == "chat":
            stored = sum(1 for message in plan.history if message.role != "system")
            if stored != turn.seen:
                raise HistoryChanged(
                    f"The conversation changed elsewhere: {stored} messages are stored, "
                    f"{turn.seen} were shown. Nothing was sent.",
                    hint="the new messages are shown; send again")
        self._plan = (turn, plan, chat_id, new)
        shrink = 1.0
        while True:
            history = plan.history
            messages, context = build_context(self._system_prompt, history, plan.prompt, self._budget(shrink))
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
                            truncated = is_truncated(event, self._settings.max_tokens)
                            state, cancelled = await run_to_completion(self._save(turn, reply, truncated))
                            done = self._done(state, plan, chat_id, context, usage=event.usage,
                                              truncated=truncated)
                            if plan.action in ("chat", "edit"):
                                self._titles.after_reply(state)
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
        if self._plan is None or self._plan[0] is not turn:
            return None  # stopped before the turn was planned: nothing was sent
        _turn, plan, chat_id, _new = self._plan
        reply = Message(role="assistant", content=turn.partial, model=self._model, stopped=True)
        state = await self._save(turn, reply, False)
        return self._done(state, plan, chat_id, turn.context, stopped=True)

    def _warn(self, text: str) -> None:
        if self._warn_callback is not None:
            self._warn_callback(text)
        else:
            super()._warn(text)

    async def check(self) -> str:
        await self._client.verify_token()
        return "token active"

    async def wait_for_titles(self) -> None:
        """Wait until the titles being made in the background are written (or given up)."""
        await self._titles.pending()

    async def aclose(self) -> None:
        await self._titles.finish()
        if self._client_value is not None:
            await self._client_value.aclose()
        await asyncio.to_thread(self._library.close)
