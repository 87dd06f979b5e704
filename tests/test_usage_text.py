"""The usage line and /usage's sums: each figure shown exactly when it is known, as a class."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest

from edgechat_tui.core.catalog import CatalogModel, ModelPrice
from edgechat_tui.core.messages import Message, Usage
from edgechat_tui.ui.meter import TurnMeter
from edgechat_tui.ui.usage_text import (
    count_text,
    dollars_text,
    model_details,
    neurons_text,
    reply_usage_line,
    sum_usage,
)

PRICE = ModelPrice(0.29, 2.25)


@pytest.mark.parametrize(("prompt", "completion", "seconds", "rate", "price"),
                         list(itertools.product((None, 1200), (None, 345), (None, 4.25), (None, 81.2),
                                                (None, PRICE, ModelPrice(None, 2.25)))))
def test_every_figure_is_shown_exactly_when_known(prompt, completion, seconds, rate, price):
    usage = None if prompt is None and completion is None else Usage(prompt, completion)
    line = reply_usage_line(usage, price, seconds=seconds, tokens_per_second=rate)
    expected = []
    if prompt is not None:
        expected.append("1,200 in")
    if completion is not None:
        expected.append("345 out")
    if seconds is not None:
        expected.append("4.2 s")
    if rate is not None:
        expected.append("81 tok/s")
    if prompt is not None and completion is not None and price is PRICE:
        dollars = (1200 * 0.29 + 345 * 2.25) / 1e6
        expected += [neurons_text(dollars / 0.000011), dollars_text(dollars)]
    assert line == (" · ".join(expected) or None)


@pytest.mark.parametrize(("value", "text"), [
    (0, "$0"), (-1, "$0"), (4.5e-05, "$0.000045"), (0.00074, "$0.00074"), (0.006, "$0.006"),
    (0.00999, "$0.01"), (0.0123, "$0.012"), (0.5, "$0.500"), (1, "$1.00"), (12345.678, "$12,345.68"),
])
def test_dollars(value, text):
    assert dollars_text(value) == text


def test_neurons_and_counts():
    assert [neurons_text(n) for n in (0.5, 41.27, 1250.4)] == \
        ["0.50 neurons", "41.3 neurons", "1,250 neurons"]
    assert [count_text(n, "token") for n in (0, 1, 2, 1234)] == \
        ["0 tokens", "1 token", "2 tokens", "1,234 tokens"]
    assert count_text(1, "reply", "replies") == "1 reply" and count_text(3, "reply", "replies") == "3 replies"


def test_nonsense_figures_are_left_out():
    assert reply_usage_line(None, PRICE, seconds=float("nan"), tokens_per_second=float("inf")) is None
    assert reply_usage_line(None, PRICE, seconds=-1, tokens_per_second=0) is None


def test_model_details_say_what_is_known():
    assert model_details(CatalogModel("@cf/a/b")) == ""
    assert model_details(CatalogModel("@cf/a/b", context_window=32_768)) == "33k ctx"
    assert model_details(CatalogModel("@cf/a/b", price=ModelPrice(0.051, None))) == "$0.051/?"
    assert model_details(CatalogModel("@cf/a/b", context_window=128_000, price=ModelPrice(0.5, 12),
                                      function_calling=True)) == "128k ctx · $0.50/$12.00 · tools"
    assert model_details(CatalogModel("@cf/a/b", function_calling=False)) == ""


def test_the_meter_times_a_whole_reply():
    now = [100.0]
    meter = TurnMeter(clock=lambda: now[0])
    now[0] = 101.0
    meter.add_text("Hello")
    now[0] = 103.0
    meter.finish(Usage(10, 40))
    assert meter.seconds() == 3.0 and meter.final_rate() == 20.0
    whole = TurnMeter(clock=lambda: now[0])
    whole.add_text("All at once")
    whole.finish(Usage(10, 40))  # no time between the first text and the end: no rate
    assert whole.final_rate() is None
    unreported = TurnMeter(clock=lambda: now[0])
    unreported.add_text("x")
    now[0] = 110.0
    unreported.finish(None)
    assert unreported.final_rate() is None and unreported.seconds() == 7.0


def test_sums_count_today_by_the_local_day():
    replies = [
        Message("assistant", "a", time="2026-01-01T12:00:00.000Z", model="m", usage=Usage(100, 10)),
        Message("assistant", "b", time="2026-01-02T12:00:00.000Z", model="m", usage=Usage(200, 20)),
        Message("assistant", "c", time="not a time", model="other", usage=Usage(1, 1)),
        Message("user", "q", time="2026-01-02T12:00:00.000Z"),
        Message("assistant", "d", time="2026-01-02T12:00:30.000Z", model="m", stopped=True),
    ]
    prices = {"m": ModelPrice(1.0, 2.0)}
    day = datetime.fromisoformat("2026-01-02T12:00:00+00:00").astimezone().date().isoformat()  # the local day
    everything, today = sum_usage(replies, prices.get, today=day)
    assert (everything.replies, everything.counted, everything.priced) == (4, 3, 2)
    assert (everything.prompt_tokens, everything.completion_tokens) == (301, 31)
    assert everything.dollars == pytest.approx((300 * 1 + 30 * 2) / 1e6)
    assert (today.replies, today.prompt_tokens) == (2, 200)
    assert today.text() == f"2 replies · 200 in · 20 out · {neurons_text(240e-6 / 0.000011)} · $0.00024 " \
        "(1 without usage)"
    assert sum_usage([], prices.get)[0].text() == "no replies"
