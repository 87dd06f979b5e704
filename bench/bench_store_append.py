"""Saving a turn costs the same on a 100,000-message history as on an empty one.

    python bench/bench_store_append.py [--dir DIR] [--messages 100000] [--appends 200] [--rewrites 11]

Measures, in one run on the same disk:

- HistoryStore.append_turn on a history that starts empty (the median of ``--appends`` turns);
- HistoryStore.append_turn on a history of ``--messages`` messages, alternating with the above;
- the baseline: the naive way, rewriting one JSON document of the whole history on every turn
  (serialise, write a temp file, fsync, rename), at the same sizes;
- for the record, loading the big history, and refresh() picking up one turn another process added
  (or finding nothing new).

Every save is durable (fsync) in both approaches, so the difference is the work, not the safety.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from edgechat_tui.core.messages import Message, Usage
from edgechat_tui.storage.store import HistoryStore, encode_header, encode_turn

QUESTION = "How do I keep a conversation history safe when two processes write it at once? " * 2
ANSWER = ("Take a lock, append one line per turn, and fsync before you report success. " * 8).strip()


def sample_turn(n: int) -> tuple[Message, Message]:
    return (Message("user", f"{n}: {QUESTION}"),
            Message("assistant", f"{n}: {ANSWER}", model="@cf/meta/llama-3.3-70b-instruct-fp8-fast",
                    usage=Usage(812, 143, 955)))


def build_history(data_dir: Path, user: str, messages: int) -> Path:
    """Write a history of ``messages`` messages in one go (far faster than appending turn by turn)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{user}.jsonl"
    with open(path, "wb") as f:
        f.write(encode_header(user))
        f.writelines(encode_turn(*sample_turn(n)) for n in range(messages // 2))
        f.flush()
        os.fsync(f.fileno())
    return path


def timed(action: Callable[[], object], times: int) -> list[float]:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def interleaved(first: HistoryStore, second: HistoryStore, times: int) -> tuple[list[float], list[float]]:
    """Time ``times`` append_turn calls on each store, alternating between them."""
    samples: tuple[list[float], list[float]] = ([], [])
    for n in range(times):
        for store, out in zip((first, second), samples, strict=True):
            turn = sample_turn(n)
            start = time.perf_counter()
            store.append_turn(*turn)
            out.append(time.perf_counter() - start)
    return samples


class NaiveDocument:
    """The baseline: one JSON document holding the whole history, rewritten (atomically) per turn."""

    def __init__(self, path: Path, messages: list[Message]) -> None:
        self.path = path
        self.messages = messages

    def append_turn(self, user_message: Message, reply: Message) -> int:
        self.messages += [user_message, reply]
        data = json.dumps({"schema": 1, "messages": [m.to_json() for m in self.messages]},
                          ensure_ascii=False).encode("utf-8")
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        return len(self.messages)


def ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp folder)")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--appends", type=int, default=200)
    parser.add_argument("--rewrites", type=int, default=11)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="edgechat-bench-", dir=args.dir))
    try:
        started = time.perf_counter()
        path = build_history(root / "big", "alice", args.messages)
        built = time.perf_counter() - started
        big = HistoryStore(root / "big", "alice")
        load_samples = timed(big.load, 3)
        built_messages = big.message_count()
        small = HistoryStore(root / "small", "alice")
        # Alternate the two, so that whatever else the machine and its disk are doing hits both alike.
        small_samples, big_samples = interleaved(small, big, args.appends)

        # refresh() when another process added one turn: reads only the new bytes.
        other = HistoryStore(root / "big", "alice")
        other.load()
        counter = iter(range(10**9))

        def refresh_after_other_append() -> None:
            other.append_turn(*sample_turn(next(counter)))
            start = time.perf_counter()
            big.refresh()
            refresh_times.append(time.perf_counter() - start)

        refresh_times: list[float] = []
        timed(refresh_after_other_append, 50)
        idle_refresh = timed(big.refresh, 50)

        naive_small = NaiveDocument(root / "naive-small.json", [])
        naive_big = NaiveDocument(root / "naive-big.json", list(big.messages))
        naive_small_samples, naive_big_samples = [], []
        for n in range(args.rewrites):
            naive_small_samples += timed(lambda n=n: naive_small.append_turn(*sample_turn(n)), 1)
            naive_big_samples += timed(lambda n=n: naive_big.append_turn(*sample_turn(n)), 1)
        naive_size = (root / "naive-big.json").stat().st_size

        jsonl_small, jsonl_big = ms(small_samples), ms(big_samples)
        rewrite_small, rewrite_big = ms(naive_small_samples), ms(naive_big_samples)
        print(f"history store append benchmark: {args.appends} appends per case ({args.rewrites} for the "
              f"baseline), fsync on every save, in {root}")
        print(f"  big history: {built_messages:,} messages, {path.stat().st_size / 1e6:.1f} MB "
              f"(built in {built:.1f} s); as one JSON document: {naive_size / 1e6:.1f} MB")
        print()
        n = f"{args.messages:,}"
        rows = [
            ("append_turn, history starting empty", jsonl_small),
            (f"append_turn, {n}-message history", jsonl_big),
            ("baseline: rewrite JSON document, starting empty", rewrite_small),
            (f"baseline: rewrite JSON document, {n} messages", rewrite_big),
            (f"load(), {n} messages", ms(load_samples)),
            ("refresh() after another process added a turn", ms(refresh_times)),
            ("refresh() with nothing new", ms(idle_refresh)),
        ]
        print(f"  {'case':<50}{'median':>12}")
        for label, value in rows:
            print(f"  {label:<50}{value:>9.3f} ms")
        print()
        print(f"  append_turn, big / empty history:            {jsonl_big / jsonl_small:8.2f}x  (flat is 1)")
        print(f"  baseline rewrite, big / empty history:       {rewrite_big / rewrite_small:8.2f}x")
        print(f"  baseline rewrite / append_turn, big history: {rewrite_big / jsonl_big:8.1f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
