"""Long histories: first frame, time until shown, memory and scrolling, 10,000 messages vs none.

Run alone: ``python bench/bench_history.py [--runs N] [--messages N]``.

The real app (``python -m edgechat_tui``) runs in a pseudo-terminal, as in bench_startup.py:

* first frame: process start to the chat screen drawn (the input's placeholder in the output);
* shown: process start to the status line's ``ready`` (the history loaded and its newest part
  mounted, scrolled to the end), also against a 2-message history, which separates the cost of
  loading the Markdown renderer (paid by any history) from the cost of the length;
* memory: the resident set size once shown (and settled for a second);
* scrolling: PageUp pressed 30 times, 80 ms apart, timing each press until the terminal receives
  the redraw (the pane mounts earlier pages as it reaches their top). Against a 200-message history.

The baseline is the same app with an empty history (for scrolling: 200 messages), measured in the
same run, runs interleaved. The issue's goal: 10,000 messages open within 1.5x of an empty profile.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_startup import FIRST_FRAME, READY, PtyChild, edgechat_argv, edgechat_env, percentile, summary

from edgechat_tui.core.messages import Message
from edgechat_tui.storage.store import encode_header, encode_turn

PAGE_UP = b"\x1b[5~"


def write_history(data_dir: Path, user: str, messages: int) -> None:
    """A history file as the store writes it: ``messages`` / 2 turns of Markdown."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lines = [encode_header(user)]
    for i in range(messages // 2):
        question = Message("user", f"Question {i}: how do I do thing number {i} in Python?",
                           time="2025-01-01T10:00:00.000Z")
        answer = Message("assistant", f"## Thing {i}\n\nUse a **loop**:\n\n```python\nfor x in range({i}):\n"
                         f"    print(x)\n```\n\n- it is simple\n- it is fast ({i} steps)\n",
                         time="2025-01-01T10:00:01.000Z", model="@cf/meta/llama-3.3-70b-instruct-fp8-fast")
        lines.append(encode_turn(question, answer))
    (data_dir / f"{user}.jsonl").write_bytes(b"".join(lines))


def open_once(env: dict[str, str], user: str) -> tuple[float, float, int]:
    """(first frame, shown, RSS KiB) of one start of the app for ``user``."""
    child = PtyChild(edgechat_argv(user), env)
    try:
        first = child.wait_for(FIRST_FRAME)
        shown = child.wait_for(READY)
        child.drain(1.0)
        return first, shown, child.rss_kib()
    finally:
        child.stop()


def page_up_latencies(env: dict[str, str], user: str, presses: int = 30) -> list[float]:
    child = PtyChild(edgechat_argv(user), env)
    try:
        child.wait_for(READY)
        child.drain(1.0)
        latencies = []
        for _ in range(presses):
            child.drain(0.08)
            mark = len(child.output)
            sent = time.perf_counter()
            child.write(PAGE_UP)
            while len(child.output) == mark:
                if time.perf_counter() - sent > 5:
                    break
                child.read(0.5)
            latencies.append(time.perf_counter() - sent)
        return latencies
    finally:
        child.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="edgechat-history-") as tmp:
        data_dir = Path(tmp) / "data"
        write_history(data_dir, "long", args.messages)
        write_history(data_dir, "medium", 200)
        write_history(data_dir, "short", 2)
        size_mb = (data_dir / "long.jsonl").stat().st_size / 1e6
        results: dict[str, list[tuple[float, float, int]]] = {"empty": [], "short": [], "long": []}
        with edgechat_env(data_dir) as (env, _fake):
            for run in range(args.runs + 1):  # the first round fills the bytecode cache: dropped
                for user in ("empty", "short", "long"):
                    outcome = open_once(env, user)
                    if run:
                        results[user].append(outcome)
            scroll_long = page_up_latencies(env, "long")
            scroll_medium = page_up_latencies(env, "medium")

    def column(user: str, index: int) -> list[float]:
        return [r[index] for r in results[user]]

    first_ratio = statistics.median(column("long", 0)) / statistics.median(column("empty", 0))
    shown_ratio = statistics.median(column("long", 1)) / statistics.median(column("empty", 1))
    shown_vs_short = statistics.median(column("long", 1)) / statistics.median(column("short", 1))
    rss = {user: statistics.median(column(user, 2)) / 1024 for user in results}
    n = f"{args.messages:,}"
    print(f"History of {n} messages ({size_mb:.1f} MB on disk) vs an empty one, the real app in a pty:")
    print(f"  first frame, empty:             {summary(column('empty', 0))}")
    print(f"  first frame, {n} messages:    {summary(column('long', 0))}")
    print(f"  ratio: {first_ratio:.2f}x   (goal: within 1.5x)")
    print(f"  shown (ready), empty:           {summary(column('empty', 1))}")
    print(f"  shown (ready), 2 messages:      {summary(column('short', 1))}")
    print(f"  shown (ready), {n} messages:  {summary(column('long', 1))}")
    print(f"  ratio to empty: {shown_ratio:.2f}x; to 2 messages: {shown_vs_short:.2f}x "
          "(the first reply shown loads the Markdown renderer, whatever the history's length)")
    print(f"  memory (RSS once shown): empty {rss['empty']:.1f} MiB, 2 messages {rss['short']:.1f} MiB, "
          f"{n} messages {rss['long']:.1f} MiB")
    for name, values in ((f"{args.messages:,} messages", scroll_long), ("200 messages", scroll_medium)):
        print(f"  PageUp to redraw, {name}: median {statistics.median(values) * 1000:.1f} ms, "
              f"p95 {percentile(values, 0.95) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
