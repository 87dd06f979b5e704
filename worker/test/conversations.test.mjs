// The conversation library (docs/protocol.md, `conversations`): many conversations per user, each a
// tree of messages with a current branch; regenerate, edit, switch and continue; titles; the trash.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startAgent } from "../scripts/harness.mjs";
import { api, chat, chatStream, history, post, reset } from "./helpers.mjs";

const TITLE_MODEL = "@cf/meta/llama-3.1-8b-instruct-fast";
let agent;
const requests = [];
/** A test may hold the title calls (or the chat calls) here until it has looked. */
let titleGate = null;
let chatGate = null;
before(async () => {
  agent = await startAgent({
    vars: { AUTO_TITLES: "on" },
    record: async (r) => {
      requests.push(r);
      if (r.model === TITLE_MODEL && titleGate) await titleGate;
      if (r.model !== TITLE_MODEL && chatGate) await chatGate.held(r);
    },
  });
});
after(async () => {
  await agent?.dispose();
});

const q = (userId) => `userId=${encodeURIComponent(userId)}`;
const list = (target, userId, extra = "") => api(target, "GET", `/api/conversations?${q(userId)}${extra}`);
const create = (target, userId, body = {}) => api(target, "POST", "/api/conversations", { userId, ...body });
const act = (target, userId, id, action, body = {}, headers = {}) =>
  api(target, "POST", `/api/conversations/${id}/${action}`, { userId, ...body }, headers);
const say = (target, userId, message, conversationId, headers = {}) =>
  api(target, "POST", "/api/chat", { userId, message, ...(conversationId ? { conversationId } : {}) }, headers);
const branch = (target, userId, id, extra = "") => api(target, "GET", `/api/history?${q(userId)}&conversationId=${id}${extra}`);
/** The model requests for chat turns (not titles). */
const chatCalls = () => requests.filter((r) => r.model !== TITLE_MODEL);
const contents = (messages) => messages.map((m) => m.content);

