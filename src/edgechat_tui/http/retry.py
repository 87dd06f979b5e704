"""When to try a request again: the wait between attempts, and the server's ``Retry-After``.

Shared by the Workers AI client and the remote agent, which differ in *whether* a failure may be
retried (a chat turn sent to an agent is not idempotent) but not in *how long* to wait.
"""

from __future__ import annotations

import email.utils
import random
import time

#: Longest wait between attempts, even when Retry-After asks for more.
MAX_RETRY_WAIT = 60.0
#: Attempt n waits a random time up to min(BACKOFF_CAP, base * 2**(n-1)); never less than the floor.
BACKOFF_CAP = 30.0
BACKOFF_FLOOR = 0.1


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT even when they fail to say so
            seconds = when.timestamp() - time.time() - time.timezone
        else:
            seconds = when.timestamp() - time.time()
    if seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)


def backoff_wait(attempt: int, retry_after: float | None = None, *, base: float = 1.0,
                 rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    The server's ``retry_after`` when it gave one (capped); otherwise exponential backoff with full
    jitter, which spreads out clients that failed together, with a floor so a retry is never instant.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_RETRY_WAIT)
    ceiling = min(BACKOFF_CAP, base * 2 ** (attempt - 1))
    return max(BACKOFF_FLOOR, (rng or random).uniform(0, ceiling))
