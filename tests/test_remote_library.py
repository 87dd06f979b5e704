"""RemoteAgent's conversation library against the loopback fake (tests/fakes/library_server.py): what a
broken or hostile server can do to it.

Every field of every answer is untrusted: malformed answers, entries with bad ids or types, titles and
snippets carrying escape sequences, line breaks, secrets and huge text, highlight offsets that do not
fit, cut streams and ``error`` events inside library turns, idempotent repeats, and changes refused
while a reply is streaming. The seed-server path is in tests/test_remote_library_seed.py.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.backends.remote.library_data import MAX_SNIPPET_CHARS, clean_snippet
from edgechat_tui.core.errors import (
    ConnectionFailed,
    ConversationConflict,
    ConversationNotFound,
    MessageNotFound,
    NotSupported,
    ProtocolError,
    ServerError,
    UsageError,
)
from edgechat_tui.core.messages import Done, Event, TextDelta
from tests.fakes.agent_server import ScriptedStream, error_answer
from tests.fakes.library_server import LIBRARY_CAPABILITIES, LibraryServer
from tests.fakes.seed_server import Scripted

TOKEN = "tok-LIBRARY-secret-8c2e4a6b"
HOSTILE = ["\x1b]0;pwned\x07", "\x1b[2J\x1b[H", "\x9b31m", "line\nbreak\r\n", "\x1bP+q\x1b\\", "\u202e",
           "\x00\x7f"]


@pytest.fixture
def server() -> Iterator[LibraryServer]:
    with LibraryServer() as fake:
        yield fake


@contextlib.asynccontextmanager
async def agent_of(fake: LibraryServer, user: str = "alice", **kw) -> AsyncIterator[RemoteAgent]:
    async with RemoteAgent(fake.url, user, retry_delay=0.0, **kw) as agent:
        await agent.check()
        yield agent


async def run(events: AsyncIterator[Event]) -> tuple[str, Done]:
    shown, done = [], None
    async for event in events:
        if isinstance(event, TextDelta):
            shown.append(event.text)
        elif isinstance(event, Done):
            done = event
    assert done is not None
    return "".join(shown), done


def is_safe(text: str) -> bool:
    """Nothing a terminal acts on, and one line."""
    return not any(ord(ch) < 32 or 0x7f <= ord(ch) <= 0x9f for ch in text)


# --- the fake speaks the protocol ------------------------------------------------------------------


async def test_the_library_over_the_fake_every_method(server):
    async with agent_of(server) as agent:
        library = agent.conversations
        assert library is not None and await library.list() == []
        _, first = await run(agent.send("hello"))
        made = await library.create("Second")
        assert [s.id for s in await library.list()] == [made.id, first.conversation_id]
        await library.open(first.conversation_id)
        _, regenerated = await run(agent.regenerate())
        assert (await library.branch())[-1].siblings == (first.message_id, regenerated.message_id)
        assert (await library.switch(first.message_id))[-1].position == (1, 2)
        assert (await library.rename(made.id, "Renamed")).title == "Renamed"
        assert (await library.archive(made.id)).archived
        assert not (await library.restore(made.id)).archived
        assert (await library.delete(made.id)).deleted_at is not None
        assert await library.delete(made.id, purge=True) is None
        hits = await library.search("hello")
        assert hits and all(h.chat == first.conversation_id for h in hits)
        await run(agent.send("again"))
        body = [r for r in server.requests if r.path == "/api/chat"][-1].json()
        assert body["conversationId"] == first.conversation_id  # the open conversation, named


# --- hostile and malformed fields ---------------------------------------------------------------------


async def test_every_summary_field_is_checked_and_made_safe(server):
    async with agent_of(server, token=None) as agent:
        library = agent.conversations
        await run(agent.send("hello"))
        good = await library.current()
        rows = server.library("alice").conversations
        for i, hostile in enumerate(HOSTILE):
            row = server.new_conversation(server.library("alice"))
            row["title"] = f"T{i}{hostile}{'x' * 5000}"
            row["created"] = hostile  # not a time
        listed = await library.list()
        assert len(listed) == len(rows)
        for summary in listed:
            assert is_safe(summary.title) and len(summary.title) <= 80
            assert summary.created == "" or summary.id == good.id
            assert len(summary.id) == 14 and summary.message_count >= 0


@pytest.mark.parametrize("entry", [
    {"id": "../../etc/passwd"}, {"id": "01M8SQ52BYJYDM"}, {"id": 12345}, {"id": "01m8sq52byjydmx"},
    {"messageCount": -1}, {"messageCount": True}, {"messageCount": "2"}, {"messageCount": 1.5},
], ids=lambda e: repr(e)[:40])
async def test_a_malformed_entry_is_left_out_of_the_list_not_the_rest(server, entry):
    good = {"id": "01m8sq52byjydm", "title": "fine", "messageCount": 2, "created": "2026-12-01T21:11:14.046Z",
            "updated": "2026-12-01T21:11:14.046Z", "archived": False, "leaf": 2}
    server.script(Scripted.json(200, {"conversations": [{**good, "id": "01m8sq52byjyda"} | entry, good],
                                      "current": None}, route="/api/conversations", method="GET"))
    async with agent_of(server) as agent:
        assert [s.id for s in await agent.conversations.list()] == ["01m8sq52byjydm"]


@pytest.mark.parametrize("answer", [
    Scripted.text(200, "not json"), Scripted.html(200, "Login"), Scripted.json(200, {"conversations": "x"}),
    Scripted.json(200, []), Scripted(status=200, truncate=True, body=b'{"conversations": []}'),
], ids=["text", "html", "not-a-list", "array", "truncated"])
async def test_an_unreadable_list_answer_is_a_protocol_error(server, answer):
    answer.route, answer.method = "/api/conversations", "GET"
    server.script(*[answer] * 4)  # a connection lost mid-answer is read again, up to max_retries
    async with agent_of(server) as agent:
        with pytest.raises(ConnectionFailed if answer.truncate else ProtocolError):
            await agent.conversations.list()
    assert server.count("/api/conversations", "GET") == (4 if answer.truncate else 1)


async def test_one_conversation_answers_are_checked_too(server):
    async with agent_of(server) as agent:
        library = agent.conversations
        made = await library.create()
        other = "01m8sq52byjydm"
        server.script(Scripted.json(200, {"ok": True, "conversation": {"id": other, "messageCount": 0}},
                                    route=f"/api/conversations/{made.id}/rename"))
        with pytest.raises(ProtocolError, match="asked about"):
            await library.rename(made.id, "x")
        server.script(Scripted.json(200, {"ok": True}, route=f"/api/conversations/{made.id}/archive"))
        with pytest.raises(ProtocolError, match="no conversation"):
            await library.archive(made.id)
        await library.delete(made.id)
        server.script(Scripted.json(200, {"ok": True, "purged": other},
                                    route=f"/api/conversations/{made.id}/delete"))
        with pytest.raises(ProtocolError, match="purge"):
            await library.delete(made.id, purge=True)


async def test_search_hits_hostile_snippets_titles_and_offsets(server):
    async with agent_of(server, token=TOKEN) as agent:
        _, done = await run(agent.send("the word lisbon, again lisbon"))
        lib = server.library("alice")
        lib.conversations[done.conversation_id]["title"] = f"\x1b]0;pwned\x07Trip {TOKEN} \n" + "y" * 999
        for m in lib.messages.values():
            m["content"] = "\x1b[31m Lisbon\x1b[0m\nand\tlisbon\x07 " + "z" * 3000
        hits = await agent.conversations.search("lisbon")
    assert len(hits) == 2
    for hit in hits:
        assert is_safe(hit.snippet) and is_safe(hit.title) and len(hit.title) <= 80
        assert len(hit.snippet) <= MAX_SNIPPET_CHARS
        assert hit.title.startswith("Trip") and TOKEN not in hit.title
        assert [hit.snippet[s:e] for s, e in hit.highlights] == ["Lisbon", "lisbon"]


@pytest.mark.parametrize("hit, kept", [
    ({"chat": "nope"}, False), ({"role": "system"}, False), ({"messageId": True}, False),
    ({"messageId": -4}, False), ({"snippet": None}, False), ({"time": "\x1b[2J"}, True),
    ({"highlights": [[0, 999], [-1, 2], ["a", 2], [3, 3], [0, 2, 4], "x", [True, 2]]}, True),
], ids=lambda v: repr(v)[:30])
async def test_a_malformed_hit_is_dropped_and_bad_offsets_are_ignored(server, hit, kept):
    base = {"chat": "01m8sq52byjydm", "title": "t", "role": "user", "time": "2026-12-01T21:11:14.046Z",
            "messageId": 7, "archived": False, "snippet": "a lisbon b", "highlights": [[2, 8]]}
    server.script(Scripted.json(200, {"results": [base | hit]}, route="/api/search", method="GET"))
    async with agent_of(server) as agent:
        hits = await agent.conversations.search("lisbon")
    assert len(hits) == int(kept)
    if kept:
        assert hits[0].highlights == (() if "highlights" in hit else ((2, 8),))
        assert hits[0].time == "" if "time" in hit else True


def test_highlights_follow_their_words_through_cleaning():
    snippet = "\x1b]0;t\x07ab \x1b[1mlisbon\x1b[0m cd\nlisbon"
    start = snippet.index("lisbon")
    second = snippet.rindex("lisbon")
    text, ranges = clean_snippet(snippet, [[start, start + 6], [second, second + 6], [start, start + 2]])
    assert [text[s:e] for s, e in ranges] == ["lisbon", "lisbon"]  # the overlapping third is dropped
    assert is_safe(text) and "\n" not in text


async def test_branch_messages_with_bad_ids_are_left_out(server):
    async with agent_of(server) as agent:
        _, done = await run(agent.send("one"))
        await run(agent.send("two"))
        answer = [
            {"id": 1, "parent": None, "role": "user", "content": "one", "siblings": [1]},
            {"id": "2", "parent": 1, "role": "assistant", "content": "bad id"},
            {"id": 3, "parent": -1, "role": "user", "content": "bad parent"},
            {"id": 4, "parent": 1, "role": "assistant", "content": "odd siblings",
             "siblings": [True, -2, "4", 2, 4, 4], "truncated": "yes"},
            {"id": 5, "parent": 4, "role": "system", "content": "system"},
            {"id": 6, "parent": 4, "role": "user", "content": "not in its siblings", "siblings": [9]},
        ]
        server.script(Scripted.json(200, {"conversationId": done.conversation_id, "messageCount": 6,
                                          "messages": answer, "previous": None},
                                    route="/api/history", method="GET"))
        branch = await agent.conversations.branch()
    assert [m.id for m in branch] == ["1", "4", "6"]
    assert branch[1].siblings == ("2", "4") and branch[1].position == (2, 2) and not branch[1].truncated
    assert branch[2].siblings == ("6",)


async def test_a_done_with_a_malformed_conversation_id_keeps_the_one_sent(server):
    async with agent_of(server) as agent:
        made = await agent.conversations.create()
        server.script(Scripted.json(200, {"message": "hi", "messageCount": 2, "conversationId": "../x",
                                          "messageId": "7"}))
        _, done = await run(agent.send("hello"))
    assert done.conversation_id == made.id and done.message_id is None


# --- turns: faults, repeats, errors -------------------------------------------------------------------


@pytest.mark.parametrize("action", ["regenerate", "edit", "continue"])
async def test_a_cut_library_turn_is_sent_again_and_shown_once(action):
    with LibraryServer(truncate_at=40) as server:
        async with agent_of(server) as agent:
            _, first = await run(agent.send("tell me a story about the sea and the wind"))
            assert first.truncated
            route = f"/api/conversations/{first.conversation_id}/{action}"
            server.script(ScriptedStream(cut_after=2, store=True, route=route))
            turn = {"regenerate": agent.regenerate, "edit": lambda: agent.edit("tell me about hills"),
                    "continue": agent.continue_reply}[action]()
            shown, done = await run(turn)
            keys = [r.headers["idempotency-key"] for r in server.requests if r.path == route]
            branch = await agent.conversations.branch()
    assert len(keys) == 2 and keys[0] == keys[1]  # sent again, with the same key
    assert done.replayed and done.message.stopped  # the stored turn, as it was when the client left
    whole = done.message.content
    expected = whole[len(first.message.content):] if action == "continue" else whole
    assert shown == expected  # nothing shown twice
    assert branch[-1].message.content == done.message.content
    changed = {"regenerate": branch[-1], "edit": branch[-2], "continue": branch[-1]}[action]
    assert len(changed.siblings) == (1 if action == "continue" else 2)


@pytest.mark.parametrize("action", ["regenerate", "edit", "continue"])
async def test_an_error_event_mid_turn_keeps_what_was_shown(action):
    with LibraryServer(truncate_at=40) as server:
        async with agent_of(server) as agent:
            _, first = await run(agent.send("hello there, tell me about the sea"))
            route = f"/api/conversations/{first.conversation_id}/{action}"
            server.script(ScriptedStream(error_event={"error": "gone", "code": "conversation_not_found"},
                                         error_after=2, route=route))
            turn = {"regenerate": agent.regenerate, "edit": lambda: agent.edit("hello there, the hills"),
                    "continue": agent.continue_reply}[action]()
            shown: list[str] = []
            with pytest.raises(ConversationNotFound) as caught:
                async for event in turn:
                    if isinstance(event, TextDelta):
                        shown.append(event.text)
            assert len(await agent.history()) == 2  # nothing stored for the failed turn
    kept = caught.value.kept_partial
    assert kept is not None and kept.stopped and kept.conversation_id == first.conversation_id
    before = first.message.content if action == "continue" else ""
    assert shown and kept.message.content == before + "".join(shown)  # a continue keeps the whole reply


@pytest.mark.parametrize("code, error", [
    ("conflict", ConversationConflict), ("conversation_not_found", ConversationNotFound),
    ("message_not_found", MessageNotFound),
])
async def test_library_refusals_are_their_own_errors_with_hints(server, code, error):
    async with agent_of(server) as agent:
        _, first = await run(agent.send("hello"))
        status = {"conflict": 409}.get(code, 404)
        for route in ("/api/chat", f"/api/conversations/{first.conversation_id}/regenerate"):
            server.script(error_answer(code, "refused \x1b[2J here", status=status, route=route))
            before = len(await agent.history())
            with pytest.raises(error) as caught:
                await run(agent.send("again") if route == "/api/chat" else agent.regenerate())
            assert caught.value.hint and "\x1b" not in str(caught.value)
            assert len(await agent.history()) == before
        assert len([r for r in server.requests if r.path == "/api/chat"]) == 2  # never sent again


async def test_archived_and_purged_conversations_refuse_turns(server):
    async with agent_of(server) as agent:
        library = agent.conversations
        _, first = await run(agent.send("hello"))
        await library.archive(first.conversation_id)
        with pytest.raises(ConversationConflict, match="restore"):
            await run(agent.send("more"))
        with pytest.raises(ConversationConflict):
            await run(agent.regenerate())
        await library.restore(first.conversation_id)
        await library.delete(first.conversation_id)
        _, fresh = await run(agent.send("after the delete"))  # the deleted one is no longer open
        assert fresh.conversation_id != first.conversation_id


async def test_malformed_ids_are_refused_before_anything_is_sent(server):
    async with agent_of(server) as agent:
        library = agent.conversations
        await run(agent.send("hello"))
        sent = len(server.requests)
        for bad in ("", "01M8SQ52BYJYDM", "01m8sq52byjyd", "01m8sq52byjydm/../x", None, 5):
            with pytest.raises(ConversationNotFound):
                await library.get(bad)
            with pytest.raises(ConversationNotFound):
                await library.delete(bad)
        for bad in ("0", "01", "x", "1e3", "-1", " 1", "9" * 30):
            with pytest.raises(MessageNotFound):
                await library.switch(bad)
            with pytest.raises(MessageNotFound):
                await run(agent.regenerate(bad))
        assert len(server.requests) == sent


async def test_changes_wait_while_a_reply_streams_into_the_conversation(server):
    server.delta_delay = 0.05
    async with agent_of(server) as agent:
        library = agent.conversations
        _, first = await run(agent.send("hello"))
        other = await library.create()
        await library.open(first.conversation_id)
        events = agent.send("a longer question with many words in it")
        assert isinstance(await anext(events), TextDelta)
        for change in (library.create(), library.open(other.id), library.switch(first.message_id),
                       library.archive(first.conversation_id), library.delete(first.conversation_id)):
            with pytest.raises(UsageError, match="reply is still coming"):
                await change
        assert (await library.rename(other.id, "fine meanwhile")).title == "fine meanwhile"
        await events.aclose()


async def test_search_needs_its_capability_and_a_query():
    with LibraryServer(capabilities=tuple(c for c in LIBRARY_CAPABILITIES if c != "search")) as server:
        async with agent_of(server) as agent:
            assert agent.conversations is not None
            with pytest.raises(NotSupported, match="search"):
                await agent.conversations.search("x")
    with LibraryServer() as server:
        async with agent_of(server) as agent:
            for query in ("", "  \n", "\x1b[2J", "x" * 501):
                with pytest.raises(UsageError):
                    await agent.conversations.search(query)
            assert not [r for r in server.requests if r.path == "/api/search"]


async def test_no_library_request_carries_or_shows_the_token():
    with LibraryServer(token=TOKEN) as server:
        async with agent_of(server, token=TOKEN) as agent:
            library = agent.conversations
            server.script(error_answer("conflict", f"echo {TOKEN}", status=409, route="/api/conversations",
                                       method="GET"))
            with pytest.raises(ConversationConflict) as caught:
                await library.list()
            assert TOKEN not in str(caught.value) and TOKEN not in repr(library)
            made = await library.create(f"title {TOKEN}")
            assert TOKEN not in made.title
    for request in server.requests:
        assert TOKEN not in json.dumps(dict(request.query)) and (
            request.path == "/" or request.headers["authorization"] == f"Bearer {TOKEN}")


@pytest.mark.parametrize("how", ["trashed", "purged"])
async def test_an_open_conversation_gone_elsewhere_is_closed(server, how):
    async with agent_of(server) as agent:
        library = agent.conversations
        _, first = await run(agent.send("one"))
        other = await library.create()
        await library.open(first.conversation_id)
        rows = server.library("alice").conversations
        if how == "trashed":
            rows[first.conversation_id]["deletedAt"] = "2026-12-01T00:00:00.000Z"
        else:
            del rows[first.conversation_id]
        with pytest.raises(ConversationNotFound):
            await run(agent.send("into the gone one"))  # said, not sent elsewhere
        assert (await library.current()).id == other.id  # the most recent one is open instead
        _, done = await run(agent.send("into the open one"))
    assert done.conversation_id == other.id


async def test_a_paged_history_names_its_conversation_on_every_page():
    with LibraryServer(page_size=3) as server:
        async with agent_of(server) as agent:
            for i in range(5):
                await run(agent.send(f"message {i}"))
            mine = agent._conversation_id
            newer = server.new_conversation(server.library("alice"))  # another client's, now the most recent
            server.add(server.library("alice"), newer, None, "user", "not mine")
            history = await agent.history()
            branch = await agent.conversations.branch()
        pages = [r for r in server.requests if r.path == "/api/history"]
    assert [m.content for m in history if m.role == "user"] == [f"message {i}" for i in range(5)]
    assert [m.message.content for m in branch] == [m.content for m in history] and len(branch) == 10
    assert len(pages) == 8 and all(r.query["conversationId"] == [mine] for r in pages)
    assert sum("before" in r.query for r in pages) == 6


async def test_the_first_history_read_opens_the_most_recent_conversation():
    with LibraryServer(page_size=2) as server:
        lib = server.library("alice")
        older, recent = server.new_conversation(lib), server.new_conversation(lib)
        for row in (older, recent):
            for i in range(3):
                server.add(lib, row, row["leaf"], "user", f"{row['id']} {i}")
        async with agent_of(server) as agent:
            history = await agent.history()
            await run(agent.send("next"))
        pages = [r for r in server.requests if r.path == "/api/history"]
    assert [m.content for m in history] == [f"{recent['id']} {i}" for i in range(3)]
    assert "conversationId" not in pages[0].query and pages[1].query["conversationId"] == [recent["id"]]
    assert server.requests[-1].json()["conversationId"] == recent["id"]


WORD = st.text(alphabet=st.characters(categories=["L", "Nd"]), min_size=1, max_size=12)
NOISE = st.sampled_from([" ", "\n", "\t", "\r\n", "\x1b[31m", "\x1b]0;t\x07", "\x07", "\x9b2J", "\x00",
                         " \x1b[0m "])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(WORD, NOISE, st.booleans()), min_size=1, max_size=20))
def test_every_highlight_still_marks_its_word_after_cleaning(parts):
    snippet, ranges, words = "", [], []
    for word, noise, marked in parts:
        if marked:
            ranges.append([len(snippet), len(snippet) + len(word)])
            words.append(word)
        snippet += word + noise
    text, kept = clean_snippet(snippet, ranges)
    assert is_safe(text)
    assert [text[s:e] for s, e in kept] == words[: len(kept)]
    assert len(kept) == len(words) or len(text) >= MAX_SNIPPET_CHARS - 1


async def test_library_requests_are_sent_again_only_when_that_is_safe(server):
    async with agent_of(server) as agent:
        library = agent.conversations
        made = await library.create()
        # Not processed (429, 503), or a read: sent again.
        server.script(error_answer("rate_limited", retry_after=0, route="/api/conversations", method="GET"),
                      Scripted(status=503, body=b"", route="/api/conversations", method="GET"),
                      Scripted(drop=True, route="/api/conversations", method="GET"))
        assert [s.id for s in await library.list()] == [made.id]
        assert server.count("/api/conversations", "GET") == 4
        # A rename done twice is done once: sent again after a lost answer.
        server.script(Scripted(drop=True, route=f"/api/conversations/{made.id}/rename"))
        assert (await library.rename(made.id, "twice is once")).title == "twice is once"
        assert server.count(f"/api/conversations/{made.id}/rename") == 2
        # A create is not: the lost answer is reported, and nothing is made twice.
        server.script(Scripted(drop=True, route="/api/conversations"))
        with pytest.raises(ConnectionFailed):
            await library.create()
        assert server.count("/api/conversations") == 2
        # Nor is a purge, nor a refusal: each is said at once.
        await library.delete(made.id)
        server.script(Scripted(drop=True, route=f"/api/conversations/{made.id}/delete"))
        with pytest.raises(ConnectionFailed):
            await library.delete(made.id, purge=True)
        server.script(error_answer("conflict", status=409, route="/api/conversations", method="GET"))
        with pytest.raises(ConversationConflict):
            await library.list()
        assert server.count(f"/api/conversations/{made.id}/delete") == 2
        assert server.count("/api/conversations", "GET") == 5


async def test_library_retries_stop_at_max_retries(server):
    async with agent_of(server, max_retries=2) as agent:
        server.script(*[Scripted(status=503, body=b"", route="/api/search", method="GET")] * 4)
        with pytest.raises(ServerError):
            await agent.conversations.search("anything")
        assert server.count("/api/search", "GET") == 3
