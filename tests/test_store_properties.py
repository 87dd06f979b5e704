"""Property tests of HistoryStore: random histories, random interleavings, every way to tear a record."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from edgechat_tui.core.messages import Message, Usage
from edgechat_tui.storage import HistoryStore, encode_header, encode_turn

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
        self.expected += pair
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
        last = encode_turn(*history[-1])
        assert data.endswith(last)
        start = len(data) - len(last)
        earlier = [m for pair in history[:-1] for m in pair]
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
            assert HistoryStore(root, USER).load() == [*earlier, *replacement]
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
        assert HistoryStore(root, USER).load() == list(pair)
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
        survivors = [m for n, pair in enumerate(history, start=1) if n != broken for m in pair]
        assert HistoryStore(root, USER, warn=warnings.append).load() == survivors
        (aside,) = root.glob(f"{USER}.corrupt-*")
        assert aside.read_bytes() == original
        assert any(str(aside) in w for w in warnings)
        assert HistoryStore(root, USER).load() == survivors
    finally:
        shutil.rmtree(root, ignore_errors=True)
