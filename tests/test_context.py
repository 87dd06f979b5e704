"""The context-window budget."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgechat_tui.backends.local.context import (
    Budget,
    build_context,
    context_window_for,
    estimate_tokens,
    message_tokens,
)
from edgechat_tui.core.errors import MessageTooLong
from edgechat_tui.core.messages import Message


def turns(n: int, size: int = 100) -> list[Message]:
    out = []
    for i in range(n):
        out.append(Message("user", f"q{i} " + "x" * size))
        out.append(Message("assistant", f"a{i} " + "y" * size))
    return out


def test_known_and_unknown_windows():
    assert context_window_for("@cf/meta/llama-3.3-70b-instruct-fp8-fast") == 24_000
    assert context_window_for("@cf/some/new-model") == 8_192
    assert context_window_for("@cf/some/new-model", 50_000) == 50_000


def test_estimate_is_conservative_for_english_and_cjk():
    english = "The quick brown fox jumps over the lazy dog. " * 100
    assert estimate_tokens(english) >= len(english) / 4  # ~4 chars per token in practice
    cjk = "東京は日本の首都です。" * 100
    assert estimate_tokens(cjk) >= len(cjk)  # about a token per character


def test_short_history_is_sent_whole():
    history = turns(3)
    messages, info = build_context("sys", history, "new", Budget(24_000, 2048))
    assert messages[0] == {"role": "system", "content": "sys"}
    assert messages[-1] == {"role": "user", "content": "new"}
    assert len(messages) == 1 + 6 + 1
    assert info.messages_sent == 6 and info.messages_total == 6 and info.window == 24_000


def test_long_history_keeps_the_newest_turns_inside_the_window():
    history = turns(2000, size=300)
    budget = Budget(24_000, 2048)
    messages, info = build_context("sys", history, "new", budget)
    total = sum(message_tokens(m) for m in messages)
    assert total + 2048 <= 24_000 * 0.9
    assert messages[-2]["content"] == history[-1].content  # newest kept
    assert messages[1]["role"] == "user"  # never opens on an orphan reply
    assert 0 < info.messages_sent < len(history)
    assert info.tokens_estimated == total + 2048


def test_shrink_sends_less():
    history = turns(2000, size=300)
    full = build_context("s", history, "n", Budget(24_000, 2048))[1].messages_sent
    half = build_context("s", history, "n", Budget(24_000, 2048, shrink=0.5))[1].messages_sent
    assert half < full


def test_message_too_large_is_refused_before_sending():
    with pytest.raises(MessageTooLong) as info:
        build_context("sys", [], "z" * 100_000, Budget(24_000, 2048))
    assert "too long" in info.value.message


@given(
    sizes=st.lists(st.integers(0, 3000), max_size=60),
    new=st.integers(0, 5000),
    max_tokens=st.integers(1, 8000),
)
def test_budget_property(sizes, new, max_tokens):
    history = [Message("user" if i % 2 == 0 else "assistant", "w" * n) for i, n in enumerate(sizes)]
    budget = Budget(16_000, max_tokens)
    try:
        messages, info = build_context("system prompt", history, "q" * new, budget)
    except MessageTooLong:
        assert estimate_tokens("q" * new) + estimate_tokens("system prompt") + 16 > budget.prompt_limit
        return
    assert sum(message_tokens(m) for m in messages) <= budget.prompt_limit
    # What is sent is a suffix of the history, in order.
    sent = messages[1:-1]
    assert [m["content"] for m in sent] == [m.content for m in history[len(history) - len(sent):]]
    assert info.messages_sent == len(sent)
