"""The conversation library in the chat screen: start-up with many conversations, and opening a long one.

Run alone: ``python bench/bench_library_tui.py [--runs N] [--conversations N] [--messages N]
[--before SRC] [--opens-only]``.

The real app (``python -m edgechat_tui``) runs in a pseudo-terminal, as in bench_startup.py:

* **first frame** (process start to the chat screen drawn) and **ready** (the open conversation shown)
  with a profile of 1,000 conversations, against a profile of one conversation, runs interleaved.
  The issue's goal: the list with 1,000 conversations does not slow the first frame (within 10%).
  Also: Ctrl+B until the list's heading with its count is drawn (the list is read only then).
* **opening a long conversation from the list**: Ctrl+B, Up to the row of a 10,000-message
  conversation, Enter at once, until its newest message is on screen (the headline: the goal is
  within 100 ms); the baseline is the same steps to a 2-message conversation. Then the same with the
  highlight resting 0.3 s on the row before Enter (as a person's may: the list reads it ahead).

``--before SRC``: the open-from-list steps also run with the code in ``SRC`` (a copy of ``src/`` from
an earlier commit: ``git archive COMMIT src | tar -x -C /tmp/before``), interleaved with this one's,
so that the two are measured in the same run. ``--opens-only`` leaves the start-up part out.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_startup import FIRST_FRAME, READY, PtyChild, edgechat_argv, edgechat_env, summary

from edgechat_tui.core.messages import Message
from edgechat_tui.storage.chat_format import MessageEntry, chat_header, encode_messages, new_chat_id

MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
CTRL_B, UP, ENTER = b"\x02", b"\x1b[A", b"\r"
NEWEST = b"NEWESTMARK"


def write_conversation(data_dir: Path, user: str, messages: int, when: datetime, title: str,
                       last: str = "") -> str:
    """A conversation file of ``messages`` messages (Markdown replies), its last reply ending in ``last``."""
    ms = int(when.timestamp() * 1000)
    chat_id = new_chat_id(ms=ms, random_bits=ms % (1 << 20))
    root = data_dir / f"{user}.chats"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    def iso(moment: datetime) -> str:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    lines = [chat_header(user, chat_id, created=iso(when))]
    parent = None
    turns = max(1, messages // 2)
    for i in range(turns):
        stamp = iso(when + timedelta(seconds=i))  # a turn a second (as a conversation's are: apart)
        qid, aid = f"{chat_id}{2 * i:08d}", f"{chat_id}{2 * i + 1:08d}"
        answer = (f"## Thing {i}\n\nUse a **loop**:\n\n```python\nfor x in range({i}):\n    print(x)\n```\n\n"
                  f"- it is simple\n- it is fast ({i} steps)\n")
        if i == turns - 1 and last:
            answer += f"\n{last}\n"
        meta = {"title": title, "titleSource": "user"} if i == 0 else None
        lines.append(encode_messages([
            MessageEntry(qid, parent, Message("user", f"Question {i}: how do I do thing {i}?", time=stamp)),
            MessageEntry(aid, qid, Message("assistant", answer, time=stamp, model=MODEL)),
        ], meta))
        parent = aid
    (root / f"{chat_id}.jsonl").write_bytes(b"".join(lines))
    return chat_id


def start_once(env: dict[str, str], user: str, heading: bytes) -> tuple[float, float, float]:
    """(first frame, ready, Ctrl+B to the list drawn) of one start of the app for ``user``."""
    child = PtyChild(edgechat_argv(user), env)
    try:
        first = child.wait_for(FIRST_FRAME)
        ready = child.wait_for(READY)
        child.drain(0.5)
        mark = len(child.output)
        sent = time.perf_counter()
        child.write(CTRL_B)
        child.wait_for(heading, start=mark)
        return first, ready, time.perf_counter() - sent
    finally:
        child.stop()


def open_from_list(env: dict[str, str], user: str, start_chat: str, marker: bytes,
                   rest: float = 0.3) -> float:
    """Seconds from Enter on the row above the open conversation to ``marker`` on screen; the highlight
    rests ``rest`` seconds on the row before Enter (0: Enter right after the key that moved it)."""
    child = PtyChild([*edgechat_argv(user), "--chat", start_chat], env)
    try:
        child.wait_for(READY)
        child.drain(0.5)
        child.write(CTRL_B)
        child.wait_for(b"Conversations (")
        child.drain(0.3)
        child.write(UP)
        if rest:
            child.drain(rest)
        mark = len(child.output)
        sent = time.perf_counter()
        child.write(ENTER)
        child.wait_for(marker, start=mark)
        return time.perf_counter() - sent
    finally:
        child.stop()


OPEN_CASES = (  # (name, user, marker, rest)
    ("short", "openshort", b"SHORTMARK", 0.0),
    ("long", "open", NEWEST, 0.0),
    ("short-rest", "openshort", b"SHORTMARK", 0.3),
    ("long-rest", "open", NEWEST, 0.3),
)


def with_src(env: dict[str, str], src: Path) -> dict[str, str]:
    """``env`` with the app's code taken from ``src`` (a copy of ``src/`` from another commit)."""
    paths = env["PYTHONPATH"].split(os.pathsep)
    return env | {"PYTHONPATH": os.pathsep.join([str(src.resolve()), *paths[1:]])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--before", type=Path, help="a copy of src/ from an earlier commit, to compare")
    parser.add_argument("--opens-only", action="store_true", help="leave the start-up figures out")
    args = parser.parse_args()
    if args.before is not None and not (args.before / "edgechat_tui" / "__init__.py").is_file():
        parser.error(f"{args.before} does not hold edgechat_tui/ (give the src/ folder of a copy)")

    base = datetime(2025, 1, 1, 10, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory(prefix="edgechat-library-") as tmp:
        data_dir = Path(tmp) / "data"
        if not args.opens_only:
            for i in range(args.conversations):
                write_conversation(data_dir, "many", 4, base + timedelta(minutes=i), f"Conversation {i}")
            write_conversation(data_dir, "one", 4, base, "The only one")
        # The open-from-list profile: the long conversation is the newest, a short one is open.
        write_conversation(data_dir, "open", 2, base, "Short", last="SHORTMARK")
        small = write_conversation(data_dir, "open", 2, base + timedelta(minutes=1), "Start here")
        write_conversation(data_dir, "open", args.messages, base + timedelta(minutes=2), "Long",
                           last=NEWEST.decode())
        # The short target for the baseline: newer than "Start here", so one row up as well.
        write_conversation(data_dir, "openshort", 2, base + timedelta(minutes=2), "Short", last="SHORTMARK")
        small_b = write_conversation(data_dir, "openshort", 2, base + timedelta(minutes=1), "Start here")
        start_chat = {"open": small, "openshort": small_b}
        many_heading = f"Conversations ({args.conversations:,})".encode()
        starts: dict[str, list[tuple[float, float, float]]] = {"one": [], "many": []}
        codes = ["this"] + (["before"] if args.before is not None else [])
        opens: dict[tuple[str, str], list[float]] = {(code, c[0]): [] for code in codes for c in OPEN_CASES}
        with edgechat_env(data_dir) as (env, _fake):
            envs = {"this": env} | ({"before": with_src(env, args.before)} if args.before is not None else {})
            for run in range(args.runs + 1):  # the first round builds indexes and bytecode: dropped
                if not args.opens_only:
                    for user, heading in (("one", b"Conversations (1)"), ("many", many_heading)):
                        outcome = start_once(env, user, heading)
                        if run:
                            starts[user].append(outcome)
                order = codes if run % 2 else codes[::-1]  # interleaved, each first in turn
                for name, user, marker, rest in OPEN_CASES:
                    for code in order:
                        try:
                            took = open_from_list(envs[code], user, start_chat[user], marker, rest=rest)
                        except TimeoutError as error:
                            raise SystemExit(f"{name} with {code} code, round {run}: {error}") from None
                        if run:
                            opens[(code, name)].append(took)

    def column(user: str, index: int) -> list[float]:
        return [r[index] for r in starts[user]]

    n = f"{args.conversations:,}"
    if not args.opens_only:
        first_ratio = statistics.median(column("many", 0)) / statistics.median(column("one", 0))
        ready_ratio = statistics.median(column("many", 1)) / statistics.median(column("one", 1))
        print(f"A profile of {n} conversations vs one of 1, the real app in a pty ({args.runs} runs):")
        print(f"  first frame, 1 conversation:       {summary(column('one', 0))}")
        print(f"  first frame, {n} conversations: {summary(column('many', 0))}")
        print(f"  ratio: {first_ratio:.2f}x   (goal: within 1.10x)")
        print(f"  ready, 1 conversation:             {summary(column('one', 1))}")
        print(f"  ready, {n} conversations:       {summary(column('many', 1))}   ratio {ready_ratio:.2f}x")
        print(f"  Ctrl+B to the list drawn, 1:       {summary(column('one', 2))}")
        print(f"  Ctrl+B to the list drawn, {n}:  {summary(column('many', 2))}")
    m = f"{args.messages:,}"
    for code in codes:
        label = "this code" if code == "this" else f"the code in {args.before}"
        got = {name: opens[(code, name)] for name, *_ in OPEN_CASES}
        print(f"Opening a conversation from the list (Enter to its newest message on screen), {label}:")
        ratio = statistics.median(got["long"]) / statistics.median(got["short"])
        print(f"  Enter at once after Up, 2 messages:      {summary(got['short'])}")
        print(f"  Enter at once after Up, {m} messages: {summary(got['long'])}   ratio {ratio:.2f}x "
              "(goal: within 100 ms)")
        ratio = statistics.median(got["long-rest"]) / statistics.median(got["short-rest"])
        print(f"  highlight resting 0.3 s, 2 messages:     {summary(got['short-rest'])}")
        print(f"  highlight resting 0.3 s, {m} messages: {summary(got['long-rest'])}   ratio {ratio:.2f}x")
    if args.before is not None:
        for name in ("long", "long-rest"):
            ratio = statistics.median(opens[("this", name)]) / statistics.median(opens[("before", name)])
            print(f"  {name}: this code / the code before: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
