"""Figures for the status line: token counts, context use, and the speed of a streaming reply.

Pure Python, no Textual, so the arithmetic is tested on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from edgechat_tui.core.messages import ContextInfo, Usage

# Llama-family tokenizers give about four characters of English per token. Used only while a reply
# streams, before the service reports the real count.
CHARS_PER_TOKEN = 4.0


def short_count(n: int) -> str:
    """950 -> "950", 3_140 -> "3.1k", 24_000 -> "24k", 1_200_000 -> "1.2M"."""
    if n < 1000:
        return str(n)
    if n < 10_000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    if n < 1_000_000:
        return f"{round(n / 1000)}k"
    return f"{n / 1_000_000:.1f}M".replace(".0M", "M")


def context_text(info: ContextInfo) -> str:
    """``ctx 3.1k/24k · 18 of 40 messages``: what the next request sends, against the window.

    A conversation with no messages yet says so (``ctx 2.1k/24k · no messages yet``), not
    ``0 of 0 messages``.
    """
    used = f"ctx {short_count(info.tokens_estimated)}/{short_count(info.window)}"
    if info.messages_total == 0:
        return f"{used} · no messages yet"
    return f"{used} · {info.messages_sent:,} of {info.messages_total:,} messages"


class TurnMeter:
    """Times one turn: when it was sent, when the first text came, how much came since.

    While text streams the token count is estimated from characters; once the service reports usage
    the reported count replaces the estimate.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.sent_at = clock()
        self.first_text_at: float | None = None
        self.chars = 0
        self.reported_tokens: int | None = None
        self.finished_at: float | None = None

    def add_text(self, text: str) -> None:
        if self.first_text_at is None and text:
            self.first_text_at = self._clock()
        self.chars += len(text)

    def finish(self, usage: Usage | None) -> None:
        self.finished_at = self._clock()
        if usage is not None and usage.completion_tokens is not None:
            self.reported_tokens = usage.completion_tokens

    @property
    def tokens(self) -> int:
        if self.reported_tokens is not None:
            return self.reported_tokens
        return round(self.chars / CHARS_PER_TOKEN)

    def tokens_per_second(self) -> float | None:
        """Tokens per second since the first text arrived; None until there is something to measure."""
        if self.first_text_at is None:
            return None
        elapsed = self._clock() - self.first_text_at
        if elapsed < 0.2:  # too short a time for a meaningful rate
            return None
        return self.tokens / elapsed

    def seconds(self) -> float | None:
        """From sending to the whole reply, once it is complete."""
        return None if self.finished_at is None else self.finished_at - self.sent_at

    def final_rate(self) -> float | None:
        """Reported output tokens per second of streaming, once complete; None when not measurable."""
        if self.finished_at is None or self.first_text_at is None or self.reported_tokens is None:
            return None
        elapsed = self.finished_at - self.first_text_at
        return self.reported_tokens / elapsed if elapsed >= 0.2 else None

    def waited(self) -> float:
        """Seconds since the message was sent."""
        return self._clock() - self.sent_at
