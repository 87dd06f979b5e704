"""A process that saves turns to one user's history, for the crash and concurrency tests.

    python tests/store_writer.py DATA_DIR USER PREFIX COUNT
        [--seed N] [--max-pad BYTES] [--pause-ms MS] [--wait-go] [--archived-meanwhile]
    python tests/store_writer.py --serve

A writer prints ``ready`` once the history is loaded, then for each turn it saved
``done <PREFIX>-<i> <count>``, where ``count`` is what append_turn returned. A line is printed only
after append_turn returned, so every id printed is a turn the store reported complete. The messages
carry random padding so that writes are large enough to be interrupted part way.

With ``--wait-go`` it waits for a line on stdin after ``ready`` (so several writers start together).
After each turn it checks what a process must see: the count is even and grows, and its own turn is
the last two cached messages (``--archived-meanwhile``: another process archives, so the count may
start again). A failed check exits with status 3.

``--serve`` starts a parent that forks writers on command, so a crash round costs a fork rather than
an interpreter start-up. It reads commands on stdin and answers each with one line on stdout:

    spawn DATA_DIR USER PREFIX SEED MAX_PAD OUT   ->  pid N      (the writer prints to the file OUT)
    kill                                          ->  killed S   (SIGKILL, then the wait status S)
    limited DATA_DIR USER NAME LIMIT              ->  pid N      (appends fixed_turn(NAME) with the
                                                                  file size limit LIMIT: the kernel
                                                                  kills it with SIGXFSZ mid-write)
    wait                                          ->  ended S    (the wait status S)
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import TextIO

from edgechat_tui.core.messages import Message
from edgechat_tui.storage.store import HistoryStore


def write_turns(data_dir: Path, user: str, prefix: str, count: int, out: TextIO, *, seed: int = 0,
                max_pad: int = 0, pause_ms: float = 0.0, wait_go: bool = False,
                archived_meanwhile: bool = False) -> int:
    rng = random.Random(seed)
    store = HistoryStore(data_dir, user, warn=lambda text: print(f"warn {text}", file=sys.stderr))
    store.load()
    print("ready", file=out, flush=True)
    if wait_go:
        sys.stdin.readline()
    previous = -1
    for i in range(count):
        turn_id = f"{prefix}-{i}"
        pad = "x" * rng.randint(0, max_pad) if max_pad else ""
        question = Message("user", f"turn {turn_id} {pad}")
        answer = Message("assistant", f"reply {turn_id} {pad[: len(pad) // 2]}", model="writer")
        stored = store.append_turn(question, answer)
        went_back = stored <= previous and not archived_meanwhile
        if stored % 2 or went_back or store.messages[-2:] != [question, answer]:
            print(f"inconsistent count={stored} previous={previous}", file=sys.stderr, flush=True)
            return 3
        previous = stored
        print(f"done {turn_id} {stored}", file=out, flush=True)
        if pause_ms:
            time.sleep(rng.uniform(0, pause_ms) / 1000)
    return 0


def fixed_turn(name: str) -> tuple[Message, Message]:
    """A turn whose stored form is always the same bytes, so a test knows each offset of its record."""
    return (Message("user", f"turn {name} ✓", time="2025-01-01T00:00:00.000Z"),
            Message("assistant", f"reply {name} ✓", time="2025-01-01T00:00:01.000Z", model="writer"))


def append_with_size_limit(data_dir: Path, user: str, name: str, limit: int) -> None:
    """Append one turn in a process the kernel kills when the file reaches ``limit`` bytes.

    A write that crosses RLIMIT_FSIZE is cut short at the limit, and the next write raises SIGXFSZ,
    whose default action ends the process: a real death part way through writing a record.
    """
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it by default
    HistoryStore(data_dir, user, warn=lambda _text: None).append_turn(*fixed_turn(name))


def serve() -> int:
    child = 0
    for line in sys.stdin:
        command = line.split()
        if command[0] == "spawn":
            data_dir, user, prefix, seed, max_pad, out_path = command[1:]
            child = os.fork()
            if child == 0:
                code = 4
                try:
                    with open(out_path, "w") as out:
                        code = write_turns(Path(data_dir), user, prefix, 1_000_000, out,
                                           seed=int(seed), max_pad=int(max_pad))
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            print(f"pid {child}", flush=True)
        elif command[0] == "limited":
            data_dir, user, name, limit = command[1:]
            child = os.fork()
            if child == 0:
                code = 4
                try:
                    append_with_size_limit(Path(data_dir), user, name, int(limit))
                    code = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            print(f"pid {child}", flush=True)
        elif command[0] == "wait":
            _, status = os.waitpid(child, 0)
            print(f"ended {status}", flush=True)
        elif command[0] == "kill":
            os.kill(child, signal.SIGKILL)
            _, status = os.waitpid(child, 0)  # reaped: its descriptors and its lock are gone
            print(f"killed {status}", flush=True)
    return 0


def main() -> int:
    if sys.argv[1:] == ["--serve"]:
        return serve()
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("user")
    parser.add_argument("prefix")
    parser.add_argument("count", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-pad", type=int, default=0)
    # Real processes spend time between turns (waiting for the model); a pause lets writers interleave.
    parser.add_argument("--pause-ms", type=float, default=0.0)
    parser.add_argument("--wait-go", action="store_true")
    # Another process archives the history now and then, so the count may start again from 2.
    parser.add_argument("--archived-meanwhile", action="store_true")
    args = parser.parse_args()
    return write_turns(args.data_dir, args.user, args.prefix, args.count, sys.stdout, seed=args.seed,
                       max_pad=args.max_pad, pause_ms=args.pause_ms, wait_go=args.wait_go,
                       archived_meanwhile=args.archived_meanwhile)


if __name__ == "__main__":
    sys.exit(main())
