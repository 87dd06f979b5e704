"""End to end: the conversation library of RemoteAgent against our Worker running in workerd.

Every route of the ``conversations`` and ``search`` extensions through the Python client: list, create,
open, rename, archive, restore, delete to the trash and purge, history per conversation, chat into the
open conversation, regenerate, edit, switch branches, continue, search, and users who never see each
other's conversations (by user id in mode ``none``, by credential in mode ``user-tokens``). Library
turns also go through a proxy that cuts connections at random: each is stored at most once, and the
text shown is the reply, never part of it twice.

The Worker runs as in tests/test_worker_e2e.py (real workerd and SQLite, the Workers AI stub answering
'You said "<message>". …'; ``[[vary]]`` makes each reply end with its call number, ``[[words N]]`` makes
it N words long, cut at max_tokens).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.errors import (
    AuthError,
    ConversationConflict,
    ConversationNotFound,
    EdgechatError,
    MessageNotFound,
    UsageError,
)
from edgechat_tui.core.messages import Done, Event, TextDelta
from tests.fakes.cutting_proxy import CuttingProxy
from tests.test_worker_e2e import NODE, WORKER, WorkerProcess

SIGNING_KEY = "e2e-library-signing-key-5d1e9c0b7a3f"


@pytest.fixture(scope="module")
def worker() -> Iterator[str]:
    server = WorkerProcess("--var", "AUTO_TITLES=on")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def short_worker() -> Iterator[str]:
    """Replies cut at 16 tokens: every long reply is ``truncated``, for continue."""
    server = WorkerProcess("--var", "MAX_TOKENS=16")
    try:
        yield server.url
    finally:
        server.stop()


class JsonOnly(httpx.AsyncBaseTransport):
    """A transport that asks for JSON only: the turn's answer comes whole, not as a stream."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "text/event-stream" in request.headers.get("accept", ""):
            request.headers["accept"] = "application/json"
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def run(events: AsyncIterator[Event]) -> tuple[str, Done]:
    """The text shown and the Done of a turn."""
    shown: list[str] = []
    done: Done | None = None
    async for event in events:
        if isinstance(event, TextDelta):
            shown.append(event.text)
        elif isinstance(event, Done):
            done = event
    assert done is not None
    return "".join(shown), done


def agent_for(url: str, user: str, *, json_only: bool = False, **kw) -> RemoteAgent:
    return RemoteAgent(url, user, transport=JsonOnly() if json_only else None, **kw)


# --- the list and each conversation's life ------------------------------------------------------------


async def test_list_create_rename_archive_restore_delete_purge(worker):
    async with agent_for(worker, "lib-life") as agent:
        await agent.check()
        library = agent.conversations
        assert library is not None
        assert await library.list() == [] and await library.current() is None

        _, first = await run(agent.send("planning a trip to Lisbon"))
        assert first.conversation_id and first.message_id and first.message_count == 2
        current = await library.current()
        assert current is not None and current.id == first.conversation_id
        assert current.title == "planning a trip to Lisbon" and current.message_count == 2

        second = await library.create("Groceries")
        assert (second.title, second.message_count, second.archived) == ("Groceries", 0, False)
        assert (await library.current()).id == second.id  # a new conversation is the open one
        assert [s.id for s in await library.list()] == [second.id, first.conversation_id]

        renamed = await library.rename(first.conversation_id, "Lisbon\x1b]0;pwned\x07 in\nMay")
        assert renamed.title.startswith("Lisbon") and renamed.title.endswith("in May")
        assert not any(ch in renamed.title for ch in "\x1b\x07\n")
        assert (await library.get(first.conversation_id)).title == renamed.title

        archived = await library.archive(first.conversation_id)
        assert archived.archived
        assert [s.id for s in await library.list()] == [second.id]
        assert [s.id for s in await library.list(archived=True)] == [first.conversation_id]
        await library.open(first.conversation_id)  # an archived one opens to read ...
        with pytest.raises(ConversationConflict):  # ... but takes no message until restored
            await run(agent.send("more about Lisbon"))
        assert len(await agent.history()) == 2  # nothing was stored
        assert not (await library.restore(first.conversation_id)).archived

        trashed = await library.delete(second.id)
        assert trashed is not None and trashed.deleted_at and trashed.purge_at
        assert [s.id for s in await library.list()] == [first.conversation_id]
        assert [s.id for s in await library.list(deleted=True)] == [second.id]
        with pytest.raises(ConversationConflict, match="trash"):
            await library.open(second.id)
        assert (await library.restore(second.id)).deleted_at is None
        await library.delete(second.id)
        assert await library.delete(second.id, purge=True) is None
        with pytest.raises(ConversationNotFound):
            await library.get(second.id)
        assert await library.list(deleted=True) == []


