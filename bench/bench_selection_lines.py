"""What taking part in text selection costs a reply's drawing: ``render_line`` with offsets (and a
selection), against drawing the same lines without them, measured in the same run.

Run alone: ``python bench/bench_selection_lines.py`` (``--rounds N``). A reply of mixed Markdown
(paragraphs, code, tables, lists) is rendered once in a headless app at 100 columns; then every
line is drawn again and again:

* baseline: the line as a Strip, padded to the width (what ``render_line`` did before selection);
* offsets: ``render_line`` as it is (each segment carries its text offset; decoration split);
* selected: ``render_line`` with the whole reply selected (the highlight restyles every character).

Textual asks for a line only when it is repainted (its own cache keeps the rest), so the figure
that matters is per line and per screen of 40 lines. Medians of the rounds, with ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.selection import SELECT_ALL
from textual.strip import Strip

from edgechat_tui.ui.markdown import lexers
from edgechat_tui.ui.widgets.reply import ReplyMarkdown

SECTION = (
    "## Part {n}\n\nSome **bold** text, `inline code` and a [link](https://example.com) in a "
    "paragraph long enough to wrap over more than one line at a hundred columns, as replies do.\n\n"
    "```python\ndef f{n}(x: int) -> int:\n    total = 0\n    for i in range(x):\n"
    "        total += i * {n}\n    return total\n```\n\n"
    "| name | value | note |\n|---|---|---|\n| a{n} | {n} | first |\n| b{n} | {n}0 | second |\n\n"
    "- one item\n- two items\n  - nested\n\n> a quote about part {n}\n\n"
)


class Bench(App[None]):
    def __init__(self, reply: ReplyMarkdown) -> None:
        super().__init__()
        self.reply = reply

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield self.reply


def baseline_line(reply: ReplyMarkdown, y: int) -> Strip:
    """The drawing before selection: the document's line as a Strip, padded to the width."""
    width = reply.content_size.width
    document = reply._document
    segments = document.line(y)
    length = Segment.get_line_length(segments)
    if length < width:
        base = document.palette.base.rich_style if document.palette is not None else None
        return Strip([*segments, Segment(" " * (width - length), base)], width)
    return Strip(segments, length).crop(0, width)


def time_lines(draw, lines: int, rounds: int) -> list[float]:
    """Seconds per line for each round of drawing every line once."""
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        for y in range(lines):
            draw(y)
        out.append((time.perf_counter() - started) / lines)
    return out


async def main(rounds: int) -> None:
    lexers.preload(("python",))
    reply = ReplyMarkdown("".join(SECTION.format(n=n) for n in range(40)))
    app = Bench(reply)
    async with app.run_test(size=(100, 40)) as pilot:
        while not reply.settled:
            await pilot.pause(0.01)
        await pilot.pause()
        lines = reply._document.height
        figures: dict[str, list[float]] = {"baseline": [], "offsets": [], "selected": []}
        for _ in range(rounds):  # interleaved, so that load on the machine touches all alike
            app.screen.selections = {}
            figures["baseline"] += time_lines(lambda y: baseline_line(reply, y), lines, 1)
            figures["offsets"] += time_lines(reply.render_line, lines, 1)
            app.screen.selections = {reply: SELECT_ALL}
            reply.selection_updated(SELECT_ALL)
            figures["selected"] += time_lines(reply.render_line, lines, 1)
    base = statistics.median(figures["baseline"])
    print(f"reply of {lines} lines at 100 columns, {rounds} rounds, medians")
    print(f"{'drawing':>10} {'per line':>10} {'per 40-line screen':>20} {'ratio':>7}")
    for name, values in figures.items():
        median = statistics.median(values)
        print(f"{name:>10} {median * 1e6:8.1f} µs {median * 40 * 1e3:17.2f} ms {median / base:6.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    asyncio.run(main(parser.parse_args().rounds))
