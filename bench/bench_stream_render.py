"""How fast a streamed Markdown reply reaches the screen: ReplyMarkdown vs Textual's MarkdownStream.

Run alone: ``python bench/bench_stream_render.py`` (``--quick`` for fewer sizes and repeats).

Each measurement runs a small chat-like Textual app (a scroll pane, an Input) in a child process
on a real pseudo-terminal, and reads what it writes to the terminal, as a user's terminal would:

* Throughput: the parent presses a key; the app streams a generated reply (headings, paragraphs,
  nested lists, tables, code blocks) into the reply widget as fast as it can, token by token
  (yielding to the event loop between tokens, as a network stream would). The time is from the
  key press to the reply's last token appearing in the terminal output. Sizes 1k/2k/4k/8k
  tokens; Textual's ``Markdown`` + ``MarkdownStream`` is the baseline, measured in the same run
  (capped, as it is slow).
* Responsiveness: while a reply streams at 200 tokens/s, the parent types a character into the
  Input at random moments and times until that character appears in the output (p50/p95).
  An idle app (nothing streaming) is the baseline.

Medians of several runs are printed, with ratios. A token is about four characters of text.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import gc
import os
import random
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

SENTINEL = "ZQXENDOFREPLY"
READY = "BENCHREADY"
COLUMNS, ROWS = 100, 40
START_KEY = b"\x14"  # ctrl+t
REPORT_KEY = b"\x12"  # ctrl+r: the app writes the CPU time it used since the start key
QUIT_KEY = b"\x11"  # ctrl+q
# Characters that never occur in the generated reply, so their echo in the Input is unambiguous.
PROBE_KEYS = "αβγδεζηθικλμνξπρστυφχψω"

# -- the reply -------------------------------------------------------------------------------------

_WORDS = (
    "the server streams each token as soon as the model produces it and the widget keeps up "
    "with layout render cache frame block paragraph list table code reply user terminal screen "
    "width height scroll theme colour parser tail final line width request response"
).split()
_CODE = {
    "python": [
        "def handle(request: Request) -> Response:",
        '    """Answer one request, or fail loudly."""',
        "    items = [item * 2 for item in range(10) if item % 3]",
        "    if not items:  # nothing to send",
        '        raise ValueError("empty reply")',
        "    return Response(status=200, body=json.dumps(items))",
    ],
    "javascript": [
        "export default {",
        "  async fetch(request, env) {",
        "    const body = await request.json();",
        "    return new Response(JSON.stringify({ ok: true, n: body.length }));",
        "  },",
        "};",
    ],
    "bash": [
        "set -euo pipefail",
        'for f in "$@"; do',
        '  echo "processing $f" >&2',
        '  wc -l "$f"',
        "done",
    ],
}


def _sentence(rnd: random.Random, low: int, high: int) -> str:
    words = rnd.choices(_WORDS, k=rnd.randint(low, high))
    flourish = rnd.random()
    if flourish < 0.25:
        words.insert(rnd.randrange(len(words)), f"**{rnd.choice(_WORDS)}**")
    elif flourish < 0.45:
        words.insert(rnd.randrange(len(words)), f"`{rnd.choice(_WORDS)}()`")
    elif flourish < 0.55:
        words.insert(rnd.randrange(len(words)), f"[{rnd.choice(_WORDS)}](https://example.com/docs)")
    elif flourish < 0.65:
        words.insert(rnd.randrange(len(words)), f"*{rnd.choice(_WORDS)}*")
    return " ".join(words).capitalize() + "."


def generate_reply(tokens: int, seed: int = 7, shape: str = "mixed") -> str:
    """A model-like Markdown reply of about ``tokens`` tokens, ending with the sentinel.

    ``mixed``: headings, paragraphs, lists, tables, code blocks, quotes. ``code``: one long
    Python code block (a generated script), the hardest case for re-rendering an open block.
    """
    if shape == "code":
        functions = []
        index = 0
        while sum(len(f) for f in functions) < tokens * 4:
            body = "\n".join(_CODE["python"][1:])
            functions.append(f"def handle_{index}(request: Request) -> Response:\n{body}\n\n")
            index += 1
        code = "".join(functions)
        text = "Here is the script:\n\n```python\n" + code + "```\n"
        chunks = tokenize(text)[: max(tokens - 3, 1)]
        return "".join(chunks).rstrip() + f"\n```\n\nDone {SENTINEL}\n"
    rnd = random.Random(seed)
    parts: list[str] = []
    size = 0
    section = 0
    while size < tokens * 4:
        kind = rnd.choices(
            ["heading", "para", "list", "olist", "code", "table", "quote"], weights=[1, 5, 2, 1, 2, 1, 1]
        )[0]
        if kind == "heading":
            section += 1
            parts.append(f"{'#' * rnd.choice([2, 2, 3])} {section}. {_sentence(rnd, 2, 5)[:-1]}\n\n")
        elif kind == "para":
            parts.append(" ".join(_sentence(rnd, 6, 16) for _ in range(rnd.randint(1, 3))) + "\n\n")
        elif kind in ("list", "olist"):
            for index in range(rnd.randint(2, 5)):
                marker = f"{index + 1}." if kind == "olist" else "-"
                parts.append(f"{marker} {_sentence(rnd, 3, 10)}\n")
                if rnd.random() < 0.3:
                    parts.append(f"   - {_sentence(rnd, 2, 6)}\n")
            parts.append("\n")
        elif kind == "code":
            language = rnd.choice(list(_CODE))
            lines = _CODE[language]
            parts.append(f"```{language}\n" + "\n".join(lines[: rnd.randint(3, len(lines))]) + "\n```\n\n")
        elif kind == "table":
            rows = "".join(
                f"| {rnd.choice(_WORDS)} | {rnd.randint(1, 9999)} | {_sentence(rnd, 2, 6)} |\n"
                for _ in range(rnd.randint(2, 5))
            )
            parts.append("| name | count | notes |\n|------|------:|-------|\n" + rows + "\n")
        else:
            parts.append(f"> {_sentence(rnd, 8, 20)}\n\n")
        size += len(parts[-1])
    text = "".join(parts)
    chunks = tokenize(text)[: max(tokens - 3, 1)]
    return "".join(chunks).rstrip() + f"\n\nDone {SENTINEL}\n"


_TOKEN = re.compile(r"\s*[A-Za-z]{1,6}|\s*\d{1,3}|\s*[^\sA-Za-z\d]{1,2}|\s+")


def tokenize(text: str) -> list[str]:
    """Cut text into model-like tokens: short words with their leading space, punctuation."""
    chunks = _TOKEN.findall(text)
    assert "".join(chunks) == text
    return chunks


# -- the app in the child process -------------------------------------------------------------------


def run_child(kind: str, tokens: int, rate: float, report: str) -> None:
    """The app under test: a chat-like pane with one earlier message, and an Input.

    ``kind`` is ``widget`` or ``baseline``, then options after commas: ``code`` (the one
    long code block reply), ``cold`` (no lexer preloading), ``freeze`` (``gc.freeze()`` once
    start-up is over, so full garbage collections skip the objects of start-up).
    """
    from textual.app import App, ComposeResult
    from textual.binding import Binding
    from textual.containers import VerticalScroll
    from textual.widgets import Input, Markdown, Static

    from edgechat_tui.ui.widgets.reply import ReplyMarkdown, preload_code_colours

    widget, *options = kind.split(",")
    chunks = tokenize(generate_reply(tokens, shape="code" if "code" in options else "mixed"))

    class StreamBenchApp(App[None]):
        CSS = "#pane { height: 1fr; } Input { dock: bottom; }"
        BINDINGS = [  # noqa: RUF012
            Binding("ctrl+t", "start", priority=True),
            Binding("ctrl+r", "report", priority=True),
        ]
        cpu_at_start = 0.0

        def compose(self) -> ComposeResult:
            yield Static(READY, markup=False)
            with VerticalScroll(id="pane"):
                yield Static("You: write me a long answer with code and tables", markup=False)
            yield Input(id="input")

        def on_mount(self) -> None:
            self.query_one("#pane").anchor()
            self.query_one(Input).focus()

        def on_ready(self) -> None:
            self.run_worker(self.warm_up())

        async def warm_up(self) -> None:
            # What the chat app does once its first frame is up.
            if widget == "widget" and "cold" not in options:
                await preload_code_colours()
            if "freeze" in options:
                gc.freeze()

        def action_start(self) -> None:
            self.cpu_at_start = time.process_time()
            self.run_worker(self.stream(), exclusive=True)

        def action_report(self) -> None:
            scratch = Path(report + ".part")  # written whole, then renamed: never read half-written
            scratch.write_text(f"{time.process_time() - self.cpu_at_start:.6f}")
            scratch.replace(report)

        async def pace(self, index: int, started: float) -> None:
            if rate > 0:
                delay = started + index / rate - time.perf_counter()
                await asyncio.sleep(max(delay, 0))
            else:
                await asyncio.sleep(0)

        async def stream(self) -> None:
            pane = self.query_one("#pane")
            started = time.perf_counter()
            if widget == "widget":
                reply = ReplyMarkdown(final=False)
                await pane.mount(reply)
                for index, chunk in enumerate(chunks):
                    reply.append(chunk)  # every token: the widget coalesces by itself
                    await self.pace(index, started)
                reply.finish()
                return
            # The baseline at its best: writes coalesced every 50 ms, as measured in the issue.
            markdown = Markdown(open_links=False)
            await pane.mount(markdown)
            stream = Markdown.get_stream(markdown)
            pending: list[str] = []
            last_write = time.perf_counter()
            try:
                for index, chunk in enumerate(chunks):
                    pending.append(chunk)
                    if time.perf_counter() - last_write >= 0.05:
                        await stream.write("".join(pending))
                        pending.clear()
                        last_write = time.perf_counter()
                    await self.pace(index, started)
                if pending:
                    await stream.write("".join(pending))
            finally:
                await stream.stop()

    StreamBenchApp().run()


# -- the parent: a terminal that reads the child's output -------------------------------------------


class Terminal:
    """A child process on a pseudo-terminal, with its output read and searched as it arrives."""

    def __init__(self, args: list[str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor", "TEXTUAL": ""}

        def controlling_tty() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.process = subprocess.Popen(
            args,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=controlling_tty,
            close_fds=True,
        )
        os.close(slave)
        self.master = master
        self._buffer = bytearray()
        self._times: list[tuple[int, float]] = []  # (buffer length, arrival time)
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                data = b""
            now = time.perf_counter()
            with self._cond:
                if not data:
                    self._times.append((-1, now))
                    self._cond.notify_all()
                    return
                self._buffer += data
                self._times.append((len(self._buffer), now))
                self._cond.notify_all()

    def mark(self) -> int:
        """A position in the output: later searches look only after it."""
        with self._cond:
            return len(self._buffer)

    def wait_for(self, needle: str, after: int, timeout: float) -> float | None:
        """The time at which ``needle`` first appeared in the output after ``after``, or None."""
        pattern = needle.encode()
        deadline = time.perf_counter() + timeout
        with self._cond:
            while True:
                found = self._buffer.find(pattern, after)
                if found >= 0:
                    end = found + len(pattern)
                    return next(at for length, at in self._times if length >= end or length < 0)
                if self._times and self._times[-1][0] < 0:
                    return None
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def send(self, data: bytes) -> float:
        now = time.perf_counter()
        os.write(self.master, data)
        return now

    def close(self) -> None:
        try:
            self.send(QUIT_KEY)
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        os.close(self.master)


def _child_args(kind: str, tokens: int, rate: float, report: str = os.devnull) -> list[str]:
    script = str(Path(__file__).resolve())
    return [sys.executable, script, "--child", kind, str(tokens), str(rate), report]


def measure_stream(kind: str, tokens: int, cap: float) -> tuple[float | None, float | None]:
    """(wall seconds from the start key to the last token on screen, CPU seconds the app used).

    Both None past ``cap``. The CPU time is less disturbed by other work on the machine.
    """
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch, "cpu")
        terminal = Terminal(_child_args(kind, tokens, 0, str(report)))
        try:
            if terminal.wait_for(READY, 0, 20) is None:
                raise RuntimeError("the bench app did not start")
            time.sleep(1.0)  # let start-up work (and lexer preloading) settle
            after = terminal.mark()
            pressed = terminal.send(START_KEY)
            shown = terminal.wait_for(SENTINEL, after, cap)
            if shown is None:
                return None, None
            terminal.send(REPORT_KEY)
            deadline = time.perf_counter() + 5
            while not report.exists() and time.perf_counter() < deadline:
                time.sleep(0.01)
            cpu = float(report.read_text()) if report.exists() else None
            return shown - pressed, cpu
        finally:
            terminal.close()


def measure_latency(kind: str, seconds: float, rate: float, seed: int = 3) -> list[float]:
    """Key-to-screen latencies (s) while ``kind`` streams at ``rate`` tokens/s ("idle": none)."""
    tokens = int(seconds * rate * 1.2) if kind != "idle" else 10
    terminal = Terminal(_child_args("widget" if kind == "idle" else kind, tokens, rate))
    # gc.freeze() in the child waits for lexer preloading; give start-up time to finish.
    rnd = random.Random(seed)
    latencies: list[float] = []
    try:
        if terminal.wait_for(READY, 0, 20) is None:
            raise RuntimeError("the bench app did not start")
        time.sleep(1.0)
        if kind != "idle":
            terminal.send(START_KEY)
        end = time.perf_counter() + seconds
        index = 0
        while time.perf_counter() < end:
            time.sleep(rnd.uniform(0.08, 0.2))
            key = PROBE_KEYS[index % len(PROBE_KEYS)]
            index += 1
            after = terminal.mark()
            pressed = terminal.send(key.encode())
            shown = terminal.wait_for(key, after, 2.0)
            if shown is not None:
                latencies.append(shown - pressed)
            terminal.send(b"\x7f")  # backspace: the next probe key is then the only one shown
            time.sleep(0.03)
    finally:
        terminal.close()
    return latencies


def count_markdown_blocks(text: str) -> tuple[int, int]:
    """(top-level blocks, all block elements) of a reply, as Markdown sees them."""
    from markdown_it import MarkdownIt

    parsed = MarkdownIt("commonmark").enable("table").parse(text)
    top = sum(1 for t in parsed if t.level == 0 and t.nesting >= 0 and t.map)
    blocks = sum(1 for t in parsed if t.nesting >= 0 and t.map and t.type != "inline")
    return top, blocks


def _median(values: list[float | None]) -> float | None:
    done = [value for value in values if value is not None]
    return statistics.median(done) if len(done) == len(values) and done else None


def _fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "(cap)"
    return f"{value * 1000:7.1f} ms" if unit == "ms" else f"{value:7.3f} s"


def _fmt_short(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(round(fraction * (len(ordered) - 1)), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-cap", type=float, default=45.0, help="seconds before giving up")
    parser.add_argument(
        "--child", nargs=4, metavar=("KIND", "TOKENS", "RATE", "REPORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        kind, tokens, rate, report = args.child
        run_child(kind, int(tokens), float(rate), report)
        return

    sizes = [1000, 4000] if args.quick else [1000, 2000, 4000, 8000]
    repeats = 1 if args.quick else args.repeats
    print(
        f"load average {os.getloadavg()[0]:.1f} at start (other work on the machine slows the wall "
        "times; the CPU times are steadier)"
    )
    print(
        f"terminal {COLUMNS}x{ROWS}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"{repeats} run(s) per figure, median shown"
    )
    print(
        "\nStreaming as fast as possible: key press -> last token on screen (wall), and CPU the app used."
        "\nReplyMarkdown gets every token; MarkdownStream gets writes coalesced every 50 ms (its best)."
    )
    print(
        f"{'reply':>16} {'tokens':>6} {'chars':>6} {'blocks':>8} | {'ReplyMarkdown':>13} {'cpu':>6} | "
        f"{'MarkdownStream':>14} {'cpu':>6} | {'ratio':>6} {'cpu ratio':>9}"
    )
    rows = [("mixed", tokens, "widget", tokens in (1000, 4000)) for tokens in sizes]
    # No baseline here: MarkdownStream took 0.4-0.6 s on most runs and 35 s (27 s of CPU) on some,
    # so a median of three says little.
    rows.append(("one code block", 4000, "widget,code", False))
    if not args.quick:
        rows.append(("mixed, cold lexer", 4000, "widget,cold", False))
    widget_times: dict[int, tuple[float | None, float | None]] = {}
    for label, tokens, kind, with_baseline in rows:
        shape = "code" if kind.endswith(",code") else "mixed"
        text = generate_reply(tokens, shape=shape)
        top, blocks = count_markdown_blocks(text)
        runs = [measure_stream(kind, tokens, 60) for _ in range(repeats)]
        widget = (_median([wall for wall, _ in runs]), _median([cpu for _, cpu in runs]))
        if kind == "widget":
            widget_times[tokens] = widget
        baseline: tuple[float | None, float | None] = (None, None)
        base_text = f"{'(not run)':>14} {'':>6}"
        if with_baseline:
            base_kind = "baseline" + (",code" if shape == "code" else "")
            base_runs = [measure_stream(base_kind, tokens, args.baseline_cap) for _ in range(repeats)]
            baseline = (_median([wall for wall, _ in base_runs]), _median([cpu for _, cpu in base_runs]))
            base_text = f"{_fmt(baseline[0]):>14} {_fmt_short(baseline[1]):>6}"
        ratio = f"{baseline[0] / widget[0]:5.1f}x" if widget[0] and baseline[0] else "     -"
        cpu_ratio = f"{baseline[1] / widget[1]:8.1f}x" if widget[1] and baseline[1] else "        -"
        print(
            f"{label:>16} {tokens:>6} {len(text):>6} {f'{top}/{blocks}':>8} | {_fmt(widget[0]):>13} "
            f"{_fmt_short(widget[1]):>6} | {base_text} | {ratio:>6} {cpu_ratio:>9}"
        )
    small, large = widget_times.get(1000), widget_times.get(8000)
    if small and large and small[0] and large[0] and small[1] and large[1]:
        print(
            f"growth 1k -> 8k tokens (8x the text): wall {large[0] / small[0]:.1f}x, "
            f"cpu {large[1] / small[1]:.1f}x"
        )

    print("\nResponsiveness: key typed in the Input -> shown, while a reply streams at 200 tokens/s")
    seconds = 5.0 if args.quick else 15.0
    print(f"{'app state':>28} {'keys':>5} {'p50':>10} {'p95':>10} {'max':>10}")
    for label, kind in (
        ("idle (baseline)", "idle"),
        ("ReplyMarkdown streaming", "widget"),
        ("ReplyMarkdown, gc.freeze()", "widget,freeze"),
        ("MarkdownStream streaming", "baseline"),
        ("MarkdownStream, gc.freeze()", "baseline,freeze"),
    ):
        latencies = measure_latency(kind, seconds, 200.0)
        if not latencies:
            print(f"{label:>28}  no keys shown")
            continue
        print(
            f"{label:>28} {len(latencies):>5} {_fmt(_percentile(latencies, 0.5), 'ms'):>10} "
            f"{_fmt(_percentile(latencies, 0.95), 'ms'):>10} {_fmt(max(latencies), 'ms'):>10}"
        )


if __name__ == "__main__":
    main()
