"""The wait between attempts and the reading of Retry-After, shared by both clients."""

from __future__ import annotations

import random
import time
from email.utils import formatdate

from hypothesis import given
from hypothesis import strategies as st

from edgechat_tui.http.retry import (
    BACKOFF_CAP,
    BACKOFF_FLOOR,
    MAX_RETRY_WAIT,
    backoff_wait,
    parse_retry_after,
)


def test_retry_after_in_seconds_and_as_a_date():
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 2.5 ") == 2.5
    later = parse_retry_after(formatdate(time.time() + 30, usegmt=True))
    assert later is not None and 25 < later <= 31
    assert parse_retry_after(formatdate(time.time() - 30, usegmt=True)) == 0.0
    assert parse_retry_after("-3") == 0.0


def test_unreadable_retry_after_is_none():
    for value in (None, "", "soon", "nan", "Mon, 99 Foo 2026"):
        assert parse_retry_after(value) is None


def test_the_servers_wait_is_honoured_and_capped():
    assert backoff_wait(1, 7.0) == 7.0
    assert backoff_wait(3, 10_000.0) == MAX_RETRY_WAIT


@given(attempt=st.integers(1, 40), seed=st.integers(0, 2**32))
def test_backoff_grows_within_its_bounds(attempt, seed):
    wait = backoff_wait(attempt, rng=random.Random(seed))
    assert BACKOFF_FLOOR <= wait <= max(BACKOFF_FLOOR, min(BACKOFF_CAP, 2 ** (attempt - 1)))