async def test_unknown_and_malformed_ids_are_clear_errors(worker):
    async with agent_for(worker, "lib-ids") as agent:
        await agent.check()
        library = agent.conversations
        for method in (library.get, library.open, library.archive, library.restore, library.delete):
            with pytest.raises(ConversationNotFound, match="no such conversation"):
                await method("01m8sq52byjydm")  # well formed, unknown
            with pytest.raises(ConversationNotFound, match="not a conversation id"):
                await method("../../etc/passwd")
        with pytest.raises(ConversationNotFound):
            await library.rename("01m8sq52byjydm", "x")
        await run(agent.send("hello"))
        for bad in ("0", "-3", "abc", "1.5", "", "٣"):
            with pytest.raises(MessageNotFound, match="not a message id"):
                await library.switch(bad)
        with pytest.raises(MessageNotFound, match="no such message"):
            await library.switch("999999")
        with pytest.raises(MessageNotFound):
            await run(agent.regenerate("999999"))
        with pytest.raises(UsageError):
            await library.rename((await library.current()).id, "\x1b[31m\x07  ")


async def test_history_and_chat_follow_the_open_conversation(worker):
    async with agent_for(worker, "lib-open") as agent:
        await agent.check()
        library = agent.conversations
        _, a = await run(agent.send("alpha one"))
        b = await library.create()
        _, into_b = await run(agent.send("bravo one"))
        assert into_b.conversation_id == b.id and into_b.message_count == 2
        assert "This is the first message" in into_b.message.content  # b's context only

        await library.open(a.conversation_id)
        assert (await agent.history())[0].content == "alpha one"
        await library.create()  # now the most recent, but a is opened again below
        await library.open(a.conversation_id)
        _, again = await run(agent.send("alpha two"))
        assert again.conversation_id == a.conversation_id and again.message_count == 4
        assert 'the first was "alpha one"' in again.message.content
        assert [m.content for m in await agent.history() if m.role == "user"] == ["alpha one", "alpha two"]
        branch = await library.branch()
        assert [m.message.content for m in branch] == [m.content for m in await agent.history()]
        assert [m.parent for m in branch] == [None, *(m.id for m in branch[:-1])]
        await library.create()

    # A new agent (another run of edgechat) opens the most recent conversation.
    async with agent_for(worker, "lib-open") as fresh:
        await fresh.check()
        history = await fresh.history()
        assert history == [] and (await fresh.conversations.current()).message_count == 0


@pytest.mark.parametrize("json_only", [False, True], ids=["stream", "json"])
async def test_regenerate_edit_and_switch_branches(worker, json_only):
    async with agent_for(worker, f"lib-branch-{int(json_only)}", json_only=json_only) as agent:
        await agent.check()
        library = agent.conversations
        _, first = await run(agent.send("name a colour [[vary]]"))
        shown, second = await run(agent.regenerate())
        assert shown == second.message.content != first.message.content
        assert second.message_count == 2 and second.conversation_id == first.conversation_id
        branch = await library.branch()
        reply = branch[-1]
        assert reply.id == second.message_id and reply.siblings == (first.message_id, second.message_id)
        assert reply.position == (2, 2) and reply.message.content == second.message.content

        switched = await library.switch(first.message_id)
        assert switched[-1].id == first.message_id and switched[-1].position == (1, 2)
        assert switched[-1].message.content == first.message.content
        _, third = await run(agent.regenerate(second.message_id))  # a sibling of a reply not on the branch
        assert [m.id for m in await library.branch()][-1] == third.message_id
        assert len((await library.branch())[-1].siblings) == 3

        shown, edited = await run(agent.edit("name a fruit"))
        assert shown == edited.message.content and 'You said "name a fruit"' in shown
        assert "This is the first message" in shown  # the model saw the edited question alone
        branch = await library.branch()
        question = branch[0]
        assert question.message.content == "name a fruit" and question.position == (2, 2)
        await library.switch(question.siblings[0])  # back to the first question's branch
        assert (await library.branch())[0].message.content == "name a colour [[vary]]"
        assert (await agent.history())[0].content == "name a colour [[vary]]"


