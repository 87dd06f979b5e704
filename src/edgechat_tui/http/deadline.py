"""An overall deadline for a reply, on top of httpx's timeouts (which time only the gap between bytes).

A server that sends a keep-alive comment, an empty delta or one byte every few seconds never trips
a read timeout; :class:`Deadline` bounds the whole reply. Each wait of a reply (the request, every
read, the pause before a retry) runs through :meth:`Deadline.run`, so the deadline is checked
inside the awaits themselves and never across a ``yield`` (where it would cancel the caller's code).
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

    __slots__ = ("_end", "seconds")

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds if seconds and seconds > 0 else None
        self._end = time.monotonic() + self.seconds if self.seconds else None

    def remaining(self) -> float | None:
        """Seconds left (never below 0), None without a deadline."""
        if self._end is None:
            return None
        return max(0.0, self._end - time.monotonic())

    def check(self) -> None:
        """Raise DeadlineExceeded when the deadline has passed."""
        if self._end is not None and time.monotonic() >= self._end:
            raise DeadlineExceeded(self.seconds or 0.0)

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` within what is left; DeadlineExceeded when time runs out first."""
        remaining = self.remaining()
        if remaining is None:
            return await awaitable
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
