"""What Python and the Worker share comes from one file each, and both sides hold to it.

The Worker's half of this is ``worker/test/shared-data.test.mjs``; a change to the files that one side
does not follow fails there or here.
"""

from __future__ import annotations

import pytest

from edgechat_tui.backends.local.context import context_window_for, estimate_tokens, message_tokens
from edgechat_tui.config.settings import OPTIONS
from edgechat_tui.core.errors import InvalidUserId
from edgechat_tui.core.messages import Message
from edgechat_tui.core.models import shared_data
from edgechat_tui.core.userid import validate_user_id

MODELS = shared_data("models.json")
CASES = shared_data("userid_cases.json")["cases"]


def test_the_settings_defaults_are_the_files() -> None:
    defaults = MODELS["defaults"]
    assert OPTIONS["model"].default == defaults["model"]
    assert OPTIONS["max_tokens"].default == defaults["max_tokens"]
    assert OPTIONS["temperature"].default == defaults["temperature"]
    assert OPTIONS["system_prompt"].default == defaults["system_prompt"]


def test_the_context_windows_are_the_files() -> None:
    for model, entry in MODELS["models"].items():
        assert context_window_for(model) == entry["context_window"]
    unknown = MODELS["defaults"]["unknown_model_context_window"]
    assert context_window_for("@cf/nobody/unknown-model") == unknown


def test_the_token_estimate_is_the_files() -> None:
    per_token = MODELS["token_estimate"]["bytes_per_token"]
    overhead = MODELS["token_estimate"]["tokens_per_message"]
    for text in ("", "a", "ab", "abc", "abcd", "é" * 7, "字" * 11, "x" * 1000):
        size = len(text.encode())
        assert estimate_tokens(text) == -(-size // per_token)
        assert message_tokens(Message("user", text)) == -(-size // per_token) + overhead


@pytest.mark.parametrize("case", CASES, ids=[repr(c["id"])[:40] for c in CASES])
def test_every_shared_user_id_case(case: dict) -> None:
    if case["valid"]:
        assert validate_user_id(case["id"]) == case["id"]
    else:
        with pytest.raises(InvalidUserId):
            validate_user_id(case["id"])
