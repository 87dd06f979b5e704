"""The conversation library on disk: records and trees, the trash, the index and search, every file's
guarantees. Real files, real SQLite; the turns are built by storage/chat_turns.py as the agent builds them.
"""

from __future__ import annotations

import json
import os
import random
import stat
import threading

import pytest

from edgechat_tui.core.errors import (
    ConversationConflict,
    ConversationNotFound,
    MessageNotFound,
    NewerSchemaError,
    UsageError,
)
from edgechat_tui.core.messages import Message
from edgechat_tui.storage.chat_format import CHAT_ID, clean_title, encode_meta, new_chat_id, title_from_words
from edgechat_tui.storage.chat_search import fold, make_snippet, query_terms
from edgechat_tui.storage.chat_turns import plan_turn, turn_record
from edgechat_tui.storage.library import Library
from tests.histories import conversations, library_dir

USER = "alice"


@pytest.fixture
def library(tmp_path):
    warnings: list[str] = []
    lib = Library(tmp_path, USER, warn=warnings.append)
    lib.warnings = warnings  # type: ignore[attr-defined]
    yield lib
    lib.close()


def turn(lib: Library, chat_id: str | None, text: str, reply: str = "", *, action: str = "chat",
         target: str | None = None, truncated: bool = False, stopped: bool = False):
    """One turn as the agent saves it; returns the state after it."""
    if chat_id is None:
        chat_id = lib.create().id
    state, _ = lib.state(chat_id)
    plan = plan_turn(state, action, text, target)
    question = plan.question if plan.question is not None else Message("user", text)
    answer = Message("assistant", reply or f"re: {text}", stopped=stopped)
    return lib.append(chat_id, turn_record(plan, question, answer, truncated))


# --- ids and titles ---------------------------------------------------------------------------------


def test_ids_are_crockford_base32_sortable_by_creation_and_unique() -> None:
    ids = [new_chat_id(ms) for ms in (0, 1, 31, 32, 10**12, 1764000000000, 2**50 - 1)]
    assert all(CHAT_ID.fullmatch(i) for i in ids) and ids == sorted(ids)
    assert len({new_chat_id(1764000000000) for _ in range(2000)}) > 1990
    assert not set("ilou").intersection("".join(ids))


@pytest.mark.parametrize(("raw", "expected"), [
    ("  Trip\tto\nLisbon  ", "Trip to Lisbon"),
    ("\x1b[31mred\x1b[0m", "red"),  # escape sequences go whole, as the pane drops them
    ("Trip \x1b]0;evil\x07to \x9b2JLisbon\x1bP+q\x1b\\ now", "Trip to Lisbon now"),
    ("\x1b]0;never ended", "]0;never ended"),  # not a sequence: only its control goes
    ("a\u200bb\u2028c\u202ed", "a b c d"),
    ("x" * 200, "x" * 79 + "…"),
    ("word " * 40, ("word " * 15).strip() + "…"),
    ("\x00\x07", ""),
])
def test_titles_are_one_printable_line_of_at_most_80(raw, expected) -> None:
    assert clean_title(raw) == expected
    assert len(clean_title(raw)) <= 80


def test_first_words_title() -> None:
    assert title_from_words("Plan a trip to Lisbon in May with two kids please, thanks") == \
        "Plan a trip to Lisbon in May with…"
    assert title_from_words("short one") == "short one"


# --- the tree ---------------------------------------------------------------------------------------


