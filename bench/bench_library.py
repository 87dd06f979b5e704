"""The conversation library at scale: search, saving a turn, and rebuilding the index.

    python bench/bench_library.py [--dir DIR] [--conversations 1000] [--messages 100] [--runs 21]
                                  [--baseline REF]

Builds a profile of ``--conversations`` conversations of ``--messages`` messages each (100,000 by
default) as the library writes them, then measures, in one run on the same disk:

- rebuilding the index from nothing (the first use after the index is deleted), and the longest pause
  of an event loop's 10 ms timer while ``LocalConversations.list()`` does it in a thread;
- search in-process (``Library.search``, the index's staleness check included): the median over
  several queries, against the baseline of the same query answered by reading every conversation file;
- ``edgechat search`` as a whole process, against ``edgechat --version`` (interpreter start-up),
  medians of alternating runs (and the median of each round's ratio, steadier on a busy machine),
  with edgechat's bytecode compiled first (as an installed package has it: with
  ``PYTHONDONTWRITEBYTECODE`` set, a source changed since its last compile would be compiled again
  in every run, on both sides). With ``--baseline REF``, the same two commands of the code at REF
  (its ``src/`` taken out with ``git archive``) are timed in the same rounds, on a copy of the
  profile whose index that code builds itself;
- saving a turn (``Library.append``, fsync included) in a 1-conversation profile and in the big one,
  alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgechat_tui.backends.local.conversations import LocalConversations
from edgechat_tui.core.messages import Message
from edgechat_tui.storage.chat_file import ProfilePaths, created_of
from edgechat_tui.storage.chat_format import (
    CHAT_KIND,
    MessageEntry,
    chat_header,
    decode_chat_record,
    encode_messages,
    encode_meta,
    new_chat_id,
    new_message_id,
)
from edgechat_tui.storage.chat_search import fold, query_terms
from edgechat_tui.storage.chat_tree import ChatState
from edgechat_tui.storage.chat_turns import plan_turn, turn_record
from edgechat_tui.storage.format import scan_file
from edgechat_tui.storage.library import Library

ROOT = Path(__file__).resolve().parents[1]
USER = "bench"
WORDS = ("the a to of and in is it you that for on with as this be are not or can at by from have "
         "history lock file turn reply model token window context branch search index append fsync "
         "trip lisbon porto coffee pastry tram river bridge museum tile castle harbour sunset").split()
RARE = ["zephyrine", "quokkas", "marmalade", "obsidian"]
QUERIES = ["lisbon", "zephyrine", "coffee pastry", "quokkas harbour", "fsy", "the"]


def sentence(rng: random.Random, n: int) -> str:
    words = rng.choices(WORDS, k=n)
    if rng.random() < 0.01:
        words[rng.randrange(n)] = rng.choice(RARE)
    return " ".join(words).capitalize() + "."


def build(data_dir: Path, conversations: int, messages: int, seed: int = 1) -> None:
    """The profile written as the library writes it (one file per conversation), fast."""
    rng = random.Random(seed)
    paths = ProfilePaths(data_dir, USER)
    paths.trash.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.root, 0o700)
    start_ms = 1_700_000_000_000
    for c in range(conversations):
        ms = start_ms + c * 3_600_000
        chat_id = new_chat_id(ms)
        lines = [chat_header(USER, chat_id, created_of(chat_id))]
        parent = None
        for m in range(0, messages, 2):
            when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((ms + m * 1000) / 1000)) + ".000Z"
            q = MessageEntry(new_message_id(ms + m), parent, Message("user", sentence(rng, 12), time=when))
            a = MessageEntry(new_message_id(ms + m), q.id, Message("assistant", sentence(rng, 60), time=when,
                                                                     model="@cf/meta/llama-3.3-70b"))
            lines.append(encode_messages([q, a]))
            parent = a.id
        lines.append(encode_meta({"title": f"Conversation {c}", "titleSource": "words"}))
        (paths.root / f"{chat_id}.jsonl").write_bytes(b"".join(lines))


def scan_search(data_dir: Path, query: str) -> int:
    """The baseline: every conversation file read and every message checked."""
    terms = query_terms(query)
    root = ProfilePaths(data_dir, USER).root
    hits = 0
    for path in root.glob("*.jsonl"):
        scan = scan_file(path.read_bytes(), USER, path, decode_chat_record, CHAT_KIND)
        state = ChatState(path.stem, created_of(path.stem))
        state.apply(scan.messages)
        for node in state.nodes.values():
            words = [fold(w) for w in node.message.content.split()]
            hits += all(any(w.startswith(t) for w in words) for t in terms)
    return hits


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.2f} ms"


def save_turn(library: Library, chat_id: str, n: int) -> float:
    state, _ = library.state(chat_id)
    plan = plan_turn(state, "chat", f"question {n}", None)
    reply = Message("assistant", f"reply {n} " * 20)
    make = turn_record(plan, Message("user", f"question {n}"), reply, False)
    started = time.perf_counter()
    library.append(chat_id, make)
    return time.perf_counter() - started


async def rebuild_off_the_loop(data_dir: Path) -> tuple[float, float, int]:
    """(seconds to list with a rebuilt index, the longest gap of a 10 ms timer meanwhile, conversations)."""
    library = Library(data_dir, USER, warn=lambda _m: None)
    conversations = LocalConversations(library, lambda: False)
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    listed = await conversations.list()
    took = time.perf_counter() - started
    stop.set()
    await task
    await asyncio.to_thread(library.close)
    return took, max(gaps), len(listed)


def baseline_src(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def edgechat_times(data_dir: Path, runs: int,
                   baseline: tuple[Path, Path] | None = None) -> dict[str, list[float]]:
    """``search`` and ``version`` timings (``before search``, ``before version`` for ``baseline``: its
    ``src`` and its own copy of the profile), every command once a round."""
    import compileall

    import edgechat_tui

    compileall.compile_dir(Path(edgechat_tui.__file__).parent, quiet=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGECHAT_", "CLOUDFLARE_"))}
    env.update(EDGECHAT_DATA_DIR=str(data_dir), EDGECHAT_CONFIG=str(data_dir / "none.toml"))
    exe = [sys.executable, "-m", "edgechat_tui"]
    variants = [("", env)]
    if baseline is not None:
        src, base_dir = baseline
        compileall.compile_dir(src, quiet=1)
        base_env = dict(env, PYTHONPATH=str(src), EDGECHAT_DATA_DIR=str(base_dir),
                        EDGECHAT_CONFIG=str(base_dir / "none.toml"))
        # Untimed: that code builds its index of the copy first.
        subprocess.run([*exe, "search", "lisbon", "--user", USER], env=base_env, capture_output=True,
                       check=True)
        variants.append(("before ", base_env))
    times: dict[str, list[float]] = {}
    for _ in range(runs):
        for prefix, variant_env in variants:
            for name, argv in (("search", ["search", "lisbon", "--user", USER]), ("version", ["--version"])):
                started = time.perf_counter()
                done = subprocess.run(exe + argv, env=variant_env, capture_output=True, check=False)
                times.setdefault(prefix + name, []).append(time.perf_counter() - started)
                assert done.returncode == 0, done.stderr
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dir", type=Path, help="where to build the profiles (default: a temp dir)")
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100, help="per conversation")
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--baseline", metavar="REF", help="also time the processes of the code at REF")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-library-", dir=args.dir))
    try:
        big, small = root / "big", root / "small"
        started = time.perf_counter()
        build(big, args.conversations, args.messages)
        build(small, 1, args.messages)
        total = args.conversations * args.messages
        print(f"  profile: {args.conversations:,} conversations, {total:,} messages "
              f"(written in {time.perf_counter() - started:.1f} s)")

        took, gap, listed = asyncio.run(rebuild_off_the_loop(big))
        assert listed == args.conversations
        print(f"  index rebuilt from {total:,} messages           {took:9.2f} s")
        print(f"  longest 10 ms timer gap meanwhile (event loop)  {ms(gap)}")

        library = Library(big, USER, warn=lambda _m: None)
        library.list()
        per_query: dict[str, list[float]] = {q: [] for q in QUERIES}
        for _ in range(args.runs):
            for query in QUERIES:
                t0 = time.perf_counter()
                library.search(query)
                per_query[query].append(time.perf_counter() - t0)
        medians = [statistics.median(v) for v in per_query.values()]
        for query, values in per_query.items():
            print(f"  search {query!r:<22} median              {ms(statistics.median(values))}")
        baseline = []
        for query in QUERIES[:2]:
            t0 = time.perf_counter()
            scan_search(big, query)
            baseline.append(time.perf_counter() - t0)
        search_median = statistics.median(medians)
        print(f"  search, median over the queries                 {ms(search_median)}   (target < 50 ms)")
        print(f"  baseline: reading every file, per query         {ms(statistics.median(baseline))}")

        before_code = None
        if args.baseline:
            before = root / "before"
            shutil.copytree(ProfilePaths(big, USER).root, ProfilePaths(before, USER).root,
                            ignore=shutil.ignore_patterns("index.sqlite3*"))
            before_code = (baseline_src(args.baseline, root), before)
        processes = edgechat_times(big, max(5, args.runs // 3), before_code)
        s_med, v_med = statistics.median(processes["search"]), statistics.median(processes["version"])
        print(f"  edgechat search (whole process) median          {ms(s_med)}")
        print(f"  edgechat --version (baseline) median            {ms(v_med)}")
        if before_code is not None:
            bs_med = statistics.median(processes["before search"])
            bv_med = statistics.median(processes["before version"])
            print(f"  the same at {args.baseline}: search, --version          {ms(bs_med)} {ms(bv_med)}"
                  f"   ({bs_med / bv_med:.2f}x)")

        small_library = Library(small, USER, warn=lambda _m: None)
        big_chat = library.list()[0].id
        small_chat = small_library.list()[0].id
        small_saves, big_saves = [], []
        for n in range(args.runs * 3):
            small_saves.append(save_turn(small_library, small_chat, n))
            big_saves.append(save_turn(library, big_chat, n))
        sm, bm = statistics.median(small_saves), statistics.median(big_saves)
        print(f"  saving a turn, 1-conversation profile           {ms(sm)}")
        print(f"  saving a turn, {args.conversations:,}-conversation profile       {ms(bm)}")
        scan = statistics.median(baseline)
        print(f"  search / baseline scan:                         {search_median / scan:.4f}x")
        print(f"  edgechat search / edgechat --version:           {s_med / v_med:.2f}x"
              "   (target within 1.5x)")
        pairs = zip(processes["search"], processes["version"], strict=True)
        paired = statistics.median(s / v for s, v in pairs)
        print(f"    paired by round (median of each round's ratio): {paired:.2f}x")
        if before_code is not None:
            before = statistics.median(s / v for s, v in zip(processes["before search"],
                                                               processes["before version"], strict=True))
            print(f"    the same at {args.baseline}, paired:          {before:.2f}x")
        print(f"  saving a turn, big / small profile:             {bm / sm:.2f}x   (flat is 1)")
        library.close()
        small_library.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
