"""The sanitiser: nothing that acts on a terminal gets through, and no text the model wrote disappears.

Tried as a class: every chunking of every text drawn from an alphabet of introducers, terminators,
controls and ordinary characters, against the whole-text path and against what a terminal would act on.
"""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from edgechat_tui.core.sanitize import _MAX_PENDING, StreamSanitizer, sanitize

# The pieces sequences are made of, and ordinary text around them.
ALPHABET = ["\x1b", "]", "[", "P", "X", "^", "_", "\\", "\x07", "\x9c", "\x9b", "\x9d", "\x90", "0", ";",
            "m", "a", " ", "\n", "\r", "\t", "\x00", "\x7f", "\x85", "é", "😀", "(", "B", "#"]
texts = st.lists(st.sampled_from(ALPHABET), max_size=60).map("".join)
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def stream(chunks: list[str]) -> str:
    s = StreamSanitizer()
    return "".join(s.feed(c) for c in chunks) + s.flush()


def chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(c, len(text)) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(text[last:p])
        last = p
    return [*pieces, text[last:]]


@settings(max_examples=3000, deadline=None)
@given(texts, st.lists(st.integers(min_value=0, max_value=60), max_size=8))
# Found by this test: removing a sequence must not join its neighbours into a new one, and an OSC still
# open holds back the CSI inside it until its terminator decides.
@example("\x1b]\x9b\x1b0]", [])
@example("\x1b]\x9b]\x1b\\", [4])
def test_any_chunking_gives_the_whole_text_answer_and_nothing_unsafe(text: str, cuts: list[int]) -> None:
    whole = sanitize(text)
    assert stream(chunked(text, cuts)) == whole
    assert not UNSAFE.search(whole)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=["Cc", "Cs"]), max_size=200),
       st.sampled_from(["\x1b]", "\x1bP", "\x1b_", "\x1b^", "\x1bX", "\x9d", "\x90", "\x1b[", "\x9b",
                        "\x1b"]),
       st.lists(st.integers(min_value=0, max_value=220), max_size=6))
def test_an_introducer_never_terminated_loses_no_text(text: str, introducer: str, cuts: list[int]) -> None:
    """`ESC ]` then ordinary text is not a sequence: only the control characters go."""
    source = "before " + introducer + text + " after"
    expected_words = (source.replace("\x1b", "").replace("\x9d", "").replace("\x90", "").replace("\x9b", ""))
    got = stream(chunked(source, cuts))
    # A CSI introducer may legitimately swallow parameter bytes and a final byte: it is a sequence then.
    if introducer in ("\x1b[", "\x9b", "\x1b") and sanitize(source) != expected_words:
        return
    assert got == expected_words
    assert sanitize(source) == expected_words


def test_a_long_unterminated_string_is_released_as_text_not_dropped() -> None:
    body = "x" * (_MAX_PENDING * 3)
    for introducer in ("\x1b]", "\x1bP", "\x9d"):
        chunks = ["start ", introducer + "0;", *[body[i:i + 1024] for i in range(0, len(body), 1024)], " end"]
        got = stream(chunks)
        assert got == "start " + ("" if introducer == "\x9d" else introducer[1:]) + "0;" + body + " end"


def test_a_line_break_ends_a_string_sequence_as_text() -> None:
    assert stream(["a\x1b]0;title", "\nnext line"]) == "a]0;title\nnext line"
    assert sanitize("a\x1b]0;title\nnext\x07") == "a]0;title\nnext"


def test_complete_sequences_are_removed_whole() -> None:
    cases = {
        "\x1b]0;retitled\x07": "", "\x1b]52;c;ZWNobyBoaQ==\x1b\\": "", "\x1bP+q\x1b\\": "",
        "\x1b[31mred\x1b[0m": "red", "\x9b2J": "", "\x9d8;;http://x\x9c": "", "\x1b(B": "", "\x1b#8": "",
    }
    for raw, shown in cases.items():
        assert sanitize("<" + raw + ">") == "<" + shown + ">"
        assert stream([c for c in "<" + raw + ">"]) == "<" + shown + ">"
