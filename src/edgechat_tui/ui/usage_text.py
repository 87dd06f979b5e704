"""The quiet line under a reply, and ``/usage``'s sums: tokens, time, speed, neurons and dollars.

Pure Python, no Textual. A figure that is not known (a remote agent that reports no usage, a model
without a price, a reply loaded from the history, whose time was not kept) is left out, never shown
as zero or guessed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from edgechat_tui.core.catalog import CatalogModel, ModelPrice, reply_cost
from edgechat_tui.core.messages import Message, Usage
from edgechat_tui.ui.meter import short_count

__all__ = ["UsageSums", "count_text", "dollars_text", "model_details", "neurons_text", "reply_usage_line",
           "sum_usage"]


def count_text(n: int, noun: str, plural: str | None = None) -> str:
    """``1 token``, ``2 tokens``, ``1,234 tokens``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {plural or noun + 's'}"


def dollars_text(dollars: float) -> str:
    """``$0``, ``$0.000045``, ``$0.006``, ``$0.042``, ``$1.27``: two significant digits under a cent."""
    if dollars <= 0:
        return "$0"
    if dollars >= 1:
        return f"${dollars:,.2f}"
    if dollars >= 0.01:
        return f"${dollars:.3f}"
    digits = min(10, 1 - math.floor(math.log10(dollars)))
    return f"${dollars:.{digits}f}".rstrip("0").rstrip(".") if dollars >= 1e-10 else "<$0.0000000001"


def neurons_text(neurons: float) -> str:
    """``0.52 neurons``, ``41.3 neurons``, ``1,250 neurons``."""
    if neurons < 10:
        return f"{neurons:.2f} neurons"
    if neurons < 100:
        return f"{neurons:.1f} neurons"
    return f"{neurons:,.0f} neurons"


def reply_usage_line(usage: Usage | None, price: ModelPrice | None, *, seconds: float | None = None,
                     tokens_per_second: float | None = None) -> str | None:
    """``312 in · 128 out · 3.2 s · 40 tok/s · 41.3 neurons · $0.00045``; None when nothing is known."""
    parts: list[str] = []
    if usage is not None and usage.prompt_tokens is not None:
        parts.append(f"{usage.prompt_tokens:,} in")
    if usage is not None and usage.completion_tokens is not None:
        parts.append(f"{usage.completion_tokens:,} out")
    if seconds is not None and math.isfinite(seconds) and seconds >= 0:
        parts.append(f"{seconds:.1f} s")
    if tokens_per_second is not None and math.isfinite(tokens_per_second) and tokens_per_second > 0:
        parts.append(f"{tokens_per_second:.0f} tok/s")
    cost = reply_cost(usage, price)
    if cost is not None:
        parts += [neurons_text(cost.neurons), dollars_text(cost.dollars)]
    return " · ".join(parts) or None


@dataclass
class UsageSums:
    """Tokens, replies and cost summed over some replies. ``priced`` replies had a known cost."""

    replies: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    counted: int = 0  # replies that reported usage
    priced: int = 0
    dollars: float = 0.0
    neurons: float = 0.0

    def add(self, usage: Usage | None, price: ModelPrice | None) -> None:
        self.replies += 1
        if usage is None:
            return
        self.counted += 1
        self.prompt_tokens += usage.prompt_tokens or 0
        self.completion_tokens += usage.completion_tokens or 0
        cost = reply_cost(usage, price)
        if cost is not None:
            self.priced += 1
            self.dollars += cost.dollars
            self.neurons += cost.neurons

    def text(self) -> str:
        """``3 replies · 1,204 in · 380 out · 52.1 neurons · $0.00057`` (with what was not counted)."""
        if not self.replies:
            return "no replies"
        parts = [count_text(self.replies, "reply", "replies")]
        if self.counted:
            parts += [f"{self.prompt_tokens:,} in", f"{self.completion_tokens:,} out"]
        if self.priced:
            parts += [neurons_text(self.neurons), dollars_text(self.dollars)]
        text = " · ".join(parts)
        if self.counted < self.replies:
            text += f" ({self.replies - self.counted:,} without usage)"
        elif self.priced < self.counted:
            text += f" ({self.counted - self.priced:,} without a price)"
        return text


def _local_day(stamp: str) -> str | None:
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone().date().isoformat()


def sum_usage(messages: Iterable[Message], price_of: Callable[[str | None], ModelPrice | None], *,
              today: str | None = None) -> tuple[UsageSums, UsageSums]:
    """The sums over ``messages``' replies, and over those of them from ``today`` (a local date).

    ``price_of(model)`` gives a model's price (or None). ``today`` defaults to the local date now.
    """
    today = today or datetime.now().astimezone().date().isoformat()
    everything, of_today = UsageSums(), UsageSums()
    for message in messages:
        if message.role != "assistant":
            continue
        price = price_of(message.model)
        everything.add(message.usage, price)
        if _local_day(message.time) == today:
            of_today.add(message.usage, price)
    return everything, of_today


def _price_text(amount: float) -> str:
    """``$0.29``, ``$0.051``, ``$0.50``, ``$2.25``: a price per million tokens."""
    text = f"{amount:.3f}" if amount < 1 else f"{amount:,.2f}"
    return "$" + (text[:-1] if amount < 1 and text.endswith("0") else text)


def model_details(model: CatalogModel) -> str:
    """``128k ctx · $0.29/$2.25 · tools``: what is known, nothing guessed.

    The prices are US dollars per million input / output tokens ("?" for one the catalog does not
    give); "tools": the catalog says the model takes function calls.
    """
    parts = []
    if model.context_window is not None:
        parts.append(f"{short_count(model.context_window)} ctx")
    price = model.price
    if price is not None and (price.input is not None or price.output is not None):
        sides = [_price_text(amount) if amount is not None else "?" for amount in (price.input, price.output)]
        parts.append("/".join(sides))
    if model.function_calling:
        parts.append("tools")
    return " · ".join(parts)
