"""The local agent's conversation library end to end: real files, the real client, Workers AI on loopback.

What each turn sends the model (the current branch only), what it stores (siblings, appends), what Done
says (conversation, message id, truncated), titles (first words, then the small model, never over the
user's), and the open conversation (reset, create, open, delete).
"""

from __future__ import annotations

import pytest

from edgechat_tui.backends.local.agent import LocalAgent
from edgechat_tui.backends.local.titles import TITLE_MAX_TOKENS, TITLE_MODEL
from edgechat_tui.core.errors import ConversationConflict, ConversationNotFound, UsageError
from edgechat_tui.core.messages import Done, TextDelta
from tests.fakes.workers_ai import FakeWorkersAI, Reply
from tests.histories import conversations, stored_messages
from tests.test_local_agent import make_settings


@pytest.fixture
def fake():
    with FakeWorkersAI() as server:
        yield server


async def turn(events) -> tuple[str, Done]:
    seen = [event async for event in events]
    assert isinstance(seen[-1], Done)
    return "".join(e.text for e in seen if isinstance(e, TextDelta)), seen[-1]


def sent(fake) -> list[tuple[str, str]]:
    """What the last turn sent the model, without the system prompt."""
    messages = fake.run_requests[-1].body["messages"]
    return [(m["role"], m["content"]) for m in messages if m["role"] != "system"]


async def test_each_action_sends_the_branch_and_stores_the_tree(tmp_path, fake) -> None:
    agent = LocalAgent(make_settings(tmp_path, fake, auto_title="off"), "alice")
    fake.enqueue(Reply("A1"), Reply("A2"), Reply("A2 again"), Reply("E2"),
                 Reply("cut", finish_reason="length"), Reply(" and the rest"))
    _, done = await turn(agent.send("Q1"))
    chat = done.conversation_id
    assert chat and done.message_id and (await agent.conversations.current()).id == chat
    await turn(agent.send("Q2"))
    first_reply = (await agent.conversations.branch())[-1].id
    text, done = await turn(agent.regenerate())
    assert sent(fake) == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2")]  # the question again, once
    assert text == "A2 again" and done.message_count == 4
    branch = await agent.conversations.branch()
    assert branch[-1].siblings == (first_reply, done.message_id) and branch[-1].position == (2, 2)
    text, done = await turn(agent.edit("Q2 edited"))
    assert sent(fake) == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2 edited")]
    assert [m.content for m in stored_messages(tmp_path / "data", "alice")] == ["Q1", "A1", "Q2 edited", "E2"]
    assert branch[2].id in (await agent.conversations.branch())[2].siblings
    _, done = await turn(agent.send("Q3"))
    assert done.truncated and sent(fake)[-1] == ("user", "Q3")
    assert sent(fake)[:4] == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2 edited"), ("assistant", "E2")]
    cut_id = done.message_id
    text, done = await turn(agent.continue_reply())
    assert text == " and the rest" and done.message.content == "cut and the rest"
    assert done.message_id == cut_id
    assert sent(fake)[-2] == ("assistant", "cut") and sent(fake)[-1][0] == "user"  # asked to go on
    assert not done.truncated
    # switching back to the first Q2 shows its newest reply, and the model then sees that branch
    await agent.conversations.switch(branch[2].id)
    assert [m.content for m in await agent.history()] == ["Q1", "A1", "Q2", "A2 again"]
    await turn(agent.send("Q4"))
    assert sent(fake)[:4] == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2"), ("assistant", "A2 again")]
    with pytest.raises(ConversationConflict):
        await turn(agent.continue_reply())  # the last reply is complete
    await agent.aclose()


@pytest.mark.parametrize("style", ["response", "choices"])
async def test_truncated_is_what_the_service_reports(tmp_path, fake, style) -> None:
    settings = make_settings(tmp_path, fake, auto_title="off")
    agent = LocalAgent(settings, "alice")
    at_limit = {"prompt_tokens": 10, "completion_tokens": settings.max_tokens, "total_tokens": 9999}
    fake.enqueue(Reply("cut short", style=style, finish_reason="length"), Reply("whole", style=style),
                 Reply("counted to the limit", usage=at_limit),
                 Reply("under it", usage={"completion_tokens": 3}))
    results = [(await turn(agent.send(text)))[1].truncated for text in ("one", "two", "three", "four")]
    assert results == [True, False, True, False]  # without finish_reason: the usage counted
    branch = await agent.conversations.branch()
    assert [b.truncated for b in branch] == [False, True, False, False, False, True, False, False]
    await agent.aclose()


