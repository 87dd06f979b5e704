"""One very large Markdown block streamed into a reply: is the cost linear in its size, and does the
event loop stay free (so Esc acts at once) while it renders?

Run alone: ``python bench/bench_big_block.py`` (``--sizes 200000,2000000``, ``--kinds list,para``).

For each kind of block (a list, a paragraph, a code block, a table) and each size, a headless
Textual app streams the block into ``ReplyMarkdown`` token by token (~4 characters, yielding to the
loop every 64 tokens, as a fast network stream would), then finishes it, until every line is
rendered. Printed: the time, the time per KB, the ratio of the per-byte times of the largest and
the smallest size (near 1: linear), and the longest gap between two ticks of a 10 ms timer during
the run (how long a key such as Esc could wait).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from textual.app import App, ComposeResult
from textual.containers import VerticalScroll


def generate(kind: str, size: int) -> str:
    """A single Markdown block of about ``size`` characters."""
    if kind == "list":
        line, head, tail = "- item {n} with a few words that wrap around the screen\n", "", ""
    elif kind == "para":
        line, head, tail = "lorem ipsum {n} dolor sit amet consectetur adipiscing elit ", "", "\n"
    elif kind == "code":
        line, head, tail = "    value_{n} = compute(value, other) + 42  # a comment\n", "```python\n", "```\n"
    elif kind == "table":
        head, tail = "| a | b | c |\n|---|---|---|\n", ""
        line = "| cell {n} | value {n} | a note about {n} |\n"
    else:
        raise ValueError(kind)
    parts, length, n = [head], len(head), 0
    while length < size:
        piece = line.format(n=n)
        parts.append(piece)
        length += len(piece)
        n += 1
    parts.append(tail)
    return "".join(parts)


class BenchApp(App[None]):
    CSS = "#pane { height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield VerticalScroll(id="pane")


async def measure(kind: str, size: int) -> tuple[float, float]:
    """(seconds from the first token to every line rendered, the longest loop gap in seconds)."""
    from edgechat_tui.ui.widgets.reply import ReplyMarkdown

    text = generate(kind, size)
    tokens = [text[i:i + 4] for i in range(0, len(text), 4)]
    app = BenchApp()
    async with app.run_test(size=(100, 40)) as pilot:
        reply = ReplyMarkdown(final=False)
        await app.query_one("#pane").mount(reply)
        await pilot.pause()
        loop = asyncio.get_running_loop()
        gaps = [0.0]
        last = [loop.time()]

        def tick() -> None:
            now = loop.time()
            gaps[0] = max(gaps[0], now - last[0])
            last[0] = now

        timer = app.set_interval(0.01, tick)
        started = time.perf_counter()
        for index, token in enumerate(tokens):
            reply.append(token)
            if index % 64 == 0:
                await asyncio.sleep(0)
        reply.finish()
        while not reply.settled:
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        # A stall at the very end shows only in the next tick: wait for it.
        seen = last[0]
        while last[0] == seen:
            await asyncio.sleep(0.005)
        timer.stop()
        assert reply.rendered_lines(), "nothing rendered"
        return elapsed, gaps[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200000,2000000")
    parser.add_argument("--kinds", default="list,para,code,table")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'block':<8}{'size':>10}{'time':>10}{'per KB':>10}{'max loop gap':>14}")
    for kind in args.kinds.split(","):
        per_byte = {}
        for size in sizes:
            elapsed, gap = asyncio.run(measure(kind, size))
            per_byte[size] = elapsed / size
            print(f"{kind:<8}{size:>10,}{elapsed:>9.2f}s{elapsed / size * 1000 * 1000:>8.1f}ms"
                  f"{gap * 1000:>12.0f}ms", flush=True)
        ratio = per_byte[sizes[-1]] / per_byte[sizes[0]]
        print(f"{kind:<8}{'':>10}  per-byte ratio {sizes[-1]:,} / {sizes[0]:,}: {ratio:.2f}", flush=True)


if __name__ == "__main__":
    main()
