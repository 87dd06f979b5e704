"""The conversation list in remote mode: ``RemoteAgent.conversations.list()`` against our Worker.

Run alone: ``python bench/bench_remote_library.py [--runs N] [--conversations N]`` (needs
``cd worker && npm ci``: the Worker runs in workerd on loopback, as in tests/test_worker_e2e.py).

One user's Durable Object holds ``--conversations`` conversations (default 1,000, made through the
client's ``create``), another's holds one. Each run times, interleaved, the list of each: the request,
the Worker's answer and the client reading every entry as untrusted data (ids checked, titles cleaned).
The baseline is the one-conversation list in the same run: the issue's goal for opening the list is
within 10% of a profile with one (that goal is for the first frame, which reading the list need not
hold up; here is what the read itself costs). Also printed: decoding the
1,000 entries alone, without the network.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgechat_tui.backends.remote.agent import RemoteAgent  # noqa: E402
from edgechat_tui.backends.remote.library_data import decode_summaries  # noqa: E402


async def fill(agent: RemoteAgent, count: int) -> None:
    library = agent.conversations
    assert library is not None, "the agent does not offer conversations"
    have = len(await library.list())
    for i in range(have, count):
        await library.create(f"Conversation number {i} about a trip \x1b[1mwith\x1b[0m friends")


async def timed_list(agent: RemoteAgent) -> tuple[float, int]:
    start = time.perf_counter()
    found = await agent.conversations.list()
    return time.perf_counter() - start, len(found)


async def main(url: str, runs: int, count: int) -> None:
    async with RemoteAgent(url, "bench-many") as many, RemoteAgent(url, "bench-one") as one:
        await many.check()
        await one.check()
        await fill(many, count)
        await fill(one, 1)
        await timed_list(many)  # warm both objects up
        await timed_list(one)
        big, small = [], []
        for _ in range(runs):
            seconds, n = await timed_list(many)
            assert n == count, n
            big.append(seconds)
            seconds, n = await timed_list(one)
            small.append(seconds)
        raw = {"conversations": [s.to_json() | {"leaf": None} for s in await many.conversations.list()]}
    body = json.loads(json.dumps(raw))
    decode = []
    for _ in range(runs):
        start = time.perf_counter()
        decode_summaries(body)
        decode.append(time.perf_counter() - start)
    b, s = statistics.median(big), statistics.median(small)
    print(f"list of {count} conversations: median {b * 1000:.1f} ms over {runs} runs; "
          f"baseline (one conversation) {s * 1000:.1f} ms: {b / s:.2f}x; "
          f"decoding the {count} entries alone {statistics.median(decode) * 1000:.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--conversations", type=int, default=1000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from tests.test_worker_e2e import WorkerProcess

    worker = WorkerProcess()
    try:
        asyncio.run(main(worker.url, args.runs, args.conversations))
    finally:
        worker.stop()
