"""The context-window budget: which part of a long conversation is sent to the model.

The whole history stays on disk. What is sent is the system prompt, then as many of the most recent
messages as fit, then the new message, so that the estimated prompt plus ``max_tokens`` stays inside
the model's context window with a margin. Token counts are estimated, conservatively, from UTF-8
bytes: no tokenizer is loaded and nothing goes over the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edgechat_tui.core.errors import MessageTooLong
from edgechat_tui.core.messages import ContextInfo, Message
from edgechat_tui.core.models import (
    BYTES_PER_TOKEN,
    CONTEXT_WINDOWS,
    TOKENS_PER_MESSAGE,
    UNKNOWN_MODEL_WINDOW,
)

__all__ = [
    "CONTEXT_WINDOWS",
    "SAFETY_MARGIN",
    "UNKNOWN_MODEL_WINDOW",
    "Budget",
    "build_context",
    "context_window_for",
    "estimate_tokens",
    "message_tokens",
]
PER_MESSAGE_OVERHEAD = TOKENS_PER_MESSAGE

# Keep this share of the window free, for the error in our estimate.
SAFETY_MARGIN = 0.10


def context_window_for(model: str, override: int | None = None) -> int:
    """The context window of ``model``: the override if given, else the table, else a safe guess."""
    if override:
        return override
    return CONTEXT_WINDOWS.get(model, UNKNOWN_MODEL_WINDOW)


def estimate_tokens(text: str) -> int:
    """A conservative token estimate for ``text``.

    Llama-family tokenizers average about four bytes of English per token, and about one token per
    character for CJK text (three UTF-8 bytes). One token per three bytes (``BYTES_PER_TOKEN``, shared
    with the Worker) over-counts the first and matches the second, so the budget errs on the side of
    sending less.
    """
    return (len(text.encode("utf-8", "surrogatepass")) + BYTES_PER_TOKEN - 1) // BYTES_PER_TOKEN


def message_tokens(message: Message | dict[str, str]) -> int:
    content = message.content if isinstance(message, Message) else message["content"]
    return estimate_tokens(content) + PER_MESSAGE_OVERHEAD


@dataclass(frozen=True, slots=True)
class Budget:
    """How many tokens of prompt a request may carry."""

    window: int
    max_tokens: int
    shrink: float = 1.0  # below 1 after the service said "context too long" despite the estimate

    @property
    def prompt_limit(self) -> int:
        return int((self.window * (1 - SAFETY_MARGIN) - self.max_tokens) * self.shrink)


def build_context(
    system_prompt: str,
    history: Sequence[Message],
    new_message: str,
    budget: Budget,
) -> tuple[list[dict[str, str]], ContextInfo]:
    """The messages to send (system prompt, recent history, new message) and what they amount to.

    Turns are kept whole from the newest backwards; a stopped or lone message is kept like any
    other. Raises MessageTooLong when the system prompt and the new message alone do not fit.
    """
    fixed = PER_MESSAGE_OVERHEAD + estimate_tokens(new_message)
    if system_prompt:
        fixed += PER_MESSAGE_OVERHEAD + estimate_tokens(system_prompt)
    limit = budget.prompt_limit
    if fixed > limit:
        raise MessageTooLong(
            f"This message is too long for the model: about {fixed:,} tokens, and only "
            f"{max(limit, 0):,} fit beside a {budget.max_tokens:,}-token reply in a "
            f"{budget.window:,}-token window.",
            hint="shorten it, lower max_tokens, or use a model with a larger window",
        )
    used = fixed
    start = len(history)
    while start > 0:
        cost = message_tokens(history[start - 1])
        if used + cost > limit:
            break
        used += cost
        start -= 1
    # Never open the context on a reply whose question was cut off: the model would answer a
    # question it cannot see.
    if start < len(history) and history[start].role == "assistant":
        used -= message_tokens(history[start])
        start += 1
    messages: list[dict[str, str]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.extend({"role": m.role, "content": m.content} for m in history[start:])
    messages.append({"role": "user", "content": new_message})
    info = ContextInfo(
        messages_sent=len(history) - start,
        messages_total=len(history),
        tokens_estimated=used + budget.max_tokens,
        window=budget.window,
    )
    return messages, info
