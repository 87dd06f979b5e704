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

# Context windows of the models we know (tokens); prompt plus max_tokens must fit.
CONTEXT_WINDOWS: dict[str, int] = {
    "@cf/meta/llama-3.3-70b-instruct-fp8-fast": 24_000,
    "@cf/meta/llama-3.1-8b-instruct-fast": 128_000,
    "@cf/meta/llama-3.1-8b-instruct-fp8": 32_000,
    "@cf/meta/llama-4-scout-17b-16e-instruct": 131_000,
    "@cf/mistralai/mistral-small-3.1-24b-instruct": 128_000,
    "@cf/qwen/qwen3-30b-a3b-fp8": 32_768,
    "@cf/openai/gpt-oss-120b": 128_000,
    "@cf/openai/gpt-oss-20b": 128_000,
}
# For a model neither the table nor the settings know: small enough to be safe almost anywhere.
UNKNOWN_MODEL_WINDOW = 8_192
# Chat templates add a few tokens around every message (role headers, end-of-turn markers).
PER_MESSAGE_OVERHEAD = 8
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
    character for CJK text (three UTF-8 bytes). One token per three bytes over-counts the first and
    matches the second, so the budget errs on the side of sending less.
    """
    return (len(text.encode("utf-8", "surrogatepass")) + 2) // 3


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
