// What the Durable Object stores: one row per message (so a conversation past 2 MB keeps working),
// nothing for a failed model call, state that survives a restart, history and reset.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startAgent } from "../scripts/harness.mjs";
import { chat, chatStream, history, reset } from "./helpers.mjs";

const TWO_MB = 2 * 1024 * 1024;
let agent;
const requests = [];
before(async () => {
  agent = await startAgent({ record: (r) => requests.push(r) });
});
after(async () => {
  await agent?.dispose();
});

function assertAlternates(messages) {
  messages.forEach((m, i) => assert.equal(m.role, i % 2 === 0 ? "user" : "assistant", `message ${i}`));
}

describe("a failed model call stores nothing", () => {
  const failures = [
    [3040, 429, "rate_limited"],
    [3036, 429, "quota_exceeded"],
    [4006, 429, "quota_exceeded"],
    [3007, 502, "model_unavailable"],
    [5006, 502, "model_unavailable"],
  ];
  for (const [aiCode, status, code] of failures) {
    it(`after error ${aiCode} (${code}), JSON and streamed`, async () => {
      const user = `fail-${aiCode}`;
      assert.equal((await chat(agent, user, "remember me")).body.messageCount, 2);
      const failed = await chat(agent, user, `this fails [[error ${aiCode}]]`);
      assert.equal(failed.status, status);
      assert.equal(failed.body.code, code);
      assert.match(failed.body.details, new RegExp(`^${aiCode}: `));
      // A stream that fails before the model starts answering still gets the status, as JSON.
      const streamed = await chatStream(agent, user, `this fails too [[error ${aiCode}]]`);
      assert.equal(streamed.status, status);
      assert.equal(streamed.body.code, code);
      const next = await chat(agent, user, "and now?");
      // The seed answered 3 here: the failed message had stayed in memory and was saved.
      assert.equal(next.body.messageCount, 4);
      assert.match(next.body.message, /I remember 1 earlier messages from you; the first was "remember me"/);
      const stored = await history(agent, user);
      assert.deepEqual(stored.body.messages.map((m) => m.content.slice(0, 11)), ["remember me", "You said \"r", "and now?", "You said \"a"]);
    });
  }

  it("when the model's stream fails midway, the client gets an error event and nothing is stored", async () => {
    const user = "fail-midstream";
    const res = await chatStream(agent, user, `long answer [[words 400]] [[stream-error]]`);
    assert.equal(res.status, 200);
    const last = res.events.at(-1);
    assert.equal(last.event, "error");
    assert.equal(last.data.code, "model_unavailable");
    assert.ok(!res.events.some((e) => e.event === "done"));
    assert.equal((await history(agent, user)).body.messageCount, 0);
    assert.equal((await chat(agent, user, "retry")).body.messageCount, 2);
  });
});

describe("history", () => {
  it("answers the messages oldest first with times, and caps with ?limit", async () => {
    const user = "history-reader";
    for (const text of ["one", "two", "three"]) await chat(agent, user, text);
    const all = await history(agent, user);
    assert.equal(all.status, 200);
    assert.equal(all.body.userId, user);
    assert.equal(all.body.messageCount, 6);
    assertAlternates(all.body.messages);
    assert.deepEqual(all.body.messages.filter((m) => m.role === "user").map((m) => m.content), ["one", "two", "three"]);
    for (const m of all.body.messages) assert.ok(!Number.isNaN(Date.parse(m.time)));
    assert.ok(all.body.messages.filter((m) => m.role === "assistant").every((m) => m.stopped === false));

    const newest = await history(agent, user, "&limit=2");
    assert.equal(newest.body.messageCount, 6);
    assert.deepEqual(newest.body.messages, all.body.messages.slice(-2));
    for (const bad of ["0", "-1", "two", "1.5", "100001"]) {
      assert.equal((await history(agent, user, `&limit=${bad}`)).status, 400, bad);
    }
  });

  it("answers an empty history for a user never seen", async () => {
    const fresh = await history(agent, "never-seen");
    assert.deepEqual(fresh.body, { userId: "never-seen", messageCount: 0, messages: [], previous: null });
  });
});