describe("conversations: list, create, rename, archive, restore, delete", () => {
  it("keeps many conversations, newest activity first, with the documented fields", async () => {
    const user = "librarian";
    const a = await say(agent, user, "first conversation");
    assert.equal(a.status, 200);
    assert.match(a.body.conversationId, /^[0-9a-hjkmnp-tv-z]{14}$/);
    const b = await create(agent, user);
    assert.equal(b.status, 200);
    const bid = b.body.conversation.id;
    assert.deepEqual(Object.keys(b.body.conversation).sort(), ["archived", "created", "id", "leaf", "messageCount", "title", "updated"]);
    assert.equal(b.body.conversation.messageCount, 0);
    assert.ok(bid > a.body.conversationId, "ids sort by creation");
    // A chat without conversationId goes to the most recent conversation: the new one.
    const inB = await say(agent, user, "second conversation");
    assert.equal(inB.body.conversationId, bid);
    assert.equal(inB.body.messageCount, 2);
    assert.match(inB.body.message, /This is the first message I have from you/);
    // Naming the first one goes there, and makes it the most recent.
    const inA = await say(agent, user, "back to the first", a.body.conversationId);
    assert.equal(inA.body.messageCount, 4);
    const listed = await list(agent, user);
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.conversations.map((c) => c.id), [a.body.conversationId, bid]);
    assert.equal(listed.body.current, a.body.conversationId);
    for (const c of listed.body.conversations) {
      assert.equal(typeof c.title, "string");
      assert.ok(!Number.isNaN(Date.parse(c.created)) && !Number.isNaN(Date.parse(c.updated)));
      assert.equal(c.archived, false);
    }
    assert.deepEqual(listed.body.conversations.map((c) => c.messageCount), [4, 2]);
    const one = await api(agent, "GET", `/api/conversations/${bid}?${q(user)}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.conversation.messageCount, 2);
  });

  it("renames (cleaned to one line), archives, restores, trashes and purges", async () => {
    const user = "curator";
    const { body } = await say(agent, user, "something to keep");
    const id = body.conversationId;
    const renamed = await act(agent, user, id, "rename", { title: "  A\tnew\n\u0007title\u202e <b>x</b>  " });
    assert.equal(renamed.status, 200);
    assert.equal(renamed.body.conversation.title, "A new title <b>x</b>");
    const long = await act(agent, user, id, "rename", { title: "word ".repeat(100) });
    assert.ok([...long.body.conversation.title].length <= 80);
    assert.ok(long.body.conversation.title.endsWith("…"));
    for (const title of ["", "   ", "\u0000\u0001", 42, null]) {
      const bad = await act(agent, user, id, "rename", { title });
      assert.equal(bad.status, 400, JSON.stringify(title));
      assert.equal(bad.body.code, "bad_request");
    }

    const archived = await act(agent, user, id, "archive");
    assert.equal(archived.body.conversation.archived, true);
    assert.deepEqual((await list(agent, user)).body.conversations, []);
    assert.deepEqual((await list(agent, user, "&archived=1")).body.conversations.map((c) => c.id), [id]);
    // An archived conversation is read, not written: 409 until restored.
    const refused = await say(agent, user, "more", id);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.code, "conflict");
    assert.equal((await branch(agent, user, id)).body.messageCount, 2);
    // A chat without an id starts a new conversation rather than writing into the archive.
    const fresh = await say(agent, user, "a new one");
    assert.notEqual(fresh.body.conversationId, id);
    const restored = await act(agent, user, id, "restore");
    assert.equal(restored.body.conversation.archived, false);

    // Delete: into the trash, restorable, then purged for good.
    const trashed = await act(agent, user, id, "delete");
    assert.equal(trashed.status, 200);
    assert.equal(typeof trashed.body.conversation.deletedAt, "string");
    const purgeAt = Date.parse(trashed.body.conversation.purgeAt) - Date.parse(trashed.body.conversation.deletedAt);
    assert.equal(purgeAt, 30 * 86_400_000);
    assert.ok(!(await list(agent, user)).body.conversations.some((c) => c.id === id));
    assert.deepEqual((await list(agent, user, "&deleted=1")).body.conversations.map((c) => c.id), [id]);
    assert.equal((await branch(agent, user, id)).body.code, "conversation_not_found");
    assert.equal((await say(agent, user, "into the trash?", id)).status, 404);
    assert.equal((await act(agent, user, id, "restore")).body.conversation.archived, false);
    assert.equal((await branch(agent, user, id)).body.messageCount, 2);
    // Purge needs the trash first.
    const early = await act(agent, user, id, "delete", { purge: true });
    assert.equal(early.status, 409);
    assert.equal(early.body.code, "conflict");
    await act(agent, user, id, "delete");
    const purged = await act(agent, user, id, "delete", { purge: true });
    assert.deepEqual(purged.body, { ok: true, purged: id });
    for (const action of ["restore", "archive", "rename", "delete"]) {
      const gone = await act(agent, user, id, action, { title: "x" });
      assert.equal(gone.status, 404, action);
      assert.equal(gone.body.code, "conversation_not_found", action);
    }
    assert.equal((await list(agent, user, "&deleted=1")).body.conversations.length, 0);
  });

  it("purges the trash after TRASH_DAYS", async () => {
    const short = await startAgent({ vars: { TRASH_DAYS: "0" } });
    try {
      const { body } = await say(short, "brief", "gone soon");
      await act(short, "brief", body.conversationId, "delete");
      await sleep(5);
      assert.deepEqual((await list(short, "brief", "&deleted=1")).body.conversations, []);
      assert.equal((await act(short, "brief", body.conversationId, "restore")).status, 404);
    } finally {
      await short.dispose();
    }
  });

  it("refuses malformed ids, parameters and routes with stable codes", async () => {
    const user = "strict";
    const { body } = await say(agent, user, "hello");
    const id = body.conversationId;
    for (const bad of ["x", "01M8SQ52BYJYDM", "01m8sq52byjydi", "01m8sq52byjydm0", "..%2F..", "%00"]) {
      const res = await act(agent, user, bad, "archive");
      assert.equal(res.status, 400, bad);
      assert.equal(res.body.code, "bad_request", bad);
      const chatted = await say(agent, user, "hi", bad);
      assert.equal(chatted.status, 400, bad);
      assert.equal((await api(agent, "GET", `/api/history?${q(user)}&conversationId=${bad}`)).status, 400, bad);
    }
    const unknown = "01m8sq52byjydm";
    assert.equal((await say(agent, user, "hi", unknown)).body.code, "conversation_not_found");
    assert.equal((await api(agent, "GET", `/api/conversations/${unknown}?${q(user)}`)).status, 404);
    assert.equal((await act(agent, user, id, "frobnicate")).body.code, "not_found");
    assert.equal((await list(agent, user, "&archived=yes")).status, 400);
    assert.equal((await list(agent, user, "&archived=1&deleted=1")).status, 400);
    for (const messageId of [0, -1, 1.5, "1", null]) {
      assert.equal((await act(agent, user, id, "switch", { messageId })).status, 400, JSON.stringify(messageId));
    }
    const notHere = await act(agent, user, id, "switch", { messageId: 999999 });
    assert.equal(notHere.status, 404);
    assert.equal(notHere.body.code, "message_not_found");
    assert.equal((await act(agent, user, id, "delete", { purge: "yes" })).status, 400);
    const notJson = await post(agent, `/api/conversations/${id}/archive`, "{not json");
    assert.equal(notJson.status, 400);
    // A body past the cap is refused before it is read whole.
    const huge = await act(agent, user, id, "rename", { title: "x".repeat(5 * 1024 * 1024) });
    assert.equal(huge.status, 413);
    assert.equal(huge.body.code, "request_too_large");
  });
});

describe("branches", () => {
  it("regenerating twice makes three sibling replies; switching back shows the first; the model sees the current branch only", async () => {
    const user = "brancher";
    await say(agent, user, "tell me about cats");
    const two = await say(agent, user, "and dogs? [[vary]]");
    const id = two.body.conversationId;
    const firstReply = two.body.messageId;
    requests.length = 0;
    const r2 = await act(agent, user, id, "regenerate");
    assert.equal(r2.status, 200, JSON.stringify(r2.body));
    const r3 = await act(agent, user, id, "regenerate");
    assert.equal(r3.body.messageCount, 4, "a regenerated reply replaces the last one on the branch");
    assert.equal(r3.body.userMessageId, null, "no new user message");
    // What the model was sent: the system prompt, the first exchange, the question again; not the old replies.
    for (const call of chatCalls()) {
      assert.deepEqual(call.inputs.messages.map((m) => m.role), ["system", "user", "assistant", "user"]);
      assert.equal(call.inputs.messages[3].content, "and dogs? [[vary]]");
    }
    const shown = await branch(agent, user, id);
    assert.equal(shown.body.messageCount, 4);
    const last = shown.body.messages.at(-1);
    assert.equal(last.id, r3.body.messageId);
    assert.deepEqual(last.siblings, [firstReply, r2.body.messageId, r3.body.messageId]);
    assert.equal(last.parent, shown.body.messages[2].id);
    assert.deepEqual(shown.body.messages[0].siblings, [shown.body.messages[0].id]);
    assert.equal(shown.body.messages[0].parent, null);

    const back = await act(agent, user, id, "switch", { messageId: firstReply });
    assert.equal(back.status, 200);
    assert.equal(back.body.conversation.leaf, firstReply);
    const again = await branch(agent, user, id);
    assert.equal(again.body.messages.at(-1).id, firstReply);
    assert.equal(again.body.messages.at(-1).content, two.body.message);
    assert.deepEqual(again.body.messages.at(-1).siblings, last.siblings);

    // A new message continues the branch shown; the model gets that branch, not the others.
    requests.length = 0;
    const next = await say(agent, user, "and birds?", id);
    assert.equal(next.body.messageCount, 6);
    const sent = chatCalls()[0].inputs.messages;
    assert.deepEqual(contents(sent.slice(1)), ["tell me about cats", shown.body.messages[1].content, "and dogs? [[vary]]", two.body.message, "and birds?"]);
    assert.equal(new Set([two.body.message, r2.body.message, r3.body.message]).size, 3, "three different replies");
    assert.ok(!sent.some((m) => m.content === r3.body.message || m.content === r2.body.message));
    // Switching to a sibling with descendants shows its newest leaf.
    await act(agent, user, id, "switch", { messageId: r2.body.messageId });
    assert.equal((await branch(agent, user, id)).body.messages.at(-1).id, r2.body.messageId);
    await act(agent, user, id, "switch", { messageId: shown.body.messages[0].id });
    assert.equal((await branch(agent, user, id)).body.messages.at(-1).id, r3.body.messageId, "the newest child at each step");
    await act(agent, user, id, "switch", { messageId: firstReply });
    assert.equal((await branch(agent, user, id)).body.messages.at(-1).id, next.body.messageId, "down to the newest leaf below");
  });

  it("edit makes a sibling of the last question with its own reply; the old branch is kept", async () => {
    const user = "editor";
    await say(agent, user, "my name is Ada");
    const first = await say(agent, user, "what is my nmae?");
    const id = first.body.conversationId;
    requests.length = 0;
    const edited = await act(agent, user, id, "edit", { message: "what is my name?" });
    assert.equal(edited.status, 200, JSON.stringify(edited.body));
    assert.equal(edited.body.messageCount, 4);
    assert.equal(typeof edited.body.userMessageId, "number");
    const sent = contents(chatCalls()[0].inputs.messages.slice(1));
    assert.equal(sent.length, 3);
    assert.equal(sent[0], "my name is Ada");
    assert.equal(sent[2], "what is my name?");
    assert.ok(!sent.includes("what is my nmae?"));
    const shown = await branch(agent, user, id);
    const question = shown.body.messages[2];
    assert.equal(question.content, "what is my name?");
    assert.equal(question.siblings.length, 2);
    assert.equal(question.siblings[1], edited.body.userMessageId);
    // Editing the first message makes a second root: a whole new branch of the conversation.
    const root = await act(agent, user, id, "edit", { message: "my name is Grace", messageId: shown.body.messages[0].id });
    assert.equal(root.body.messageCount, 2);
    const roots = (await branch(agent, user, id)).body.messages;
    assert.equal(roots.length, 2);
    assert.equal(roots[0].parent, null);
    assert.equal(roots[0].siblings.length, 2);
    // An assistant message cannot be edited, nor a reply regenerated from a user message id.
    assert.equal((await act(agent, user, id, "edit", { message: "x", messageId: roots[1].id })).status, 400);
    assert.equal((await act(agent, user, id, "regenerate", { messageId: roots[0].id })).status, 400);
    // Nothing to edit or regenerate in an empty conversation: 409.
    const empty = (await create(agent, user)).body.conversation.id;
    assert.equal((await act(agent, user, empty, "edit", { message: "x" })).body.code, "conflict");
    assert.equal((await act(agent, user, empty, "regenerate")).body.code, "conflict");
    assert.equal((await act(agent, user, empty, "continue")).body.code, "conflict");
  });

  it("regenerate and edit stream like chat, and an Idempotency-Key stores them once", async () => {
    const user = "streamer-branches";
    const { body } = await say(agent, user, "a question");
    const id = body.conversationId;
    const res = await post(agent, `/api/conversations/${id}/regenerate`, { userId: user }, { Accept: "text/event-stream", "Idempotency-Key": "regen-1" });
    assert.match(res.headers.get("Content-Type"), /^text\/event-stream/);
    const text = await res.text();
    assert.match(text, /event: delta/);
    const done = JSON.parse(/event: done\ndata: (.*)\n/.exec(text)[1]);
    assert.equal(done.conversationId, id);
    assert.equal(done.messageCount, 2);
    const again = await act(agent, user, id, "regenerate", {}, { "Idempotency-Key": "regen-1" });
    assert.equal(again.body.replayed, true);
    assert.equal(again.body.messageId, done.messageId);
    assert.equal(again.body.userMessageId, null);
    assert.equal((await branch(agent, user, id)).body.messages.at(-1).siblings.length, 2, "one regeneration, not two");
    // The same key for another request is refused.
    const reused = await act(agent, user, id, "edit", { message: "another" }, { "Idempotency-Key": "regen-1" });
    assert.equal(reused.status, 400);
    const edit1 = await act(agent, user, id, "edit", { message: "edited once" }, { "Idempotency-Key": "edit-1" });
    const edit2 = await act(agent, user, id, "edit", { message: "edited once" }, { "Idempotency-Key": "edit-1" });
    assert.equal(edit2.body.replayed, true);
    assert.equal(edit2.body.userMessageId, edit1.body.userMessageId);
    const keyedChat = await say(agent, user, "keyed", id, { "Idempotency-Key": "chat-1" });
    const keyedAgain = await say(agent, user, "keyed", id, { "Idempotency-Key": "chat-1" });
    assert.equal(keyedAgain.body.replayed, true);
    assert.equal(keyedAgain.body.conversationId, id);
    assert.equal(keyedAgain.body.messageId, keyedChat.body.messageId);
  });
});

describe("a conversation changed while its turn runs", () => {
  /** Holds the next chat model call; resolves `reached` when it arrives. */
  function holdNext() {
    let reached;
    let release;
    const arrived = new Promise((resolve) => {
      reached = resolve;
    });
    const open = new Promise((resolve) => {
      release = resolve;
    });
    chatGate = {
      held: async () => {
        reached();
        await open;
      },
    };
    return { arrived, release: () => { chatGate = null; release(); } };
  }

  it("a reply lands in a conversation moved to the trash meanwhile, and fails in one purged meanwhile", async () => {
    const user = "meanwhile";
    const id = (await say(agent, user, "first")).body.conversationId;
    let gate = holdNext();
    const pending = say(agent, user, "second", id);
    await gate.arrived;
    assert.equal((await act(agent, user, id, "rename", { title: "renamed during the turn" })).status, 200, "not held by the turn");
    await act(agent, user, id, "delete");
    gate.release();
    const kept = await pending;
    assert.equal(kept.status, 200);
    assert.equal(kept.body.messageCount, 4);
    await act(agent, user, id, "restore");
    assert.equal((await branch(agent, user, id)).body.messageCount, 4);

    gate = holdNext();
    const doomed = say(agent, user, "third", id);
    await gate.arrived;
    await act(agent, user, id, "delete");
    await act(agent, user, id, "delete", { purge: true });
    gate.release();
    const lost = await doomed;
    assert.equal(lost.status, 404);
    assert.equal(lost.body.code, "conversation_not_found");
  });
});

describe("continue", () => {
  it("goes on with a reply cut at max_tokens, appending to it; the model sees the cut reply", async () => {
    const cut = await startAgent({ vars: { MAX_TOKENS: "16" }, record: (r) => requests.push(r) });
    try {
      const user = "continuer";
      const first = await say(cut, user, "a long story [[words 40]]");
      assert.equal(first.body.truncated, true);
      assert.equal(first.body.message.split(" ").length, 16);
      const id = first.body.conversationId;
      let shown = await branch(cut, user, id);
      assert.equal(shown.body.messages.at(-1).truncated, true);
      requests.length = 0;
      const more = await act(cut, user, id, "continue");
      assert.equal(more.status, 200, JSON.stringify(more.body));
      assert.equal(more.body.messageId, first.body.messageId, "the same message grows");
      assert.ok(more.body.message.startsWith(first.body.message));
      assert.equal(more.body.message, first.body.message + more.body.appended);
      assert.equal(more.body.messageCount, 2);
      const sent = requests[0].inputs.messages;
      assert.deepEqual(sent.map((m) => m.role), ["system", "user", "assistant", "user"]);
      assert.equal(sent[2].content, first.body.message);
      assert.match(sent[3].content, /^Continue your previous reply/);
      shown = await branch(cut, user, id);
      assert.equal(shown.body.messages.length, 2);
      assert.equal(shown.body.messages[1].content, more.body.message);
      // Streamed: the deltas carry only the added text; done has the whole reply.
      const again = await say(cut, user, "another long one [[words 40]]", id);
      const res = await post(cut, `/api/conversations/${id}/continue`, { userId: user }, { Accept: "text/event-stream" });
      const events = (await res.text()).split("\n\n").filter((b) => b.includes("data:"));
      const parsed = events.map((b) => ({ event: /event: (\w+)/.exec(b)[1], data: JSON.parse(/data: (.*)/.exec(b)[1]) }));
      const done = parsed.at(-1).data;
      const added = parsed.filter((e) => e.event === "delta").map((e) => e.data.text).join("");
      assert.equal(parsed.at(-1).event, "done");
      assert.equal(added, done.appended);
      assert.equal(done.message, again.body.message + added);
      assert.equal(done.messageId, again.body.messageId);
      // A reply that was not cut has nothing to continue.
      await say(cut, user, "short [[words 3]]", id);
      const refused = await act(cut, user, id, "continue");
      assert.equal(refused.status, 409);
      assert.equal(refused.body.code, "conflict");
      // The grown reply is found by its new words (the stub quotes the continue prompt: "previous").
      const found = await api(cut, "GET", `/api/search?${q(user)}&q=previous`);
      assert.deepEqual(found.body.results.map((r) => r.messageId), [again.body.messageId, first.body.messageId]);
    } finally {
      await cut.dispose();
    }
  });
});

describe("titles", () => {
  async function waitForTitle(target, user, id, predicate) {
    for (let i = 0; i < 100; i++) {
      const { body } = await api(target, "GET", `/api/conversations/${id}?${q(user)}`);
      if (predicate(body.conversation.title)) return body.conversation.title;
      await sleep(20);
    }
    assert.fail("the title never came");
  }

  it("comes from a small model call after the first reply, which does not wait for it", async () => {
    const user = "titled";
    let release;
    titleGate = new Promise((resolve) => {
      release = resolve;
    });
    try {
      requests.length = 0;
      const first = await say(agent, user, "Planning\u0007 a\ntrip   to Lisbon in spring with kids");
      assert.equal(first.status, 200, "answered while the title call is held");
      const id = first.body.conversationId;
      const { body } = await api(agent, "GET", `/api/conversations/${id}?${q(user)}`);
      assert.equal(body.conversation.title, "Planning a trip to Lisbon in spring with…", "the first words meanwhile");
      const titleCall = requests.find((r) => r.model === TITLE_MODEL);
      assert.ok(titleCall, "a title call was made");
      assert.ok(titleCall.inputs.max_tokens <= 32);
      release();
      const title = await waitForTitle(agent, user, id, (t) => !t.endsWith("…"));
      // The stub answers `Title: "<five words>"` and a second line; the title is the first line, cleaned.
      assert.equal(title, "Planning a trip to Lisbon");
      // Only after the first reply.
      requests.length = 0;
      await say(agent, user, "more", id);
      await sleep(50);
      assert.equal(requests.filter((r) => r.model === TITLE_MODEL).length, 0);
    } finally {
      titleGate = null;
      release?.();
    }
  });

  it("never replaces a title the user set, and keeps the first words when the call fails", async () => {
    const user = "renamer";
    let release;
    titleGate = new Promise((resolve) => {
      release = resolve;
    });
    let id;
    try {
      const first = await say(agent, user, "a question about tea");
      id = first.body.conversationId;
      await act(agent, user, id, "rename", { title: "Mine" });
    } finally {
      titleGate = null;
      release();
    }
    await sleep(100);
    assert.equal((await api(agent, "GET", `/api/conversations/${id}?${q(user)}`)).body.conversation.title, "Mine");
    const failed = await say(agent, user, "this title fails [[title-error]]", (await create(agent, user)).body.conversation.id);
    assert.equal(failed.status, 200);
    await sleep(100);
    const t = (await api(agent, "GET", `/api/conversations/${failed.body.conversationId}?${q(user)}`)).body.conversation.title;
    assert.equal(t, "this title fails [[title-error]]");
    // A title given at creation is the user's.
    const named = await create(agent, user, { title: "Named\nat birth" });
    assert.equal(named.body.conversation.title, "Named at birth");
    await say(agent, user, "hello there", named.body.conversation.id);
    await sleep(100);
    assert.equal((await api(agent, "GET", `/api/conversations/${named.body.conversation.id}?${q(user)}`)).body.conversation.title, "Named at birth");
  });

  it("AUTO_TITLES=off: the first words, and no model call", async () => {
    const calls = [];
    const plain = await startAgent({ vars: { AUTO_TITLES: "off" }, record: (r) => calls.push(r) });
    try {
      const first = await say(plain, "untitled", "What is the capital of Portugal and why is it there");
      await sleep(100);
      assert.equal(calls.length, 1);
      assert.equal(calls[0].model, "@cf/meta/llama-3.3-70b-instruct-fp8-fast");
      const { body } = await api(plain, "GET", `/api/conversations/${first.body.conversationId}?userId=untitled`);
      assert.equal(body.conversation.title, "What is the capital of Portugal and why…");
    } finally {
      await plain.dispose();
    }
  });
});

describe("reset and the old routes", () => {
  it("reset archives the most recent conversation and starts a new one; /api/chat and /api/history follow it", async () => {
    const user = "old-client";
    await chat(agent, user, "one");
    const before = await history(agent, user);
    const r = await reset(agent, user);
    assert.equal(r.body.archived, before.body.conversationId);
    assert.match(r.body.conversationId, /^[0-9a-hjkmnp-tv-z]{14}$/);
    const listed = await list(agent, user);
    assert.deepEqual(listed.body.conversations.map((c) => c.id), [r.body.conversationId]);
    assert.deepEqual((await list(agent, user, "&archived=1")).body.conversations.map((c) => c.id), [r.body.archived]);
    const streamed = await chatStream(agent, user, "two");
    const done = streamed.events.at(-1).data;
    assert.equal(done.conversationId, r.body.conversationId);
    assert.equal(done.messageCount, 2);
    assert.deepEqual(contents((await history(agent, user)).body.messages).slice(0, 1), ["two"]);
    // The archived one is still readable by id.
    assert.deepEqual(contents((await branch(agent, user, r.body.archived)).body.messages).slice(0, 1), ["one"]);
  });
});

describe("a big conversation", () => {
  it("pages its current branch with limit and before, every message once, siblings included", async () => {
    const user = "big-talker";
    const first = await say(agent, user, "turn 0");
    const id = first.body.conversationId;
    const turns = 150;
    for (let i = 1; i < turns; i++) await say(agent, user, `turn ${i}`, id);
    // A regeneration in the middle of the history does not move the branch: only at the end.
    await act(agent, user, id, "regenerate");
    const whole = await branch(agent, user, id);
    assert.equal(whole.body.messageCount, turns * 2);
    assert.equal(whole.body.messages.length, turns * 2);
    const pages = [];
    let query = "&limit=37";
    for (;;) {
      const page = await branch(agent, user, id, query);
      assert.equal(page.status, 200);
      assert.ok(page.body.messages.length <= 37);
      assert.equal(page.body.conversationId, id);
      pages.push(page.body.messages);
      if (page.body.previous === null) break;
      query = `&limit=37&before=${encodeURIComponent(page.body.previous)}`;
      if (pages.length === 3) {
        // Meanwhile, a new turn and a switch of branch: the cursor keeps to the branch it follows.
        await say(agent, user, "while paging", id);
        await act(agent, user, id, "switch", { messageId: first.body.messageId });
      }
    }
    assert.equal(pages.length, Math.ceil((turns * 2) / 37));
    const joined = pages.toReversed().flat();
    assert.deepEqual(joined.map((m) => m.id), whole.body.messages.map((m) => m.id));
    assert.equal(joined.at(-1).siblings.length, 2);
    // A cursor of one conversation refused for another.
    const other = (await create(agent, user)).body.conversation.id;
    const stray = await branch(agent, user, other, `&before=${encodeURIComponent(`${1}.${whole.body.messages[5].id}`)}`);
    assert.equal(stray.status, 400);
  });
});

describe("limits and identity on the library's routes", () => {
  it("regenerate and edit are turns: counted against USER_TURNS_PER_MINUTE", async () => {
    const limited = await startAgent({ vars: { USER_TURNS_PER_MINUTE: "3" } });
    try {
      const user = "hasty";
      const { body } = await say(limited, user, "one");
      const id = body.conversationId;
      assert.equal((await act(limited, user, id, "regenerate")).status, 200);
      assert.equal((await act(limited, user, id, "edit", { message: "two" })).status, 200);
      for (const [action, extra] of [["regenerate", {}], ["edit", { message: "three" }]]) {
        const refused = await act(limited, user, id, action, extra);
        assert.equal(refused.status, 429, action);
        assert.equal(refused.body.code, "quota_exceeded", action);
        assert.equal(refused.body.limit, "turns_per_minute", action);
      }
      // A turn that does not apply is refused as such (409) before it is counted.
      assert.equal((await act(limited, user, id, "continue")).status, 409);
      // Reading and organising are not turns.
      assert.equal((await list(limited, user)).status, 200);
      assert.equal((await act(limited, user, id, "rename", { title: "still fine" })).status, 200);
      assert.equal((await api(limited, "GET", `/api/search?${q(user)}&q=one`)).status, 200);
    } finally {
      await limited.dispose();
    }
  });

  it("in user-tokens mode the routes act for the token's user without a userId, and refuse another's", async () => {
    const { SIGNING_KEY, bearer, userToken } = await import("./identity-helpers.mjs");
    const secured = await startAgent({ vars: { EDGECHAT_SIGNING_KEY: SIGNING_KEY } });
    try {
      const alice = bearer(await userToken("alice"));
      const created = await api(secured, "POST", "/api/conversations", { title: "Alice's" }, alice);
      assert.equal(created.status, 200);
      const id = created.body.conversation.id;
      const said = await api(secured, "POST", "/api/chat", { message: "hi", conversationId: id }, alice);
      assert.equal(said.body.conversationId, id);
      const listed = await api(secured, "GET", "/api/conversations", undefined, alice);
      assert.equal(listed.body.userId, "alice");
      assert.deepEqual(listed.body.conversations.map((c) => c.id), [id]);
      assert.equal((await api(secured, "GET", "/api/search?q=hi", undefined, alice)).body.results.length, 2);
      assert.equal((await api(secured, "POST", `/api/conversations/${id}/regenerate`, {}, alice)).status, 200);
      assert.equal((await api(secured, "GET", "/api/conversations?userId=bob", undefined, alice)).status, 403);
      assert.equal((await api(secured, "POST", `/api/conversations/${id}/archive`, { userId: "bob" }, alice)).status, 403);
      assert.equal((await api(secured, "GET", "/api/search?q=hi")).status, 401);
      // Bob's object has no conversation of that id.
      const bob = bearer(await userToken("bob"));
      assert.equal((await api(secured, "GET", `/api/conversations/${id}`, undefined, bob)).body.code, "conversation_not_found");
    } finally {
      await secured.dispose();
    }
  });
});
