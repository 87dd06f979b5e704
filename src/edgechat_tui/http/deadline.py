"""An overall deadline for a reply, on top of httpx's timeouts (which time only the gap between bytes).

A server that sends a keep-alive comment, an empty delta or one byte every few seconds never trips
a read timeout; :class:`Deadline` bounds the whole reply. Each wait of a reply (the request, every
read, the pause before a retry) runs through :meth:`Deadline.run`, so the deadline is checked
inside the awaits themselves and never across a ``yield`` (where it would cancel the caller's code).

Arming a timer for every read of a stream costs more than parsing it, so an await that cannot
outlast the deadline is not wrapped: ``slack`` is the longest one await may take by itself (its own
connect and read timeouts bound it). Only when less than that is left is the timer armed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class DeadlineExceeded(Exception):
    """The reply took longer than its deadline. Typed for users by :mod:`edgechat_tui.http.transport`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the reply took longer than {seconds:g} s")
        self.seconds = seconds


class Deadline:
    """``seconds`` from now (None or 0: no deadline)."""

    __slots__ = ("_arm_at", "_end", "seconds", "slack")

    def __init__(self, seconds: float | None, *, slack: float = 0.0) -> None:
        self.seconds = seconds if seconds and seconds > 0 else None
        self.slack = slack
        self._end = time.monotonic() + self.seconds if self.seconds else None
        # Before this moment no await bounded by ``slack`` can outlast the deadline.
        self._arm_at = self._end - slack if self._end is not None else None

    def remaining(self) -> float | None:
        """Seconds left (never below 0), None without a deadline."""
        if self._end is None:
            return None
        return max(0.0, self._end - time.monotonic())

    def check(self) -> None:
        """Raise DeadlineExceeded when the deadline has passed."""
        if self._end is not None and time.monotonic() >= self._end:
            raise DeadlineExceeded(self.seconds or 0.0)

    def run(self, awaitable: Awaitable[T], *, longest: float | None = None) -> Awaitable[T]:
        """``awaitable`` bounded by what is left (await the result); DeadlineExceeded when time runs out.

        ``longest`` is how long the await can take at most by itself (default: ``slack``). When that
        is less than what is left, ``awaitable`` itself is returned: nothing is armed, nothing spent.
        """
        if self._arm_at is None or (longest is None and time.monotonic() < self._arm_at):
            return awaitable  # the common case, once per read of a stream: kept cheap
        remaining = self.remaining() or 0.0
        if remaining > (self.slack if longest is None else longest):
            return awaitable
        return self._bounded(awaitable, remaining)

    async def _bounded(self, awaitable: Awaitable[T], remaining: float) -> T:
        if remaining <= 0:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise DeadlineExceeded(self.seconds or 0.0)
        scope = asyncio.timeout(remaining)
        try:
            async with scope:
                return await awaitable
        except TimeoutError:
            if scope.expired():
                raise DeadlineExceeded(self.seconds or 0.0) from None
            raise


__all__ = ["Deadline", "DeadlineExceeded"]
