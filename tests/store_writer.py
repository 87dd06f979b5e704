"""A process that saves turns to one user's history, for the crash and concurrency tests.

    python tests/store_writer.py DATA_DIR USER PREFIX COUNT [--seed N] [--max-pad BYTES] [--wait-go]

Prints ``ready`` once the history is loaded, then for each turn it saved ``done <PREFIX>-<i> <count>``,
where ``count`` is what append_turn returned. A line is printed only after append_turn returned, so
every id printed is a turn the store reported complete. The messages carry random padding so that
writes are large enough to be interrupted part way.

With ``--wait-go`` it waits for a line on stdin after ``ready`` (so several writers start together).
After each turn it checks what a process must see: the count is even and grows, and its own turn is
the last two cached messages. A failed check exits with status 3.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from edgechat_tui.agent.base import Message
from edgechat_tui.agent.store import HistoryStore


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("user")
    parser.add_argument("prefix")
    parser.add_argument("count", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-pad", type=int, default=0)
    parser.add_argument("--wait-go", action="store_true")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    store = HistoryStore(args.data_dir, args.user, warn=lambda text: print(f"warn {text}", file=sys.stderr))
    store.load()
    print("ready", flush=True)
    if args.wait_go:
        sys.stdin.readline()
    previous = -1
    for i in range(args.count):
        turn_id = f"{args.prefix}-{i}"
        pad = "x" * rng.randint(0, args.max_pad) if args.max_pad else ""
        question = Message("user", f"turn {turn_id} {pad}")
        answer = Message("assistant", f"reply {turn_id} {pad[: len(pad) // 2]}", model="writer")
        count = store.append_turn(question, answer)
        if count % 2 or count <= previous or store.messages[-2:] != [question, answer]:
            print(f"inconsistent count={count} previous={previous}", file=sys.stderr, flush=True)
            return 3
        previous = count
        print(f"done {turn_id} {count}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
