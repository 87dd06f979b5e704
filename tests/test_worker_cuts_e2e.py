"""Idempotent turns end to end: 500 turns through connections cut at random points, 0 lost, 0 twice.

The real Worker runs in workerd (serve-test.mjs, the Workers AI stub answering at once); the client
talks to it through :class:`~tests.fakes.cutting_proxy.CuttingProxy`, which cuts about half of the
connections at a random byte offset of the requests or of the answers. Several users send their
turns at the same time, each user one turn after another, as the client does. Then each user's
history is read from the Worker directly, and every turn is checked:

- *lost*: the client reported it done, and the Worker did not store it;
- *duplicated*: the Worker stored the message more than once;
- *wrong*: the client reported a reply that is not the stored one, or showed text twice.

A turn whose retries ran out must have ended in a clear error, and then be stored at most once.

``EDGECHAT_CUT_TURNS`` (default 500) is the number of turns in all, ``EDGECHAT_CUT_SEED`` the seed.
Figures are printed: ``idempotent cuts: 500 turns, ... 0 lost, 0 duplicated``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.core.messages import Done, Retrying, TextDelta
from tests.fakes.cutting_proxy import CuttingProxy
from tests.test_worker_e2e import WorkerProcess

TURNS = int(os.environ.get("EDGECHAT_CUT_TURNS", "500"))
SEED = int(os.environ.get("EDGECHAT_CUT_SEED", "20261201"))
USERS = 10


@dataclass
class Outcome:
    text: str
    done: Done | None = None
    shown: str = ""
    error: EdgechatError | None = None
    retries: int = 0


@dataclass
class Figures:
    turns: int = 0
    done: int = 0
    errors: int = 0
    replayed: int = 0
    retried_turns: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    notes: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def worker():
    server = WorkerProcess()
    try:
        yield server.url
    finally:
        server.stop()


async def _user_turns(url: str, user: str, count: int, idempotent_retries: int) -> list[Outcome]:
    outcomes: list[Outcome] = []
    async with RemoteAgent(url, user, timeout=10.0, connect_timeout=5.0, reply_timeout=120.0,
                           max_retries=idempotent_retries, retry_delay=0.05) as agent:
        for attempt in range(5):  # the health check may be cut too: it is not what this test is about
            try:
                await agent.check()
                break
            except EdgechatError:
                if attempt == 4:
                    raise
        assert agent.capabilities is not None and "idempotency" in agent.capabilities.names
        for number in range(count):
            # Every third reply is long (60 words, streamed in many pieces), so cuts land mid-reply too.
            longer = " [[words 60]]" if number % 3 == 0 else ""
            outcome = Outcome(text=f"turn {user} #{number}: remember {number * 7919 % 1000}{longer}")
            try:
                async for event in agent.send(outcome.text):
                    if isinstance(event, TextDelta):
                        outcome.shown += event.text
                    elif isinstance(event, Retrying):
                        outcome.retries += 1
                    elif isinstance(event, Done):
                        outcome.done = event
            except EdgechatError as error:
                outcome.error = error
            outcomes.append(outcome)
    return outcomes


async def _run(worker_url: str, turns: int, seed: int) -> tuple[Figures, dict[str, int], float]:
    upstream = urlsplit(worker_url)
    started = time.monotonic()
    per_user = [turns // USERS + (1 if i < turns % USERS else 0) for i in range(USERS)]
    users = [f"cut-{seed}-{i}" for i in range(USERS)]
    async with CuttingProxy((upstream.hostname or "127.0.0.1", upstream.port or 80), seed=seed,
                            max_answer_offset=3000) as proxy:
        results = await asyncio.gather(*(_user_turns(proxy.url, user, n, 10)
                                         for user, n in zip(users, per_user, strict=True)))
        counts = vars(proxy.counts).copy()
    elapsed = time.monotonic() - started
    figures = Figures()
    for user, outcomes in zip(users, results, strict=True):
        async with RemoteAgent(worker_url, user) as reader:  # straight to the Worker, no cuts
            history = await reader.history()
        assert history is not None
        stored: Counter[str] = Counter()
        replies: dict[str, list[str]] = {}
        for i, message in enumerate(history):
            if message.role != "user":
                continue
            stored[message.content] += 1
            following = history[i + 1] if i + 1 < len(history) else None
            reply = following.content if following is not None and following.role == "assistant" else None
            replies.setdefault(message.content, []).append(reply)
        for outcome in outcomes:
            figures.turns += 1
            times = stored[outcome.text]
            figures.retried_turns += outcome.retries > 0
            if times > 1:
                figures.duplicated += 1
                figures.notes.append(f"stored {times} times: {outcome.text}")
            if outcome.done is not None:
                figures.done += 1
                figures.replayed += outcome.done.replayed
                if times == 0:
                    figures.lost += 1
                    figures.notes.append(f"reported done, not stored: {outcome.text}")
                elif (replies[outcome.text][0] != outcome.done.message.content
                      or outcome.shown != outcome.done.message.content):
                    figures.wrong += 1
                    figures.notes.append(f"reply differs: {outcome.text}: shown {outcome.shown[:60]!r}, "
                                         f"done {outcome.done.message.content[:60]!r}, "
                                         f"stored {str(replies[outcome.text][0])[:60]!r}")
            else:
                figures.errors += 1
                assert outcome.error is not None and outcome.error.message, outcome.text
                if replies.get(outcome.text) and replies[outcome.text][0] is None:
                    figures.wrong += 1
                    figures.notes.append(f"stored without its reply: {outcome.text}")
    return figures, counts, elapsed


def test_500_turns_through_random_cuts_are_stored_once(worker, capsys):
    figures, counts, elapsed = asyncio.run(_run(worker, TURNS, SEED))
    line = (f"idempotent cuts: {figures.turns} turns (seed {SEED}) over {counts['connections']} connections, "
            f"{counts['cut_requests']} cut in a request and {counts['cut_answers']} in an answer; "
            f"{figures.retried_turns} turns retried, {figures.replayed} answered by a replay; "
            f"{figures.done} done, {figures.errors} clear errors; {figures.lost} lost, "
            f"{figures.duplicated} duplicated, {figures.wrong} wrong; {elapsed:.1f} s")
    with capsys.disabled():
        print(f"\n{line}")
    assert figures.turns == TURNS
    assert counts["cut_requests"] + counts["cut_answers"] >= TURNS // 10, "the proxy cut too little to test"
    assert figures.lost == 0, figures.notes[:10]
    assert figures.duplicated == 0, figures.notes[:10]
    assert figures.wrong == 0, figures.notes[:10]
    # Retries absorb the cuts: nearly every turn completes (ten retries each, backoff 0.05 s).
    assert figures.done >= TURNS * 0.95, line
