"""When to try a request again: the wait between attempts, and the server's ``Retry-After``.

Shared by the Workers AI client and the remote agent, which differ in *whether* a failure may be
retried (a chat turn sent to an agent is not idempotent) but not in *how long* to wait, nor in the
loop that does it (:func:`with_retries`).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.core.messages import Retrying, TextDelta

E = TypeVar("E")

#: Longest wait between attempts, even when Retry-After asks for more.
MAX_RETRY_WAIT = 60.0
#: Attempt n waits a random time up to min(BACKOFF_CAP, base * 2**(n-1)); never less than the floor.
BACKOFF_CAP = 30.0
BACKOFF_FLOOR = 0.1
#: A refused connection means nothing listens there: a server not started, or restarting (a
#: development server reloading its code). It is tried again soon and briefly (0.25, 0.5, 1 s
#: with three retries): a restart is over within that, and a server that is not there is
#: reported in under 2 s instead of after the full backoff (about 4 s).
REFUSED_FIRST_WAIT = 0.25


__all__ = ["BACKOFF_CAP", "BACKOFF_FLOOR", "MAX_RETRY_WAIT", "REFUSED_FIRST_WAIT", "backoff_wait",
           "parse_retry_after", "refused_wait", "with_retries"]


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


def refused_wait(attempt: int, *, base: float = 1.0) -> float:
    """Seconds to wait after a refused connection on attempt ``attempt`` (1-based): doubling from
    ``REFUSED_FIRST_WAIT`` (or ``base``, when smaller), without jitter (a refusal is not a load
    to spread out)."""
    return min(max(base, 0.0), REFUSED_FIRST_WAIT) * 2 ** (attempt - 1)


async def with_retries(
    attempt: Callable[[], AsyncIterator[E]],
    *,
    max_attempts: int,
    wait_for: Callable[[EdgechatError, int], float | None],
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    reason: Callable[[EdgechatError], str] = lambda error: error.message,
    retry_after_text: bool = False,
) -> AsyncIterator[E | Retrying]:
    """The one retry loop: run ``attempt()`` and pass its events on, trying again when allowed.

    After a failed attempt ``n``, ``wait_for(error, n)`` says how long to wait before the next, or None
    when it must not be tried again. Never after reply text was passed on (a reply is never shown
    twice) unless ``retry_after_text`` (the attempt skips what was shown: an idempotent agent's
    repeat), and never past ``max_attempts``. A :class:`Retrying` event announces each wait.
    """
    for number in range(1, max_attempts + 1):
        sent_text = False
        try:
            # aclosing: when our caller stops early, the attempt (and its connection) ends now.
            async with contextlib.aclosing(attempt()) as events:
                async for event in events:
                    if isinstance(event, TextDelta) and event.text:
                        sent_text = True
                    yield event
            return
        except EdgechatError as error:
            blocked = sent_text and not retry_after_text
            wait = None if blocked or number >= max_attempts else wait_for(error, number)
            if wait is None:
                raise
            failure = error
        yield Retrying(attempt=number, max_attempts=max_attempts, wait=wait, reason=reason(failure))
        await sleep(wait)