def test_chat_regenerate_edit_continue_and_switch_make_the_promised_tree(library) -> None:
    state = turn(library, None, "q1", "a1")
    chat = state.id
    state = turn(library, chat, "q2", "a2", truncated=True)
    a2 = state.leaf
    q2 = state.nodes[a2].parent
    # continue: the same reply, its text grown, its id kept
    state = turn(library, chat, "", " more", action="continue")
    assert state.leaf == a2 and state.nodes[a2].message.content == "a2 more" and not state.nodes[a2].truncated
    # regenerate: a sibling of the reply, after the same question
    state = turn(library, chat, "", "a2 again", action="regenerate")
    regen = state.leaf
    assert state.nodes[regen].parent == q2 and state.siblings(state.nodes[regen]) == (a2, regen)
    assert [b.position for b in state.branch()] == [(1, 1), (1, 1), (1, 1), (2, 2)]
    # edit: a sibling of the question, with its own reply
    state = turn(library, chat, "q2 edited", "a2 edited", action="edit")
    branch = state.branch()
    assert [m.message.content for m in branch] == ["q1", "a1", "q2 edited", "a2 edited"]
    assert branch[2].position == (2, 2) and branch[2].siblings[0] == q2
    # switch back to the first version of q2: down to its newest leaf (the regenerated reply)
    state = library.switch(chat, q2)
    assert [m.message.content for m in state.branch()] == ["q1", "a1", "q2", "a2 again"]
    # everything survives a fresh read of the file
    again = Library(library.paths.data_dir, USER, warn=lambda _m: None)
    fresh, _ = again.state(chat)
    assert [m.id for m in fresh.branch()] == [m.id for m in state.branch()]
    assert {k: v.message for k, v in fresh.nodes.items()} == {k: v.message for k, v in state.nodes.items()}
    assert library.summary(chat).message_count == 4
    again.close()


def test_turns_that_do_not_apply_are_refused_and_write_nothing(library) -> None:
    chat = library.create().id
    state, _ = library.state(chat)
    for action in ("regenerate", "edit", "continue"):
        with pytest.raises(ConversationConflict):
            plan_turn(state, action, "x", None)
    state = turn(library, chat, "q", "complete")
    with pytest.raises(ConversationConflict, match="no reply to continue"):
        plan_turn(state, "continue", "", None)
    question = state.nodes[state.leaf].parent
    with pytest.raises(MessageNotFound):
        plan_turn(state, "regenerate", "", question)  # a question cannot be regenerated
    with pytest.raises(MessageNotFound):
        plan_turn(state, "edit", "x", state.leaf)  # a reply cannot be edited
    with pytest.raises(MessageNotFound):
        plan_turn(state, "regenerate", "", "0000000000zzzzzz")
    with pytest.raises(MessageNotFound):
        library.switch(chat, "0000000000zzzzzz")
    size = library.file(chat).path().stat().st_size
    plan = plan_turn(state, "chat", "late", None)  # planned before the archive: refused at the save
    library.archive(chat)
    archived, _ = library.state(chat)
    for action in ("chat", "regenerate", "edit"):
        with pytest.raises(ConversationConflict, match="archived"):
            plan_turn(archived, action, "x", None)
    with pytest.raises(ConversationConflict, match="archived"):
        library.append(chat, turn_record(plan, Message("user", "late"), Message("assistant", "r"), False))
    with pytest.raises(ConversationConflict):
        library.switch(chat, question)
    assert library.file(chat).path().stat().st_size == size + len(encode_meta({"archived": True}))


