"""SSE parsing cost per byte: a long event trickled in small chunks against the same bytes in one chunk.

Run alone: ``python bench/bench_sse.py [--runs N] [--piece BYTES]``.

One event of 1 MiB and one of 4 MiB (a ``data:`` line without an end until the last chunk, the worst
case for a parser that re-scans its buffered line) are fed to :class:`SSEParser` in pieces of
``--piece`` bytes (1 KiB), and, as the baseline in the same run, in one chunk. Also a stream of
small events (4 MiB of 64-byte deltas) fed in 1 KiB pieces. Printed: medians, the trickled/whole
ratio, and the 4 MiB/1 MiB time ratio (4.0 for linear parsing; it was ~16 when every chunk
re-scanned the buffered line).
"""

from __future__ import annotations

import argparse
import statistics
import time

from edgechat_tui.http.sse import SSEParser

MiB = 1024 * 1024


def one_event(size: int) -> bytes:
    return b"data: " + b"x" * size + b"\n\n"


def small_events(size: int) -> bytes:
    event = b'data: {"response": "abcdefghijklmnopqrstuvwxyz0123456789"}\n\n'
    return event * (size // len(event))


def feed(data: bytes, piece: int) -> float:
    parser = SSEParser(max_event_bytes=len(data) + 1)
    started = time.perf_counter()
    events = 0
    for start in range(0, len(data), piece):
        events += len(parser.feed(data[start:start + piece]))
    events += len(parser.end())
    elapsed = time.perf_counter() - started
    assert events >= 1
    return elapsed


def median(data: bytes, piece: int, runs: int) -> float:
    return statistics.median(feed(data, piece) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--piece", type=int, default=1024)
    args = parser.parse_args()
    results: dict[str, float] = {}
    for label, data in (("1 MiB event", one_event(MiB)), ("4 MiB event", one_event(4 * MiB)),
                        ("4 MiB of small events", small_events(4 * MiB))):
        whole = median(data, len(data), args.runs)
        trickled = median(data, args.piece, args.runs)
        results[label] = trickled
        print(f"{label:<24} one chunk {whole * 1000:8.1f} ms   "
              f"{args.piece} B pieces {trickled * 1000:8.1f} ms"
              f"   ratio {trickled / whole:6.1f}x")
    print(f"4 MiB / 1 MiB event, trickled: {results['4 MiB event'] / results['1 MiB event']:.2f}x "
          "(4.0 is linear)")


if __name__ == "__main__":
    main()
