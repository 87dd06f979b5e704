"""One tiny real call to Workers AI. Opt-in: runs only when real credentials are in the environment.

    CLOUDFLARE_ACCOUNT_ID=... CLOUDFLARE_API_TOKEN=... pytest -m live tests/test_live_cloudflare.py

``EDGECHAT_LIVE_MODEL`` picks the model (default: a small, cheap one).
"""

from __future__ import annotations

import contextlib
import os

import pytest

from edgechat_tui.backends.local.workers_ai import Completion, WorkersAIClient
from edgechat_tui.core.messages import TextDelta

ACCOUNT = os.environ.get("CLOUDFLARE_ACCOUNT_ID", "")
TOKEN = os.environ.get("CLOUDFLARE_API_TOKEN", "")

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not (ACCOUNT and TOKEN),
                       reason="CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN not set"),
]


async def test_one_tiny_streamed_reply():
    model = os.environ.get("EDGECHAT_LIVE_MODEL", "@cf/meta/llama-3.1-8b-instruct-fast")
    async with WorkersAIClient(account_id=ACCOUNT, api_token=TOKEN, max_retries=1) as client:
        await client.verify_token()
        messages = [{"role": "user", "content": "Reply with the single word: pong"}]
        async with contextlib.aclosing(client.chat(messages, model=model, max_tokens=8, temperature=0.0,
                                                   session_id="edgechat-live-test")) as events:
            seen = [event async for event in events]
    completion = seen[-1]
    assert isinstance(completion, Completion) and completion.text.strip()
    assert completion.text == "".join(e.text for e in seen if isinstance(e, TextDelta))