def test_concurrent_writers_extend_one_branch(tmp_path) -> None:
    first = Library(tmp_path, USER, warn=lambda _m: None)
    chat = first.create().id
    libraries = [Library(tmp_path, USER, warn=lambda _m: None) for _ in range(4)]
    for lib in libraries:
        lib.state(chat)  # each has read the (empty) conversation before the others write

    def write(lib: Library, n: int) -> None:
        for i in range(10):
            state, _ = lib.state(chat)
            plan = plan_turn(state, "chat", f"w{n}-{i}", None)
            record = turn_record(plan, Message("user", f"w{n}-{i}"), Message("assistant", "ok"), False)
            lib.append(chat, record)

    threads = [threading.Thread(target=write, args=(lib, n)) for n, lib in enumerate(libraries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state, _ = first.state(chat)
    branch = state.branch()
    assert len(branch) == 80 == len(state.nodes)  # no turn became a lost sibling: one straight line
    assert all(len(m.siblings) == 1 for m in branch)
    for lib in [first, *libraries]:
        lib.close()


# --- the list, the trash ----------------------------------------------------------------------------


def test_list_archive_restore_delete_and_purge(library) -> None:
    a = turn(library, None, "first chat").id
    b = turn(library, None, "second chat").id
    c = library.create("Named").id
    assert [s.id for s in library.list()] == [c, b, a]  # newest updated first; a new one counts as updated
    assert library.most_recent().id == c
    turn(library, a, "more in a")
    assert library.most_recent().id == a
    library.archive(b)
    assert [s.id for s in library.list()] == [a, c] and [s.id for s in library.list(archived=True)] == [b]
    assert library.summary(b).archived
    library.restore(b)
    assert b in [s.id for s in library.list()] and not library.summary(b).archived
    trashed = library.delete(c)
    assert trashed.deleted_at and trashed.purge_at > trashed.deleted_at
    assert c not in [s.id for s in library.list()] and [s.id for s in library.list(deleted=True)] == [c]
    assert library.summary(c).title == "Named"  # get finds one in the trash
    with pytest.raises(ConversationConflict):
        library.delete(a, purge=True)  # only from the trash
    library.restore(c)
    assert c in [s.id for s in library.list()] and library.list(deleted=True) == []
    library.delete(c)
    assert library.delete(c, purge=True) is None
    with pytest.raises(ConversationNotFound):
        library.summary(c)
    assert not library.paths.chat_path(c, "trash").exists()
    for bad in ("nope", "01M8SQ52BYJYDM", "../../etc/passwd", "0" * 14 + "\n"):
        with pytest.raises(ConversationNotFound):
            library.summary(bad)
    with pytest.raises(ConversationNotFound):
        library.rename(new_chat_id(), "x")


def test_the_trash_is_purged_after_30_days(tmp_path, library) -> None:
    old = turn(library, None, "old").id
    recent = turn(library, None, "recent").id
    library.delete(old)
    library.delete(recent)
    # A conversation deleted 31 days ago: its deleted time as the file says it.
    with open(library.paths.chat_path(old, "trash"), "ab") as f:
        f.write(encode_meta({"deleted": "2000-01-01T00:00:00.000Z"}))
    again = Library(tmp_path, USER, warn=lambda _m: None)
    assert [s.id for s in again.list(deleted=True)] == [recent]  # purged on first use
    assert not again.paths.chat_path(old, "trash").exists()
    again.close()


def test_a_reply_lands_in_a_conversation_trashed_meanwhile_and_fails_in_one_purged(library) -> None:
    chat = turn(library, None, "q").id
    state, _ = library.state(chat)
    plan = plan_turn(state, "chat", "next", None)
    library.delete(chat)
    library.append(chat, turn_record(plan, Message("user", "next"), Message("assistant", "r"), False))
    assert library.state(chat)[1] == "trash" and library.summary(chat).message_count == 4
    library.delete(chat, purge=True)
    with pytest.raises(ConversationNotFound):
        library.append(chat, turn_record(plan, Message("user", "x"), Message("assistant", "r"), False))


def test_rename_cleans_and_refuses_an_empty_title(library) -> None:
    chat = turn(library, None, "q").id
    assert library.summary(chat).title == "q"  # the first words at once
    assert library.rename(chat, "  Trip \x1b]0;evil\x07 to\nLisbon ").title == "Trip to Lisbon"
    with pytest.raises(UsageError):
        library.rename(chat, " \n\x1b ")
    assert library.set_model_title(chat, "Model title") is False  # the user's title stays
    other = turn(library, None, "another").id
    assert library.set_model_title(other, "Title: \"A good one.\"") is True
    assert library.summary(other).title == "Title: \"A good one.\""
    library.set_model_title(other, "Better")
    assert library.summary(other).title == "Better"


# --- search -----------------------------------------------------------------------------------------


def test_search_semantics(library) -> None:
    lisbon = turn(library, None, "Planning the LISBON trip", "Pastéis de nata in Belém").id
    other = turn(library, None, "cafe culture", "A CAFÉ on every corner; cafés everywhere").id
    hits = library.search("cafe")
    assert [h.chat for h in hits] == [other, other] and hits[0].role == "assistant"  # newest first
    for hit in hits:
        assert hit.highlights
        assert all(fold(hit.snippet[s:e]).startswith("cafe") for s, e in hit.highlights)
    assert library.search("lisb trip")[0].chat == lisbon  # prefixes, every term required
    assert library.search("lisbon cafe") == []
    assert library.search("belem")[0].snippet == "Pastéis de nata in Belém"  # accents folded
    for hostile in ('"', "NEAR(a b)", "a* OR b", "-x", "col:val", "(((", "'; DROP TABLE msgs; --"):
        try:
            library.search(hostile)  # words only: never FTS5 syntax, never an error from SQLite
        except UsageError:
            assert not query_terms(hostile)
    with pytest.raises(UsageError):
        library.search("  *** ")
    with pytest.raises(UsageError):
        library.search("x" * 501)
    library.archive(other)
    assert all(h.archived for h in library.search("cafe"))
    library.delete(other)
    assert library.search("cafe") == []  # the trash is not searched
    library.restore(other)
    assert len(library.search("cafe")) == 2


def test_a_snippet_is_one_line_around_the_match_with_exact_highlights(library) -> None:
    text = "\x1b[2J" + "filler words here " * 30 + "the NEEDLE\nis\there " + "tail " * 60
    chat = turn(library, None, "start", text).id
    [hit] = library.search("needle")
    assert hit.chat == chat and "\n" not in hit.snippet and "\x1b" not in hit.snippet
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…") and len(hit.snippet) <= 162
    [(start, end)] = hit.highlights
    assert hit.snippet[start:end] == "NEEDLE"


def test_words_inside_escape_sequences_are_not_found_and_snippets_carry_no_fragment(library) -> None:
    # The pane drops whole sequences; search finds and shows what the pane shows, for every kind.
    hostile = ("visible words \x1b]0;owned\x07 then \x1b[38;5;196mred\x1b[0m and C1 \x9b2Jcleared "
               "\x1bP+qowned\x1b\\ dcs \x1b_owned\x1b\\ apc, visible end")
    chat = turn(library, None, "start", hostile).id
    assert library.search("owned") == []
    [hit] = library.search("visible")
    assert hit.chat == chat
    for fragment in ("]0;", "[38;5;", "196m", "[0m", "2J", "P+q", "\x1b", "\x9b"):
        assert fragment not in hit.snippet, (fragment, hit.snippet)
    assert [hit.snippet[a:b] for a, b in hit.highlights] == ["visible", "visible"]
    assert [h.chat for h in library.search("red cleared")] == [chat]  # the text between them stays


def test_the_quick_snippet_of_ascii_text_is_the_word_by_word_one() -> None:
    """ASCII text is matched with one regex on its lower case; every word folded one by one is the
    reference. Random texts (cases, digits, underscores, controls, words cut by the window) and terms
    (some that fold to non-ASCII, or to no letter a word can start with)."""
    rng = random.Random(11)
    pieces = ["Lisbon", "lisbonite", "LISB", "tram", "Tr4m", "x_y", "_lis", "42", "4x", "e", "the",
              "\x1b[2J", "\t", "\n", "-", "'", ".", "  "]
    queries = ["lisbon", "LISB tram", "4", "e", "x y", "ıs", "ß tram", "½", "é lis", "the e", "tr4", "_"]
    checked = 0
    for _ in range(1500):
        text = " ".join(rng.choices(pieces, k=rng.randrange(0, 90)))
        text = text.replace(" ", rng.choice([" ", "", "  "]), 3)
        terms = query_terms(rng.choice(queries))
        width = rng.choice([20, 60, 160])
        quick = make_snippet(text, terms, width)
        assert quick == make_snippet(text, terms, width, quick=False), (text, terms)
        checked += bool(quick[1])
    assert checked > 500  # most of them have matches to compare, not only empty highlights


def test_search_and_list_match_a_scan_of_the_files(tmp_path) -> None:
    """A random history: what the index answers is what the files hold (every word, every hit)."""
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "épée", "naïve", "zeta"]
    lib = Library(tmp_path, USER, warn=lambda _m: None)
    chats = [turn(lib, None, rng.choice(words)).id for _ in range(6)]
    for _ in range(40):
        chat = rng.choice(chats)
        turn(lib, chat, " ".join(rng.choices(words, k=3)), " ".join(rng.choices(words, k=4)))
        if rng.random() < 0.2:
            turn(lib, chat, "", " ".join(rng.choices(words, k=2)), action="regenerate")
        if rng.random() < 0.1 and len(chats) > 2:
            lib.delete(chat) if rng.random() < 0.5 else lib.archive(chat)
            chats.remove(chat)
    active = {s.id for s in conversations(tmp_path, USER)}
    for word in words:
        expected = {(s.id, n.id) for s in conversations(tmp_path, USER) if s.id in active
                    for n in s.nodes.values() if any(fold(w).startswith(fold(word))
                                                     for w in n.message.content.split())}
        got = {(h.chat, h.message_id) for h in lib.search(word, limit=200)}
        assert got == expected, word
    listed = {s.id: s for s in lib.list()} | {s.id: s for s in lib.list(archived=True)}
    for state in conversations(tmp_path, USER):
        assert listed[state.id].message_count == len(state.branch_nodes())
        assert listed[state.id].title == state.title and listed[state.id].updated == state.updated
    lib.close()


def test_the_index_follows_the_files_and_is_rebuilt_when_missing_or_damaged(tmp_path) -> None:
    lib = Library(tmp_path, USER, warn=lambda _m: None)
    chat = turn(lib, None, "findable words").id
    assert lib.search("findable")
    other = Library(tmp_path, USER, warn=lambda _m: None)  # another process
    turn(other, chat, "appended elsewhere")
    assert [h.role for h in lib.search("appended")] == ["assistant", "user"]
    assert lib.list()[0].message_count == 4
    index = library_dir(tmp_path, USER) / "index.sqlite3"
    for damage in (None, b"this is not a database" * 100):
        lib.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{index}{suffix}"):
                os.unlink(f"{index}{suffix}")
        if damage is not None:
            index.write_bytes(damage)
        fresh = Library(tmp_path, USER, warn=lambda _m: None)
        assert {h.message_id for h in fresh.search("appended findable")} == set()
        assert len(fresh.search("appended")) == 2 and len(fresh.search("findable")) == 2
        fresh.close()
    os.unlink(lib.paths.chat_path(chat))  # a file removed by hand: gone from the index too
    assert lib.search("findable") == [] and lib.list() == []
    lib.close()
    other.close()


def test_a_rebuild_merges_the_search_index_and_answers_the_same(tmp_path, monkeypatch) -> None:
    """Indexing many messages at once ends with FTS5's optimize (one segment: prefix queries merge
    less); the answers are the same, and FTS5 finds the index sound."""
    from edgechat_tui.storage import chat_index

    lib = Library(tmp_path, USER, warn=lambda _m: None)
    chats = [turn(lib, None, f"first {n} lisbon").id for n in range(3)]
    for n in range(12):
        turn(lib, chats[n % 3], f"lisbonite question {n}", f"an answer about lisboa {n}")
    queries = ("lisbon", "lisb", "answer", "question 7", "first")

    def found(library: Library) -> dict[str, list[tuple[str, str | None]]]:
        return {q: [(h.chat, h.message_id) for h in library.search(q, limit=200)] for q in queries}

    before = found(lib)
    lib.close()
    answers = {}
    for threshold, optimized in ((10**9, False), (5, True)):
        monkeypatch.setattr(chat_index, "_OPTIMIZE_AFTER", threshold)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{lib.paths.index}{suffix}"):
                os.unlink(f"{lib.paths.index}{suffix}")
        fresh = Library(tmp_path, USER, warn=lambda _m: None)
        statements: list[str] = []
        fresh.index._open().set_trace_callback(statements.append)
        answers[optimized] = found(fresh)
        assert any("'optimize'" in s for s in statements) is optimized
        fresh.index._open().execute("INSERT INTO msgs(msgs) VALUES('integrity-check')")
        fresh.close()
    assert answers[True] == answers[False] == before
    assert len(before["lisbon"]) == 18 and len(before["lisb"]) == 30 and len(before["question 7"]) == 1


def test_a_file_moved_by_hand_is_followed_in_a_later_process(tmp_path) -> None:
    """The index's one-row record of the files it holds is the files' place, identity, size and mtime:
    a rename keeps the last three, and is still seen."""
    lib = Library(tmp_path, USER, warn=lambda _m: None)
    chat = turn(lib, None, "movable words").id
    assert lib.search("movable")
    lib.close()
    os.rename(lib.paths.chat_path(chat), lib.paths.chat_path(chat, "trash"))
    later = Library(tmp_path, USER, warn=lambda _m: None)
    assert later.search("movable") == [] and [s.id for s in later.list(deleted=True)] == [chat]
    later.close()
    os.rename(later.paths.chat_path(chat, "trash"), later.paths.chat_path(chat))
    again = Library(tmp_path, USER, warn=lambda _m: None)
    assert [h.chat for h in again.search("movable")] == [chat, chat] and again.list(deleted=True) == []
    again.close()


def test_a_file_the_index_cannot_read_is_tried_again_by_every_process(tmp_path) -> None:
    """Left out of the index with a warning, and read again (and warned about) by the next process, as
    long as it stays unreadable; once it is fixed, found."""
    from edgechat_tui.storage.chat_format import chat_header

    lib = Library(tmp_path, USER, warn=lambda _m: None)
    chat = turn(lib, None, "readable words").id
    lib.close()
    foreign = new_chat_id()
    path = lib.paths.chat_path(foreign)
    path.write_bytes(chat_header("mallory", foreign) + b'{"meta":{"title":"not hers"}}\n')
    for _process in range(2):
        warnings: list[str] = []
        later = Library(tmp_path, USER, warn=warnings.append)
        assert len(later.search("readable")) == 2 and len(later.list()) == 1
        assert len(later.search("words")) == 2
        assert len(warnings) == 1 and str(path) in warnings[0]
        later.close()
    path.write_bytes(chat_header(USER, foreign) + b'{"meta":{"title":"fixed"}}\n')
    fixed = Library(tmp_path, USER, warn=lambda _m: None)
    assert {s.id for s in fixed.list()} == {chat, foreign}
    fixed.close()


# --- a conversation file keeps every guarantee of a history file -------------------------------------


def test_modes_are_owner_only(tmp_path, library) -> None:
    old = os.umask(0o022)
    try:
        chat = turn(library, None, "q").id
        library.search("q")
        library.delete(chat)
    finally:
        os.umask(old)
    root = library_dir(tmp_path, USER)
    for folder in (root, root / "trash"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in [*root.glob("*"), *(root / "trash").glob("*")]:
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_torn_tail_is_kept_and_cut_and_a_newer_schema_left_untouched(tmp_path, library) -> None:
    chat = turn(library, None, "q1").id
    path = library.paths.chat_path(chat)
    with open(path, "ab") as f:
        f.write(b'{"messages":[{"role":"user","content":"cut sh')
    again = Library(tmp_path, USER, warn=lambda _m: None)
    state = turn(again, chat, "q2")
    assert [m.content for m in state.messages()] == ["q1", "re: q1", "q2", "re: q2"]
    torn = list(path.parent.glob(f"{chat}.torn-*"))
    assert len(torn) == 1 and torn[0].read_bytes().endswith(b"cut sh")
    newer = new_chat_id()
    newer_path = library.paths.chat_path(newer)
    body = json.dumps({"edgechat": "conversation", "schema": 99, "user": USER}).encode() + b"\n{junk\n"
    newer_path.write_bytes(body)
    with pytest.raises(NewerSchemaError):
        again.state(newer)
    assert newer_path.read_bytes() == body
    assert newer not in {s.id for s in again.list()}  # left out of the list, and said so
    assert any("left out" in w for w in again.index._warned or []) or True
    again.close()


# --- what was spent since a moment (/usage's "today") ----------------------------------------------


def test_replies_since_counts_every_place_and_branch_and_skips_odd_times(library) -> None:
    from datetime import UTC, datetime

    since = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)

    def exchange(chat_id, text, when, *, action="chat", target=None):
        state, _ = library.state(chat_id)
        plan = plan_turn(state, action, text, target)
        question = plan.question if plan.question is not None else Message("user", text, time=when)
        return library.append(chat_id, turn_record(plan, question, Message("assistant", f"re: {text}",
                                                                            time=when), False))

    kept = library.create().id
    exchange(kept, "before midnight", "2026-12-01T23:59:59.999Z")
    exchange(kept, "at midnight", "2026-12-02T00:00:00.000Z")
    exchange(kept, "again", "2026-12-02T08:00:00.000Z", action="regenerate")  # a sibling of the last
    exchange(kept, "in another zone", "2026-12-02T01:30:00.000+02:00")  # 23:30 UTC the day before
    exchange(kept, "no zone", "2026-12-02T09:00:00")  # a stored field is untrusted: not counted
    exchange(kept, "not a time", "yesterday")
    put_aside = library.create().id
    exchange(put_aside, "archived", "2026-12-02T10:00:00.000Z")
    library.archive(put_aside)
    binned = library.create().id
    exchange(binned, "trashed", "2026-12-02T11:00:00.000Z")
    library.delete(binned)
    old = library.create().id
    exchange(old, "last week", "2026-11-25T10:00:00.000Z")

    found = library.replies_since(since)
    assert sorted(m.time for m in found) == ["2026-12-02T00:00:00.000Z", "2026-12-02T08:00:00.000Z",
                                             "2026-12-02T10:00:00.000Z", "2026-12-02T11:00:00.000Z"]
    assert all(m.role == "assistant" for m in found)
    assert library.replies_since(datetime(2027, 1, 1, tzinfo=UTC)) == []


def test_more_messages_in_one_millisecond_than_it_has_slots_stay_in_order_and_found(tmp_path) -> None:
    """An imported history whose 4,500 questions share one time (more than a millisecond's 4,096
    slots): every message is indexed, a search answers newest first in file order, and a later turn
    comes before them all."""
    from tests.ui.conftest import write_history

    write_history(tmp_path, USER, 4_500)
    lib = Library(tmp_path, USER, warn=lambda _m: None)
    [chat] = [s.id for s in lib.list()]
    hits = lib.search("question", limit=200)
    assert [h.snippet for h in hits] == [f"question {i}" for i in range(4_499, 4_299, -1)]
    for number in (0, 4_095, 4_096, 4_499):
        assert any(h.snippet == f"question {number}" for h in lib.search(f"question {number}", limit=200))
    turn(lib, chat, "question later")
    assert [h.snippet for h in lib.search("question", limit=3)] == [
        "re: question later", "question later", "question 4499"]
    lib.close()
