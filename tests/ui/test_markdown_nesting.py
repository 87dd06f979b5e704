"""Markdown nested deeper than the parser goes is shown flattened, never dropped.

markdown-it stops at 20 levels and skips the rest of the block ("we should not care about content"):
30 nested quotes or a 30-deep list lost their deepest text. The class is tried here: quotes, lists
(bulleted, numbered, with paragraphs), mixed, emphasis, links and brackets, deep code; each compares
the words on screen with the words of the source, streamed through the widget and rendered whole.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.ui.test_reply_widget import SIZE, EagerReply, ReplyApp, plain, settle, stream

CASES = {
    "30 quotes, one per line": "".join(">" * i + f" q{i}\n" for i in range(1, 31)) + "\nafter paragraph\n",
    "30 quote marks on one line": ">" * 30 + " deep text\n\nafter paragraph\n",
    "a lazy line after deep quotes": ">" * 30 + " deep\nlazy continuation line\n\nafter\n",
    "100 quote marks": "> " * 100 + "very deep\n\nafter\n",
    "2000 quote marks": ">" * 2000 + " bottom\n\nafter\n",
    "a 30-deep bullet list": "".join("  " * i + f"- item{i}\n" for i in range(30)) + "\nafter paragraph\n",
    "a 30-deep numbered list": "".join("   " * i + f"1. num{i}\n" for i in range(30)) + "\nafter\n",
    "a deep list with paragraphs": "".join("  " * i + f"- item{i}\n\n" + "  " * (i + 1) + f"para{i}\n\n"
                                           for i in range(30)) + "after\n",
    "quotes and lists mixed": "".join("> " if i % 2 else "- " for i in range(40)) + "deepest\n\nafter\n",
    "quote then list, deep": "> " * 15 + "".join("  " * i + f"- m{i}\n" + "> " * 15 for i in range(15))
                             + "end\n\nafter\n",
    "deep emphasis": "*a " * 40 + "x" + " b*" * 40 + "\n\nafter\n",
    "deep strong": "**s " * 40 + "y" + " t**" * 40 + "\n\nafter\n",
    "nested links": "[" * 40 + "label" + "](http://u)" * 40 + "\n\nafter\n",
    "deep brackets": "[" * 300 + "inside" + "]" * 300 + "\n\nafter\n",
    "emphasis and links in deep quotes": ">" * 25 + " " + "*a " * 30 + "x" + " b*" * 30
                                         + " [link [in [brackets]]](http://u)\n\nafter\n",
    "code in deep quotes": ">" * 25 + " ```\n" + ">" * 25 + " code here\n" + ">" * 25 + " ```\n\nafter\n",
}


def words(text: str) -> Counter[str]:
    return Counter(re.findall(r"[A-Za-z0-9]+", text))


def missing(source: str, shown: str) -> dict[str, int]:
    want, got = words(source), words(shown)
    return {word: count - got[word] for word, count in want.items() if got[word] < count}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_deeply_nested_markdown_loses_no_word(name: str) -> None:
    source = CASES[name]
    whole, streamed = EagerReply(source), EagerReply(final=False)
    # Wide enough that no word of these cases is cut by wrapping (a word split at the edge is not lost).
    async with ReplyApp(whole, streamed).run_test(size=(600, SIZE[1])) as pilot:
        await stream(pilot, streamed, source, seed=3, every=0.02)
        await settle(pilot, whole, streamed)
        for reply in (whole, streamed):
            assert missing(source, plain(reply)) == {}, name
        assert plain(streamed) == plain(whole)
