"""Paging from the newest to the oldest message of a 300-turn profile: presses and time.

Run alone: ``python bench/bench_paging.py [--runs N] [--turns N] [--baseline REF]``.

Each run is a fresh process running the real app headless (Textual's ``run_test``, 100x30, the
real local agent and store, the loopback Workers AI fake) on a 600-message history of Markdown
replies (a heading, a code block, a list: rows the pane can only estimate before it shows them):

* **one at a time**: PgUp pressed, then the app left to settle, until the first message is on
  screen: the presses it took and the time;
* **held**: PgUp sent at a key repeat's 30 presses a second without waiting for the app, until
  the first message is on screen: the presses sent and the time. A press the app drops shows as
  more presses than the one-at-a-time count;
* **Ctrl+Home**: one press to the first message on screen.

The baseline is the code at ``--baseline`` (default ``main``: the pane before the paging redesign),
its ``src/`` taken out with ``git archive`` into a temporary directory and run the same way, the
runs interleaved. The ideal count is the conversation's height over the pane's, also printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = (100, 30)
REPEAT_SECONDS = 1 / 30
MAX_PRESSES = 2000


def history_turns(turns: int) -> list[tuple[str, str]]:
    return [(f"Question {i}: how do I do thing number {i} in Python?",
             f"## Thing {i}\n\nUse a **loop**:\n\n```python\nfor x in range({i}):\n    print(x)\n```\n\n"
             f"- it is simple\n- it is fast ({i} steps)\n") for i in range(turns)]


async def child(turns: int, mode: str) -> dict[str, float]:
    """In the measured process: open the app, page to the top, report."""
    from textual import events

    from edgechat_tui.ui.app import EdgechatApp
    from tests.fakes.workers_ai import FakeWorkersAI
    from tests.ui.conftest import make_settings, screen_text, wait_ready, write_history

    tmp = Path(tempfile.mkdtemp(prefix="bench-paging-"))
    with FakeWorkersAI() as fake:
        settings = make_settings(tmp, fake)
        write_history(settings.data_dir, "alice", history_turns(turns))
        app = EdgechatApp(settings, "alice", cursor_blink=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.pause(0.3)
            log = app.chat.chat_log

            def at_top() -> bool:
                return log.window[0] == 0 and log.scroll_y == 0 and "Question 0:" in screen_text(app)

            presses = 0
            started = time.perf_counter()
            if mode == "one":
                while not at_top() and presses < MAX_PRESSES:
                    await pilot.press("pageup")
                    await pilot.pause()
                    presses += 1
            elif mode == "held":
                while not at_top() and presses < MAX_PRESSES:
                    event = events.Key("pageup", None)
                    event.set_sender(app)
                    app._driver.send_message(event)
                    presses += 1
                    await asyncio.sleep(REPEAT_SECONDS)
            else:  # ctrl+home
                await pilot.press("ctrl+home")
                presses = 1
                while not at_top() and time.perf_counter() - started < 20:
                    await pilot.pause(0.01)
            elapsed = time.perf_counter() - started
            await pilot.pause(0.2)
            height = log.scrollable_content_region.height
            # The conversation's height, now that every message was shown (or estimated).
            total = log.virtual_size.height
            return {"presses": presses, "seconds": elapsed, "reached": at_top(),
                    "ideal": total / height if mode != "ctrl+home" else 1}


def run_child(src: Path, turns: int, mode: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=f"{src}{os.pathsep}{ROOT}")
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--turns", str(turns)], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        raise SystemExit(f"the {mode} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_src(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--baseline", default="main")
    parser.add_argument("--child", choices=["one", "held", "ctrl+home"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.turns, args.child))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-paging-base-") as tmp:
        variants = {f"before ({args.baseline})": baseline_src(args.baseline, Path(tmp)),
                    "after": ROOT / "src"}
        modes = ["one", "held", "ctrl+home"]
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        for _ in range(args.runs):
            for mode in modes:
                for name, src in variants.items():
                    results.setdefault((name, mode), []).append(run_child(src, args.turns, mode))
    print(f"paging from the newest to the oldest of {args.turns} turns ({2 * args.turns} messages), "
          f"{SIZE[0]}x{SIZE[1]}, {args.runs} runs, medians:")
    for mode in modes:
        # The whole conversation's height is known to the new pane only (the old one's scroll
        # range was what it had mounted): a screen per press would take this many.
        ideal = statistics.median(r["ideal"] for r in results[("after", mode)])
        print(f"  {mode} (a screen per press: {ideal:.0f} presses):")
        row = {}
        for name in variants:
            runs = results[(name, mode)]
            presses = statistics.median(r["presses"] for r in runs)
            seconds = statistics.median(r["seconds"] for r in runs)
            reached = sum(1 for r in runs if r["reached"])
            row[name] = (presses, seconds, reached)
            print(f"    {name:>14}: {presses:6.0f} presses, {seconds:6.2f} s, first message reached "
                  f"in {reached} of {len(runs)} runs")
        (before_p, before_s, before_r), (after_p, after_s, _) = row.values()
        if before_r:
            print(f"    after/before: presses {after_p / before_p:.2f}x, time {after_s / before_s:.2f}x")
        else:
            print("    before: the first message was not reached (the key does nothing there)")


if __name__ == "__main__":
    main()
