"""The one-shot's Markdown view, held as a class: whatever the chunking and the terminal's size, the
screen ends showing each block once, rendered (or, when it was too tall to take back, as it streamed),
never a raw block left behind, never a block twice. Checked on an emulated screen (tests/term_screen.py)
fed the exact bytes written."""

from __future__ import annotations

import itertools
import random

import pytest

from edgechat_tui.cli.terminal_reply import BlockSplitter, TerminalReply, _render_block, rows_of
from tests.term_screen import Screen

CODE = ("```python\ndef fib(n: int) -> int:\n    a, b = 0, 1\n    for _ in range(n):\n"
        "        a, b = b, a + b\n    return a\n```")
TABLE = "| n | fib(n) |\n|---|--------|\n| 1 | 1 |\n| 10 | 55 |"
DOCS = {
    "paragraphs": "Hello **there**.\n\nA second paragraph with `code` and *emphasis*.",
    "mixed": (f"# Fibonacci\n\nHere is **the function**:\n\n{CODE}\n\n{TABLE}\n\n- one\n- two\n\n"
              "It runs in *linear* time."),
    "fence under text": f"Look:\n{CODE}\nand after.",
    "tildes and tabs": "~~~\n\tindented\twith tabs\n~~~\n\n1. first\n2. second",
    "wide": "漢字の段落です。" * 12 + "\n\n**終わり**",
    "long paragraph": " ".join(f"word{i}" for i in range(400)),
    "tall code": "Intro.\n\n```\n" + "\n".join(f"line {i}" for i in range(60)) + "\n```\n\nAfter **it**.",
    "no trailing newline in fence": "```\nunterminated code",
    "blank lines only": "\n\n\n",
    "link": "See [the docs](http://example.com/x) now.",
    "one line": "You said: hello, world (twice)!",
    "short lines": "Plain words.\n\nMore plain words, 50% of them.\n\nAnd 3 & more.",
}
SIZES = [(80, 40), (40, 12), (24, 6)]


def chunkings(text: str) -> list[list[str]]:
    rng = random.Random(len(text))
    cuts: list[list[str]] = [[text], list(text)]
    for size in (3, 7, 64):
        cuts.append([text[i:i + size] for i in range(0, len(text), size)])
    for _ in range(3):
        points = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, 12))) if len(text) > 2 else []
        edges = [0, *points, len(text)]
        cuts.append([text[a:b] for a, b in itertools.pairwise(edges) if b > a])
    return cuts


def expected(blocks: list[str], outcomes: list[str], width: int) -> list[str]:
    lines: list[str] = []
    for index, (block, outcome) in enumerate(zip(blocks, outcomes, strict=True)):
        if index:
            lines.append("")
        raw = block.replace("\t", "    ") + "\n"
        text = _render_block(block, width, None) if outcome == "rendered" else raw
        screen = Screen(width, 10_000)
        screen.feed(text.replace("\n", "\r\n"))
        lines += screen.lines_above_cursor
    while lines and not lines[-1]:
        lines.pop()
    return lines


def whole_blocks(text: str) -> list[str]:
    splitter = BlockSplitter()
    blocks = splitter.feed(text)
    last = splitter.finish()
    return blocks + ([last] if last is not None else [])


@pytest.mark.parametrize("name", sorted(DOCS))
@pytest.mark.parametrize("width, height", SIZES)
def test_every_chunking_ends_with_each_block_shown_once(name: str, width: int, height: int) -> None:
    text = DOCS[name]
    blocks = whole_blocks(text)
    for pieces in chunkings(text):
        # The terminal turns LF into CR LF (onlcr): the emulator is fed what the tty passes on.
        screen = Screen(width, height)
        reply = TerminalReply(lambda data, s=screen: s.feed(data.replace("\n", "\r\n")), width=width,
                              height=height, color_system=None)
        for piece in pieces:
            reply.feed(piece)
        reply.finish()
        assert len(reply.outcomes) == len(blocks)
        for block, outcome in zip(blocks, reply.outcomes, strict=True):
            if outcome == "plain":  # only a block too tall to erase is left as it streamed
                assert rows_of(block.replace("\t", "    ") + "\n", width) > height - 2
            if outcome == "as shown":  # left as streamed only where rendering shows the same
                assert _render_block(block, width, None).strip() == block
        assert screen.lines == expected(blocks, reply.outcomes, width), (name, pieces[:3])


def test_small_blocks_are_always_rendered_and_no_markdown_marks_stay() -> None:
    text = DOCS["mixed"]
    for pieces in chunkings(text):
        screen = Screen(80, 40)
        reply = TerminalReply(lambda data, s=screen: s.feed(data.replace("\n", "\r\n")), width=80, height=40,
                              color_system=None)
        for piece in pieces:
            reply.feed(piece)
        reply.finish()
        assert set(reply.outcomes) <= {"rendered", "as shown"}
        shown = "\n".join(screen.lines)
        for mark in ("**", "```", "|---|", "# Fib", "- one"):
            assert mark not in shown
        assert "Fibonacci" in shown and "def fib" in shown and "• one" in shown and "55" in shown


def test_colour_is_rich_styling_and_links_are_not_hyperlinks() -> None:
    written: list[str] = []
    reply = TerminalReply(written.append, width=60, height=20, color_system="truecolor")
    reply.feed(DOCS["mixed"] + "\n\n" + DOCS["link"])
    reply.finish()
    out = "".join(written)
    assert "\x1b[1m" in out  # bold
    assert "\x1b]8;" not in out  # no OSC 8 hyperlink
    screen = Screen(60, 20)
    screen.feed(out.replace("\n", "\r\n"))  # only SGR, cursor up, erase line: the emulator accepts it
    assert "the docs (http://example.com/x)" in "\n".join(screen.lines)


def test_the_splitter_cuts_at_blank_lines_and_closing_fences_only() -> None:
    splitter = BlockSplitter()
    assert splitter.feed("a\nb") == [] and splitter.tail == "a\nb"
    assert splitter.feed("\n\n") == ["a\nb"] and splitter.tail == ""
    assert splitter.feed("```\nx\n\ny\n") == [] and splitter.tail == "```\nx\n\ny\n"
    assert splitter.feed("````\n") == ["```\nx\n\ny\n````"]  # a longer fence of the kind closes it...
    splitter = BlockSplitter()
    assert splitter.feed("````\nx\n```\n") == []  # ...a shorter one does not
    assert splitter.feed("````\n") == ["````\nx\n```\n````"]
    assert splitter.finish() is None