@pytest.mark.parametrize("json_only", [False, True], ids=["stream", "json"])
async def test_continue_appends_to_a_truncated_reply(short_worker, json_only):
    async with agent_for(short_worker, f"lib-cont-{int(json_only)}", json_only=json_only) as agent:
        await agent.check()
        library = agent.conversations
        with pytest.raises(ConversationConflict):
            await run(agent.continue_reply())  # nothing yet
        shown, cut = await run(agent.send("tell a story [[words 60]]"))
        assert cut.truncated and shown == cut.message.content
        added, more = await run(agent.continue_reply())
        assert added and more.message.content == cut.message.content + added  # the deltas: the new text
        assert more.message_id == cut.message_id and more.message_count == 2
        branch = await library.branch()
        assert len(branch) == 2 and branch[-1].message.content == more.message.content
        assert branch[-1].truncated == more.truncated


async def test_search_newest_first_highlights_archived_in_trash_out(worker):
    async with agent_for(worker, "lib-search") as agent:
        await agent.check()
        library = agent.conversations
        _, a = await run(agent.send("the Lisbon trip and pastéis de nata"))
        await library.create()
        _, b = await run(agent.send("we ate at a CAFÉ in lisbon \x1b]0;pwned\x07 again"))
        await library.create()
        _, c = await run(agent.send("lisbon once more, in the trash"))
        await library.delete(c.conversation_id)
        await library.archive(a.conversation_id)

        hits = await library.search("lisbon")
        assert [h.chat for h in hits if h.role == "user"] == [b.conversation_id, a.conversation_id]
        assert all(h.chat != c.conversation_id for h in hits)
        assert [h.archived for h in hits if h.role == "user"] == [False, True]
        for hit in hits:
            assert hit.highlights and "\x1b" not in hit.snippet and "\x07" not in hit.snippet
            for start, end in hit.highlights:
                assert hit.snippet[start:end].lower().startswith("lisbon")
            assert hit.message_id is not None and hit.time
        cafe = await library.search("cafe lisb")
        assert [h.chat for h in cafe if h.role == "user"] == [b.conversation_id]
        words = {cafe[0].snippet[s:e].lower() for s, e in cafe[0].highlights}
        assert {"café", "lisbon"} <= words
        assert len(await library.search("lisbon", limit=1)) == 1
        with pytest.raises(UsageError):
            await library.search("   ")
        # A hit opens its conversation at its message.
        await library.open(hits[-1].chat)
        assert any(m.id == hits[-1].message_id for m in await library.branch())


async def test_reset_archives_and_opens_a_new_conversation(worker):
    async with agent_for(worker, "lib-reset") as agent:
        await agent.check()
        _, done = await run(agent.send("before the reset"))
        archived = await agent.reset()
        assert archived == done.conversation_id
        current = await agent.conversations.current()
        assert current is not None and current.id != done.conversation_id and current.message_count == 0
        assert [s.id for s in await agent.conversations.list(archived=True)] == [done.conversation_id]
        _, after = await run(agent.send("after the reset"))
        assert after.conversation_id == current.id and after.message_count == 2


# --- users apart ----------------------------------------------------------------------------------