describe("reset", () => {
  it("archives the conversation and starts a new one the model no longer sees", async () => {
    const user = "resetter";
    await chat(agent, user, "my name is Ada");
    await chat(agent, user, "and I like tea");
    const first = await reset(agent, user);
    assert.equal(first.status, 200);
    assert.equal(first.body.ok, true);
    assert.equal(first.body.messageCount, 0);
    assert.equal(typeof first.body.archived, "string");
    assert.equal((await history(agent, user)).body.messageCount, 0);

    const after = await chat(agent, user, "who am I?");
    assert.equal(after.body.messageCount, 2);
    assert.match(after.body.message, /This is the first message I have from you/);

    const second = await reset(agent, user);
    assert.notEqual(second.body.archived, first.body.archived);
    // Nothing to archive: the protocol's null.
    assert.equal((await reset(agent, user)).body.archived, null);
  });
});

describe("a conversation past 2 MB", () => {
  it("keeps working, and the model gets only the newest turns that fit", async () => {
    const user = "long-talker";
    const filler = "The quick brown fox jumps over the lazy dog; ".repeat(1070); // 48,150 bytes
    let storedBytes = 0;
    let turns = 0;
    while (storedBytes <= TWO_MB + 100_000) {
      const message = `turn ${turns}: ${filler}`;
      const res = await chat(agent, user, `${message} [[words 50]]`);
      assert.equal(res.status, 200, `turn ${turns}: ${JSON.stringify(res.body).slice(0, 300)}`);
      turns++;
      assert.equal(res.body.messageCount, turns * 2);
      storedBytes += Buffer.byteLength(message) + Buffer.byteLength(res.body.message);
    }
    for (const small of ["small one", "small two", "small three"]) {
      requests.length = 0;
      const res = await chat(agent, user, small);
      assert.equal(res.status, 200);
      turns++;
      assert.equal(res.body.messageCount, turns * 2);
    }
    const sent = requests.at(-1).inputs;
    const stored = await history(agent, user);
    const total = stored.body.messages.reduce((n, m) => n + Buffer.byteLength(m.content), 0);
    assert.ok(total > TWO_MB, `${total} bytes stored`);
    assert.equal(stored.body.messageCount, turns * 2);

    assert.equal(sent.messages[0].role, "system");
    assert.equal(sent.max_tokens, 2048);
    const context = sent.messages.slice(1);
    assert.equal(context.at(-1).content, "small three");
    assert.equal(context[0].role, "user");
    // An unbroken stretch of the newest stored messages, then the new one (stored now, before its reply).
    const tail = stored.body.messages.slice(-context.length - 1, -1).map(({ role, content }) => ({ role, content }));
    assert.deepEqual(context, tail);
    assert.ok(context.length >= 6 && context.length < stored.body.messages.length);
    const sentBytes = sent.messages.reduce((n, m) => n + Buffer.byteLength(m.content), 0);
    assert.ok(sentBytes / 3 + sent.max_tokens < 24000, `${sentBytes} bytes sent`);
    console.log(`# long conversation: ${turns} turns, ${stored.body.messageCount} messages, ${total} bytes stored; last request sent ${context.length} messages, ${sentBytes} bytes`);
  });
});

describe("state after a restart", () => {
  it("is there for the first request, read from SQLite storage on disk", async () => {
    const dir = await mkdtemp(join(tmpdir(), "edgechat-do-"));
    try {
      const first = await startAgent({ persist: dir });
      await chat(first, "survivor", "my name is Ada");
      await chat(first, "survivor", "I like tea");
      await first.dispose();

      const second = await startAgent({ persist: dir });
      try {
        // Several at once, right after the wake-up: none may see an empty history.
        const answers = await Promise.all([
          chat(second, "survivor", "who am I?"),
          history(second, "survivor"),
          chat(second, "survivor", "what do I like?"),
        ]);
        assert.match(answers[0].body.message, /the first was "my name is Ada"/);
        assert.ok(answers[1].body.messageCount >= 4);
        assert.deepEqual([answers[0].body.messageCount, answers[2].body.messageCount].sort(), [6, 8]);
      } finally {
        await second.dispose();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
