"""What edgechat knows about models: the table and defaults it shares with the Worker in ``worker/``.

One source for both sides: ``core/data/models.json``, read here when this module is imported and by
the Worker's build (``worker/src/config.ts`` imports the same file). Tests on each side hold that
the effective values are the file's, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "BYTES_PER_TOKEN",
    "CONTEXT_WINDOWS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODEL",
    "DEFAULT_SYSTEM_PROMPT",
    "DEFAULT_TEMPERATURE",
    "TOKENS_PER_MESSAGE",
    "UNKNOWN_MODEL_WINDOW",
    "shared_data",
]

_DATA = Path(__file__).with_name("data")


def shared_data(name: str) -> Any:
    """A data file shared with the Worker, parsed (``models.json``, ``userid_cases.json``)."""
    return json.loads((_DATA / name).read_text(encoding="utf-8"))


_TABLE = shared_data("models.json")
_DEFAULTS = _TABLE["defaults"]

DEFAULT_MODEL: str = _DEFAULTS["model"]
DEFAULT_MAX_TOKENS: int = _DEFAULTS["max_tokens"]
DEFAULT_TEMPERATURE: float = float(_DEFAULTS["temperature"])
DEFAULT_SYSTEM_PROMPT: str = _DEFAULTS["system_prompt"]
#: For a model neither the table nor the settings know: small enough to be safe almost anywhere.
UNKNOWN_MODEL_WINDOW: int = _DEFAULTS["unknown_model_context_window"]
#: The token estimate: one token per this many UTF-8 bytes (conservative for English, about right for CJK).
BYTES_PER_TOKEN: int = _TABLE["token_estimate"]["bytes_per_token"]
#: Chat templates add a few tokens around every message (role headers, end-of-turn markers).
TOKENS_PER_MESSAGE: int = _TABLE["token_estimate"]["tokens_per_message"]
#: Context windows of the models we know (tokens); prompt plus max_tokens must fit.
CONTEXT_WINDOWS = MappingProxyType({model: entry["context_window"]
                                    for model, entry in _TABLE["models"].items()})
