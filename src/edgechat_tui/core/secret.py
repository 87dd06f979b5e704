"""A token that never shows itself: not in a repr, a str, a log line or a pickle."""

from __future__ import annotations

from typing import Any


class Secret:
    """A token. Its repr and str never show it; ``reveal()`` is the one way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:  # pickling would write the token out in clear: refuse
        raise TypeError("a Secret cannot be pickled")
