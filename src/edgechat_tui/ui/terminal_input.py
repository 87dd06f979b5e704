"""Bytes from the terminal that are not UTF-8 never end the app.

Textual's drivers decode what the terminal sends with a strict UTF-8 decoder: one byte that is not
UTF-8 (a paste from a terminal set to another encoding, a stray 0x9b, a multi-byte character cut
short) raises in the input thread, which ends the app with exit status 0 and takes the text in the
input box with it (Textual issue #6456). A driver's module looks its decoder factory up when its
input thread starts; :func:`lenient_input` gives the module of the driver the app runs on one that
replaces each such byte sequence with U+FFFD, so the rest of a paste arrives as it was, with a
visible mark where the bytes were, and the input box keeps everything else.
"""

from __future__ import annotations

import codecs
import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["lenient_input"]

DriverClass = TypeVar("DriverClass", bound=type)


def lenient_input(driver_class: DriverClass) -> DriverClass:
    """``driver_class``, its module's input decoding made to replace what is not UTF-8."""
    module = sys.modules.get(driver_class.__module__)
    if module is not None and getattr(module, "getincrementaldecoder", None) is codecs.getincrementaldecoder:
        module.getincrementaldecoder = _replacing  # type: ignore[attr-defined]
    return driver_class


def _replacing(encoding: str) -> Callable[..., Any]:
    """``codecs.getincrementaldecoder(encoding)``, its decoders replacing by default."""
    return functools.partial(codecs.getincrementaldecoder(encoding), errors="replace")
