"""The SSE parser: the standard's rules, and the same events however the bytes are chunked."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from edgechat_tui.http.sse import ServerSentEvent, SSEError, SSEParser


def parse(*chunks: bytes) -> list[ServerSentEvent]:
    parser = SSEParser()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.end()


def datas(*chunks: bytes) -> list[str]:
    return [e.data for e in parse(*chunks)]


def test_workers_ai_stream():
    stream = (b'data: {"response":"New"}\n\ndata: {"response":" York"}\n\n'
              b'data: {"response":"","usage":{"total_tokens":5}}\n\ndata: [DONE]\n\n')
    assert datas(stream) == ['{"response":"New"}', '{"response":" York"}',
                             '{"response":"","usage":{"total_tokens":5}}', "[DONE]"]


@pytest.mark.parametrize("end", [b"\r\n", b"\r", b"\n"])
def test_every_line_ending(end):
    assert datas(b"data: a" + end + b"data: b" + end + end + b"data: c" + end + end) == ["a\nb", "c"]


def test_comments_fields_without_colon_and_spaces():
    stream = (b": keep-alive\n\n"
              b"data\n\n"               # a field without a colon: empty data, still an event
              b"data:no space\n\n"
              b"data:  two spaces\n\n"  # only the first space is dropped
              b"event: update\nid: 7\nretry: 1500\ndata: x\n\n"
              b"unknown: field\n\n")    # no data: no event
    events = parse(stream)
    assert [e.data for e in events] == ["", "no space", " two spaces", "x"]
    assert events[3] == ServerSentEvent(data="x", event="update", id="7", retry=1500)
    assert events[0].event == "message"


def test_bom_is_dropped_only_at_the_start():
    assert datas(b"\xef\xbb\xbfdata: a\n\n") == ["a"]
    assert datas(b"\xef", b"\xbb", b"\xbfdata: a\n\n") == ["a"]
    # A second BOM is part of the first line: the field name is then not "data".
    assert datas(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n") == []


def test_ids_with_nul_are_ignored_and_retry_needs_digits():
    events = parse(b"id: 1\ndata: a\n\nid: 2\x003\nretry: 5s\ndata: b\n\n")
    assert [(e.id, e.retry) for e in events] == [("1", None), ("1", None)]


def test_unterminated_last_event_comes_out_at_the_end():
    parser = SSEParser()
    assert parser.feed(b'data: {"resp') == []
    assert [e.data for e in parser.end()] == ['{"resp']


def test_invalid_utf8_is_an_error():
    with pytest.raises(SSEError, match="UTF-8"):
        parse(b'data: {"response":"caf\xc3\x28"}\n\n')


def test_a_line_without_end_cannot_fill_memory():
    parser = SSEParser(max_event_bytes=1000)
    with pytest.raises(SSEError):
        for _ in range(10):
            parser.feed(b"x" * 200)


def test_an_event_of_many_lines_cannot_fill_memory():
    parser = SSEParser(max_event_bytes=1000)
    with pytest.raises(SSEError):
        parser.feed(b"data: 0123456789\n" * 200)


# --- properties -----------------------------------------------------------------------------------

# Lines of SSE text built from pieces that exercise every rule.
_fragments = st.sampled_from([
    b"data: a", b"data:b", b"data", b"data: ", b": comment", b"event: e", b"id: 1", b"id: x\x00y",
    b"retry: 10", b"retry: x", b"other: z", b"data: caf\xc3\xa9 \xe2\x82\xac", b"data: [DONE]", b"",
])
_endings = st.sampled_from([b"\n", b"\r", b"\r\n"])


@st.composite
def streams(draw) -> bytes:
    lines = draw(st.lists(st.tuples(_fragments, _endings), max_size=30))
    body = b"".join(text + end for text, end in lines)
    if draw(st.booleans()):
        body = b"\xef\xbb\xbf" + body
    if draw(st.booleans()):
        body += draw(_fragments)  # an unterminated last line
    return body


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


@given(streams(), st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
@example(b"data: a\r\n\r\n", [8])  # CR and LF of one line end in different chunks
@example(b"data: a\r\r\n", [8])
@example(b"\xef\xbb\xbfdata: a\n\n", [1, 2])
def test_any_chunking_gives_the_same_events(stream, cuts):
    assert parse(*split(stream, cuts)) == parse(stream)


@given(streams())
def test_byte_by_byte_gives_the_same_events(stream):
    assert parse(*(stream[i : i + 1] for i in range(len(stream)))) == parse(stream)


_texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40)


@given(st.lists(st.lists(_texts, min_size=1, max_size=3), max_size=10), _endings,
       st.lists(st.integers(min_value=0, max_value=10_000), max_size=10))
def test_what_a_server_writes_comes_back(events, end, cuts):
    """Serialise events as a server would (one data line per line of text); they parse back exactly."""
    stream = b"".join(
        b"".join(b"data: " + line.encode() + end for line in lines) + end for lines in events
    )
    assert [e.data for e in parse(*split(stream, cuts))] == ["\n".join(lines) for lines in events]


class _CountingPattern:
    """Wraps the parser's line-end pattern and counts the bytes each search may look at."""

    def __init__(self, pattern) -> None:
        self.pattern = pattern
        self.scanned = 0

    def search(self, buffer, position=0):
        self.scanned += len(buffer) - position
        return self.pattern.search(buffer, position)


@pytest.mark.parametrize("piece", [1, 7, 1024])
def test_a_long_line_trickled_in_small_chunks_is_scanned_once(monkeypatch, piece):
    """The work per byte does not grow with the line: each byte is searched for a line end once."""
    from edgechat_tui.http import sse

    counter = _CountingPattern(sse._LINE_END)
    monkeypatch.setattr(sse, "_LINE_END", counter)
    data = b"data: " + b"x" * (256 * 1024 if piece > 1 else 16 * 1024) + b"\n\n"
    parser = SSEParser(max_event_bytes=len(data))
    events = []
    for start in range(0, len(data), piece):
        events += parser.feed(data[start:start + piece])
    assert len(events) == 1 and len(events[0].data) == len(data) - 8
    assert counter.scanned <= 2 * len(data), f"{counter.scanned} bytes searched for {len(data)}"
