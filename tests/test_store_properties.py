"""Property tests of HistoryStore: random histories, random interleavings, every way to tear a record."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from edgechat_tui.core.messages import Message, Usage
from edgechat_tui.storage import HistoryStore, encode_header, encode_turn
from edgechat_tui.storage.format import clean_message

USER = "alice"
# Any text at all, lone surrogates included (a broken decoder upstream can produce them).
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
counts = st.none() | st.integers(min_value=0, max_value=10**9)
usages = st.builds(Usage, counts, counts, counts).filter(lambda u: u != Usage()) | st.none()


def messages(role: str) -> st.SearchStrategy[Message]:
    replies = role == "assistant"
    return st.builds(
        Message,
        role=st.just(role),
        content=any_text,
        time=any_text,
        model=st.none() | any_text if replies else st.none(),
        usage=usages if replies else st.none(),
        stopped=st.booleans(),
    )


turns = st.tuples(messages("user"), messages("assistant"))


def as_read(*stored: Message) -> list[Message]:
    """The messages as a reader gets them back: a lone surrogate (no UTF-8 form) reads as U+FFFD."""
    return [clean_message(m) for m in stored]


class SharedHistory(RuleBasedStateMachine):
    """Several stores (as several processes would) appending, refreshing, loading and archiving one user.

    The model is the list of turns in the current file; every store must agree with it after it reads.
    """

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="edgechat-store-"))
        self.data_dir = self.root / "data"
        self.warnings: list[str] = []
        self.expected: list[Message] = []
        self.archived: list[tuple[Path, list[Message]]] = []

    @initialize(n=st.integers(min_value=1, max_value=3))
    def open_stores(self, n: int) -> None:
        self.stores = [HistoryStore(self.data_dir, USER, warn=self.warnings.append) for _ in range(n)]

    def pick(self, i: int) -> HistoryStore:
        return self.stores[i % len(self.stores)]

    @rule(i=st.integers(0, 2), pair=turns)
    def append(self, i: int, pair: tuple[Message, Message]) -> None:
        self.expected += as_read(*pair)
        assert self.pick(i).append_turn(*pair) == len(self.expected)
        assert self.pick(i).messages == self.expected

    @rule(i=st.integers(0, 2))
    def refresh(self, i: int) -> None:
        assert self.pick(i).refresh() == self.expected

    @rule(i=st.integers(0, 2))
    def load(self, i: int) -> None:
        assert self.pick(i).load() == self.expected

    @rule(i=st.integers(0, 2))
    def archive(self, i: int) -> None:
        archived = self.pick(i).archive()
        if self.expected:
            assert archived is not None
            self.archived.append((archived, self.expected))
        else:
            assert archived is None  # no turn, no file
        self.expected = []
        assert self.pick(i).messages == []

    @precondition(lambda self: self.archived)
    @rule()
    def archives_hold_what_was_archived(self) -> None:
        for number, (path, content) in enumerate(self.archived):
            check = self.root / f"check-{number}"
            check.mkdir(exist_ok=True)
            shutil.copyfile(path, check / f"{USER}.jsonl")
            assert HistoryStore(check, USER).load() == content

    @invariant()
    def nothing_to_warn_about(self) -> None:
        assert self.warnings == []

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


SharedHistory.TestCase.settings = settings(max_examples=40, stateful_step_count=20, deadline=None)
test_shared_history = SharedHistory.TestCase


def fresh_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="edgechat-store-"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=st.lists(turns, min_size=1, max_size=4))
def test_a_last_record_torn_at_every_offset_loses_only_itself(history: list[tuple[Message, Message]]) -> None:
    root = fresh_dir()
    try:
        store = HistoryStore(root, USER)
        for pair in history:
            store.append_turn(*pair)
        data = store.path.read_bytes()
        last = encode_turn(*as_read(*history[-1]))
        assert data.endswith(last)
        start = len(data) - len(last)
        earlier = as_read(*(m for pair in history[:-1] for m in pair))
        # Shrinking in place, from the end: rewriting the file each time would make ext4 flush it on close.
        for cut in reversed(range(start, len(data))):
            os.truncate(store.path, cut)
            warnings: list[str] = []
            assert HistoryStore(root, USER, warn=warnings.append).load() == earlier
            assert len(warnings) == (1 if cut > start else 0)
            assert store.path.read_bytes() == data[:cut]  # reading changes nothing
        assert list(root.glob(f"{USER}.corrupt-*")) == []

        # Writing after a tear: the torn bytes go aside, the new turn follows the earlier ones.
        cuts = sorted({start + 1, (start + len(data)) // 2, len(data) - 1})
        for cut in cuts:
            store.path.write_bytes(data[:cut])
            replacement = history[0]
            writer = HistoryStore(root, USER, warn=lambda _text: None)
            assert writer.append_turn(*replacement) == len(earlier) + 2
            assert HistoryStore(root, USER).load() == [*earlier, *as_read(*replacement)]
        kept = sorted(p.read_bytes() for p in root.glob(f"{USER}.torn-*"))
        assert kept == sorted(data[start:cut] for cut in cuts)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@settings(max_examples=30, deadline=None)
@given(pair=turns)
def test_a_torn_header_at_every_offset(pair: tuple[Message, Message]) -> None:
    root = fresh_dir()
    try:
        header = encode_header(USER)
        path = root / f"{USER}.jsonl"
        path.write_bytes(header)
        for cut in reversed(range(len(header))):
            os.truncate(path, cut)
            assert HistoryStore(root, USER, warn=lambda _text: None).load() == []
        store = HistoryStore(root, USER, warn=lambda _text: None)
        assert store.append_turn(*pair) == 2
        assert HistoryStore(root, USER).load() == as_read(*pair)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@settings(max_examples=40, deadline=None)
@given(history=st.lists(turns, min_size=2, max_size=5), data=st.data())
def test_damage_in_the_middle_keeps_every_other_turn(history: list[tuple[Message, Message]],
                                                      data: st.DataObject) -> None:
    root = fresh_dir()
    try:
        store = HistoryStore(root, USER)
        for pair in history:
            store.append_turn(*pair)
        lines = store.path.read_bytes().split(b"\n")[:-1]  # header, then one line per turn
        broken = data.draw(st.integers(1, len(history) - 1), label="damaged turn")  # not the last
        garbage = data.draw(st.binary(max_size=30).filter(lambda b: b"\n" not in b), label="garbage")
        lines[broken] = garbage + b"\xff"  # \xff: never valid UTF-8, so never a readable record
        original = b"\n".join(lines) + b"\n"
        store.path.write_bytes(original)

        warnings: list[str] = []
        survivors = as_read(*(m for n, pair in enumerate(history, start=1) if n != broken for m in pair))
        assert HistoryStore(root, USER, warn=warnings.append).load() == survivors
        (aside,) = root.glob(f"{USER}.corrupt-*")
        assert aside.read_bytes() == original
        assert any(str(aside) in w for w in warnings)
        assert HistoryStore(root, USER).load() == survivors
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- Whatever a stored file holds, later commands work -------------------------------------------------

# Any JSON value a hand-edited or older file could hold where a string or a count belongs.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)
_pieces = ["\ud83d", "\ude00", "\udfff", "\ud800", "a", "é", "\x1b]0;", "\x9b", "\u202e"]
stored_strings = any_text | st.lists(st.sampled_from(_pieces), max_size=8).map("".join)
stored_messages = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant"]), "content": stored_strings},
    optional={"time": stored_strings | json_values, "model": stored_strings | json_values,
              "usage": json_values | st.dictionaries(st.sampled_from(["prompt_tokens", "completion_tokens",
                                                                       "total_tokens"]), json_values),
              "stopped": json_values},
)


def _assert_plain_text(message: Message) -> None:
    for value in (message.role, message.content, message.time, message.model or ""):
        value.encode("utf-8")  # no lone surrogate survives a load


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(st.lists(stored_messages, min_size=1, max_size=3), min_size=1, max_size=4))
def test_no_stored_content_makes_a_later_command_fail(records: list[list[dict]]) -> None:
    """Lone surrogates (``\\ud83d`` in the JSON) and wrong types in any field, as an older version or a
    hand edit could leave them: loading, listing, exporting and the next save all work."""
    from edgechat_tui.storage import list_users
    from edgechat_tui.storage.export import to_json, to_markdown

    root = fresh_dir()
    try:
        lines = [json.dumps({"messages": messages}, ensure_ascii=True).encode() + b"\n"
                 for messages in records]
        (root / f"{USER}.jsonl").write_bytes(encode_header(USER) + b"".join(lines))
        loaded = HistoryStore(root, USER, warn=lambda _text: None).load()
        for message in loaded:
            _assert_plain_text(message)
        to_markdown(USER, loaded, exported="now", model=None).encode("utf-8")
        to_json(USER, loaded, exported="now", model=None).encode("utf-8")
        json.dumps([m.to_json() for m in loaded], ensure_ascii=False).encode("utf-8")  # history --format json
        assert [summary.user for summary in list_users(root)] == [USER]
        store = HistoryStore(root, USER, warn=lambda _text: None)
        store.load()
        assert store.append_turn(Message("user", "next"), Message("assistant", "fine")) == len(loaded) + 2
        again = HistoryStore(root, USER).load()
        assert [m.content for m in again[-2:]] == ["next", "fine"]
    finally:
        shutil.rmtree(root, ignore_errors=True)
