"""Indexing a conversation whose messages share one time, against one whose messages have their own.

    python bench/bench_index_one_time.py [--messages 10000] [--runs 7]

An imported or hand-made history may give thousands of messages the same time stamp. The search index
orders messages by a rowid made of the millisecond and a slot within it; finding a free slot must not
cost a walk over every slot taken before it. Each run builds one conversation of ``--messages``
messages twice (every question at one instant and every answer at another; and every message a
millisecond apart), deletes the index, and times the rebuild (``Library.list``, which refreshes the
index). The two kinds alternate; the figure is the ratio of the medians (1.0: a shared time costs
nothing more).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from edgechat_tui.core.messages import Message
from edgechat_tui.storage.format import encode_header, encode_turn
from edgechat_tui.storage.library import Library

USER = "alice"


def _stamp(ms_after: int) -> str:
    """A time stamp ``ms_after`` milliseconds after midnight of 2 January 2025."""
    seconds, ms = divmod(ms_after, 1000)
    return f"2025-01-02T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{ms:03d}Z"


def legacy_history(data_dir: Path, turns: int, *, one_time: bool) -> None:
    """A profile's single history file (as edgechat kept before the library); migrated on first use."""
    lines = [encode_header(USER, created="2025-01-01T00:00:00.000Z")]
    for i in range(turns):
        if one_time:
            asked, answered = "2025-01-01T10:00:00.000Z", "2025-01-01T10:00:01.000Z"
        else:
            asked, answered = _stamp(2 * i), _stamp(2 * i + 1)
        lines.append(encode_turn(Message("user", f"question {i}", time=asked),
                                 Message("assistant", f"answer {i} with a few more words", time=answered)))
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / f"{USER}.jsonl").write_bytes(b"".join(lines))


def rebuild(data_dir: Path) -> float:
    """Seconds to rebuild the index of the profile in ``data_dir`` from nothing."""
    for index in data_dir.rglob("*.sqlite*"):
        index.unlink()
    lib = Library(data_dir, USER, warn=lambda _m: None)
    try:
        started = time.perf_counter()
        listed = lib.list()
        took = time.perf_counter() - started
    finally:
        lib.close()
    assert len(listed) == 1
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="edgechat-bench-"))
    try:
        dirs = {}
        for kind in ("one time", "own times"):
            dirs[kind] = root / kind.replace(" ", "-")
            legacy_history(dirs[kind], args.messages // 2, one_time=kind == "one time")
            Library(dirs[kind], USER, warn=lambda _m: None).close()  # migrate once, outside the timing
        times: dict[str, list[float]] = {kind: [] for kind in dirs}
        for _ in range(args.runs):
            for kind, path in dirs.items():
                times[kind].append(rebuild(path))
        medians = {kind: statistics.median(values) for kind, values in times.items()}
        for kind, value in medians.items():
            print(f"rebuild, {args.messages:,} messages, {kind}: median {value * 1000:.1f} ms")
        print(f"ratio one time / own times: {medians['one time'] / medians['own times']:.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