async def test_a_stopped_reply_can_be_continued_and_an_archived_one_cannot(tmp_path, fake) -> None:
    agent = LocalAgent(make_settings(tmp_path, fake, auto_title="off"), "alice")
    fake.enqueue(Reply("one two three four five six", chunk_size=4, delay=0.05), Reply(" six"))
    events = agent.send("count")
    async for event in events:
        if isinstance(event, TextDelta):
            break
    await events.aclose()
    [_, stopped] = await agent.conversations.branch()
    assert stopped.message.stopped
    _, done = await turn(agent.continue_reply())
    assert done.message.content.endswith(" six") and not done.message.stopped
    chat = done.conversation_id
    await agent.conversations.archive(chat)
    for action in (lambda: agent.send("x"), agent.regenerate, lambda: agent.edit("y")):
        with pytest.raises(ConversationConflict, match="archived"):
            await turn(action())
    requests = len(fake.run_requests)
    await agent.conversations.restore(chat)
    await turn(agent.send("after restore"))
    assert len(fake.run_requests) == requests + 1
    await agent.aclose()


async def test_titles_first_words_then_the_small_model_never_over_the_users(tmp_path, fake) -> None:
    agent = LocalAgent(make_settings(tmp_path, fake), "alice")
    fake.title_queue.append(Reply("Title: \"Lisbon in Spring.\"\n\nextra"))
    _, done = await turn(agent.send("Plan a long weekend trip to Lisbon in spring please"))
    chat = done.conversation_id
    await agent.wait_for_titles()
    [request] = fake.title_requests
    assert request.model == TITLE_MODEL and request.body["max_tokens"] == TITLE_MAX_TOKENS
    assert "Plan a long weekend" in request.body["messages"][-1]["content"]
    assert (await agent.conversations.get(chat)).title == "Lisbon in Spring"
    await turn(agent.send("more"))
    await agent.wait_for_titles()
    assert len(fake.title_requests) == 1  # one title per conversation
    # A user's title is never replaced: renamed while the title call is under way.
    created = await agent.conversations.create()
    fake.title_queue.append(Reply("Model's idea", first_delay=0.3))
    await turn(agent.send("second conversation"))
    assert (await agent.conversations.get(created.id)).title == "second conversation"  # first words at once
    await agent.conversations.rename(created.id, "Mine")
    await agent.wait_for_titles()
    assert len(fake.title_requests) == 2 and (await agent.conversations.get(created.id)).title == "Mine"
    await agent.aclose()


async def test_titles_off_keep_the_first_words_and_ask_nothing(tmp_path, fake) -> None:
    agent = LocalAgent(make_settings(tmp_path, fake, auto_title="off"), "alice")
    _, done = await turn(agent.send("What is the capital of Portugal, and why?"))
    await agent.wait_for_titles()
    assert fake.title_requests == []
    title = (await agent.conversations.get(done.conversation_id)).title
    assert title == "What is the capital of Portugal, and why?"
    await agent.aclose()


async def test_reset_new_open_and_delete_move_the_open_conversation(tmp_path, fake) -> None:
    settings = make_settings(tmp_path, fake, auto_title="off")
    agent = LocalAgent(settings, "alice")
    assert await agent.reset() is None and await agent.history() == []  # nothing to archive
    _, first = await turn(agent.send("first"))
    archived = await agent.reset()
    assert archived == first.conversation_id and await agent.history() == []
    assert (await agent.conversations.get(archived)).archived
    _, second = await turn(agent.send("second"))
    assert second.conversation_id != archived and second.message_count == 2
    assert sent(fake) == [("user", "second")]  # a fresh context: nothing of the archived one
    other = LocalAgent(settings, "alice")  # another process continues the most recent one
    _, done = await turn(other.send("from elsewhere"))
    assert done.conversation_id == second.conversation_id and done.message_count == 4
    await agent.conversations.open(archived)
    assert [m.content for m in await agent.history()] == ["first", "You said: first"]
    with pytest.raises(ConversationNotFound):
        await agent.conversations.open("0123456789abcd")
    await agent.conversations.open(second.conversation_id)
    await agent.conversations.delete(second.conversation_id)
    _, fresh = await turn(agent.send("after the delete"))
    assert fresh.conversation_id not in (archived, second.conversation_id) and fresh.message_count == 2
    assert len(conversations(tmp_path / "data", "alice", place="trash")) == 1
    await agent.aclose()
    await other.aclose()


async def test_the_open_conversation_cannot_change_while_a_reply_streams(tmp_path, fake) -> None:
    agent = LocalAgent(make_settings(tmp_path, fake, auto_title="off"), "alice")
    await turn(agent.send("first"))
    chat = (await agent.conversations.current()).id
    fake.enqueue(Reply("a slow reply in many pieces", chunk_size=2, delay=0.05))
    events = agent.send("slow")
    async for event in events:
        if isinstance(event, TextDelta):
            break
    for change in (agent.conversations.create, lambda: agent.conversations.open(chat),
                   lambda: agent.conversations.delete(chat), lambda: agent.conversations.archive(chat)):
        with pytest.raises(UsageError, match="still coming"):
            await change()
    renamed = await agent.conversations.rename(chat, "Renamed mid-reply")  # a rename does not wait
    assert renamed.title == "Renamed mid-reply"
    await events.aclose()
    await agent.aclose()