async def test_two_users_never_see_each_others_conversations(worker):
    async with agent_for(worker, "lib-alice") as alice, agent_for(worker, "lib-bob") as bob:
        await alice.check()
        await bob.check()
        _, mine = await run(alice.send("alice's secret plan about zeppelins"))
        await run(bob.send("bob's own words"))
        theirs = bob.conversations
        assert mine.conversation_id not in [s.id for s in await theirs.list()]
        assert await theirs.search("zeppelins") == []
        for attempt in (theirs.get, theirs.open, theirs.archive, theirs.delete, theirs.restore):
            with pytest.raises(ConversationNotFound):
                await attempt(mine.conversation_id)
        with pytest.raises(ConversationNotFound):
            await theirs.rename(mine.conversation_id, "taken")
        summary = await alice.conversations.get(mine.conversation_id)
        assert summary.title.startswith("alice's secret plan") and not summary.archived
        assert {h.chat for h in await alice.conversations.search("zeppelins")} == {mine.conversation_id}


def mint(user: str) -> str:
    done = subprocess.run([NODE, "scripts/mint-token.mjs", "--user", user, "--days", "1"], cwd=WORKER,
                          env={**os.environ, "EDGECHAT_SIGNING_KEY": SIGNING_KEY},
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip().splitlines()[-1]


async def test_a_credential_reaches_its_own_users_conversations_only():
    server = WorkerProcess("--var", f"EDGECHAT_SIGNING_KEY={SIGNING_KEY}")
    try:
        async with RemoteAgent(server.url, "default", token=mint("alice"), user_given=False) as alice, \
                RemoteAgent(server.url, "default", token=mint("mallory"), user_given=False) as mallory:
            await alice.check()
            await mallory.check()
            assert (alice.user, mallory.user) == ("alice", "mallory")
            _, mine = await run(alice.send("alice only"))
            with pytest.raises(ConversationNotFound):
                await mallory.conversations.get(mine.conversation_id)
            await mallory.conversations.create()
            assert mine.conversation_id not in [s.id for s in await mallory.conversations.list()]
            mallory._user = "alice"  # naming her is refused outright
            with pytest.raises(AuthError, match="another user's"):
                await mallory.conversations.list()
            assert (await alice.conversations.get(mine.conversation_id)).message_count == 2
    finally:
        server.stop()


# --- library turns through connections cut at random ----------------------------------------------


async def test_library_turns_through_random_cuts_are_stored_once(short_worker):
    upstream = urlsplit(short_worker)
    async with CuttingProxy((upstream.hostname or "127.0.0.1", upstream.port or 80), seed=11,
                            cut_share=0.5) as proxy:
        async with agent_for(proxy.url, "lib-cuts", retry_delay=0.01, max_retries=8) as agent, \
                agent_for(short_worker, "lib-cuts") as direct:
            for _ in range(20):  # the setup itself may be cut: the health check is not retried
                try:
                    await agent.check()
                    await run(agent.send("a long story [[words 400]] [[vary]]"))
                    break
                except EdgechatError:
                    continue
            await direct.check()  # reads the stored reply past the proxy, to compare with what was shown
            ok = failed = continued = 0
            for _ in range(24):
                try:
                    shown, done = await run(agent.regenerate())
                except EdgechatError:
                    failed += 1
                    continue
                ok += 1
                assert shown == done.message.content  # nothing shown twice, nothing missing
            for _ in range(12):
                before = (await direct.conversations.branch())[-1].message.content
                try:
                    shown, done = await run(agent.continue_reply())
                except EdgechatError:
                    continue
                continued += 1
                assert done.message.content == before + shown
            siblings = (await direct.conversations.branch())[-1].siblings
        cuts = proxy.counts.cut_requests + proxy.counts.cut_answers
    # Every regeneration reported done is stored once; one reported failed may be stored or not.
    assert ok >= 12 and 1 + ok <= len(siblings) <= 1 + ok + failed
    assert continued >= 10 and cuts >= 10
    print(f"library turns through cuts: {ok} regenerated, {failed} failed, {continued} continued, "
          f"{cuts} connections cut, {len(siblings)} replies stored")
