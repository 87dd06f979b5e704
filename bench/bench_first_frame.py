"""The conversation on screen at once: process start to the newest messages drawn, long and short.

Run alone: ``python bench/bench_first_frame.py [--runs N] [--messages N]``.

The harness of bench_startup.py: each run forks a child on a new 100x30 pty (TERM=xterm-256color)
and reads what it writes, as a terminal would; the clock starts just before the fork.

* baseline: the minimal Textual app of bench_startup.py (Header, VerticalScroll, Input, Footer),
  until its first frame (the input's placeholder in the output);
* edgechat (``python -m edgechat_tui --user U``, what the ``edgechat`` command runs), for a profile
  with a long history (10,000 messages by default) and one with a short one (4 messages):
  - first frame: the chat input's placeholder in the output;
  - conversation: the newest reply's last line (``it is fast (N steps)``, unique to that reply)
    in the output: the newest messages on screen;
  - ready: the status line's ``ready`` (the agent created and the store's view shown).

Runs are interleaved (baseline, long, short) after a first round that fills the bytecode cache and
is not counted. Prints medians and the ratios to the baseline's first frame, and the median of
each run's ratio to the baseline run of its round (steadier on a machine shared with other work);
the goal is the conversation on screen within 1.3x of the minimal app's first frame.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_history import write_history
from bench_startup import (
    COLUMNS,
    FIRST_FRAME,
    READY,
    ROWS,
    PtyChild,
    base_env,
    baseline_argv,
    edgechat_argv,
    edgechat_env,
    summary,
)

SHORT = 4
# What the pane says in an empty conversation.
EMPTY_MARKER = b"No messages yet"


def newest_marker(messages: int) -> bytes:
    """The last line of the newest reply of a history written by ``write_history``."""
    return f"it is fast ({messages // 2 - 1} steps)".encode()


def baseline_once() -> float:
    child = PtyChild(baseline_argv(), base_env())
    try:
        return child.wait_for(FIRST_FRAME)
    finally:
        child.stop()


def edgechat_once(env: dict[str, str], user: str, messages: int) -> tuple[float, float, float]:
    """(first frame, conversation on screen, ready) of one start of the app for ``user``."""
    child = PtyChild(edgechat_argv(user), env)
    try:
        first = child.wait_for(FIRST_FRAME)
        shown = child.wait_for(newest_marker(messages) if messages else EMPTY_MARKER)
        ready = child.wait_for(READY)
        return first, shown, ready
    finally:
        child.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--empty", action="store_true", help="also a profile without a history")
    args = parser.parse_args()

    profiles = {"long": args.messages, "short": SHORT} | ({"empty": 0} if args.empty else {})
    baseline: list[float] = []
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in profiles}
    with tempfile.TemporaryDirectory(prefix="edgechat-first-frame-") as tmp:
        data_dir = Path(tmp) / "data"
        for user, messages in profiles.items():
            if messages:
                write_history(data_dir, user, messages)
        size_mb = (data_dir / "long.jsonl").stat().st_size / 1e6
        with edgechat_env(data_dir) as (env, _fake):
            for run in range(args.runs + 1):  # the first round fills the bytecode cache: dropped
                first = baseline_once()
                outcomes = {user: edgechat_once(env, user, messages) for user, messages in profiles.items()}
                if run:
                    baseline.append(first)
                    for user, outcome in outcomes.items():
                        results[user].append(outcome)

    base = statistics.median(baseline)
    print(f"Process start to the screen in a {COLUMNS}x{ROWS} pty; long: {args.messages:,} messages "
          f"({size_mb:.1f} MB), short: {SHORT} messages")
    print(f"  baseline first frame (Header, VerticalScroll, Input, Footer): {summary(baseline)}")
    for user, messages in profiles.items():
        rows = results[user]
        label = f"{user} ({messages:,} messages)"
        for index, what in ((0, "first frame"), (1, "conversation on screen"), (2, "ready")):
            values = [row[index] for row in rows]
            ratio = statistics.median(values) / base
            print(f"  {label:24} {what:23} {summary(values)}   {ratio:.2f}x")
    for user in profiles:
        first = statistics.median(row[0] for row in results[user]) / base
        shown = statistics.median(row[1] for row in results[user]) / base
        # Each run against the baseline run just before it: steadier when other work comes and goes.
        paired = statistics.median(row[1] / b for row, b in zip(results[user], baseline, strict=True))
        print(f"  {user}: first-frame ratio {first:.2f}x, conversation-on-screen ratio {shown:.2f}x "
              f"(paired by run: {paired:.2f}x; goal: within 1.3x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
