// The history in pages (docs/protocol.md, `history-pages`): `before=<cursor>` and `limit=N` walk a
// conversation from the newest message back, each answer capped at 4 MiB of messages, so a history
// bigger than a client can read in one answer (edgechat reads at most 8 MiB) can still be read whole.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startAgent } from "../scripts/harness.mjs";
import { chat, history, reset } from "./helpers.mjs";

const MiB = 1024 * 1024;
const PAGE_BYTES = 4 * MiB;
let agent;
before(async () => {
  agent = await startAgent();
});
after(async () => {
  await agent?.dispose();
});

/** GET one history answer; returns { status, body, bytes } with the size of the answer's body. */
async function historyAnswer(target, userId, query = "") {
  const res = await target.fetch(`/api/history?userId=${encodeURIComponent(userId)}${query}`);
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), bytes: Buffer.byteLength(text) };
}

/** Every page from the newest back, following `previous`; returns the pages in the order fetched. */
async function allPages(target, userId, limitQuery = "") {
  const pages = [];
  let query = limitQuery;
  for (;;) {
    const page = await historyAnswer(target, userId, query);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    pages.push(page);
    if (page.body.previous === null) return pages;
    assert.equal(typeof page.body.previous, "string");
    assert.ok(pages.length < 1000, "paging does not end");
    query = `${limitQuery}&before=${encodeURIComponent(page.body.previous)}`;
  }
}

function joined(pages) {
  return pages.toReversed().flatMap((p) => p.body.messages);
}

describe("history pages", () => {
  it("walks a conversation back with before and limit, each message once, in order", async () => {
    const user = "pager";
    for (let i = 0; i < 7; i++) await chat(agent, user, `question ${i}`);
    const whole = await history(agent, user);
    assert.equal(whole.body.messageCount, 14);
    assert.equal(whole.body.previous, null, "a small conversation fits one answer");
    for (const limit of [1, 2, 3, 5, 13, 14, 100]) {
      const pages = await allPages(agent, user, `&limit=${limit}`);
      assert.equal(pages.length, Math.ceil(14 / limit), `limit ${limit}`);
      for (const page of pages) {
        assert.equal(page.body.messageCount, 14);
        assert.ok(page.body.messages.length <= limit);
      }
      assert.deepEqual(joined(pages), whole.body.messages, `limit ${limit}`);
    }
    // The first page is the newest messages: the same as the old `limit` answer.
    const newest = await history(agent, user, "&limit=4");
    assert.deepEqual(newest.body.messages, whole.body.messages.slice(-4));
    assert.equal(typeof newest.body.previous, "string");
  });

  it("keeps its place while new turns are stored", async () => {
    const user = "pager-busy";
    for (let i = 0; i < 4; i++) await chat(agent, user, `old ${i}`);
    const first = await history(agent, user, "&limit=2");
    await chat(agent, user, "new while paging");
    const second = await history(agent, user, `&limit=2&before=${encodeURIComponent(first.body.previous)}`);
    assert.deepEqual(second.body.messages.filter((m) => m.role === "user").map((m) => m.content), ["old 2"]);
    assert.equal(second.body.messageCount, 10);
  });

  it("keeps paging the conversation a cursor came from after a reset, never a mix of two", async () => {
    const user = "pager-reset";
    for (let i = 0; i < 3; i++) await chat(agent, user, `before reset ${i}`);
    const first = await history(agent, user, "&limit=2");
    assert.equal(first.body.messageCount, 6);
    await reset(agent, user);
    await chat(agent, user, "after reset");
    const older = await history(agent, user, `&before=${encodeURIComponent(first.body.previous)}`);
    assert.equal(older.status, 200);
    assert.deepEqual(older.body.messages.filter((m) => m.role === "user").map((m) => m.content), ["before reset 0", "before reset 1"]);
    assert.equal(older.body.messageCount, 6);
    assert.equal(older.body.previous, null);
    const fresh = await history(agent, user);
    assert.equal(fresh.body.messageCount, 2);
    assert.equal(fresh.body.messages[0].content, "after reset");
  });

  it("refuses a before that is not a cursor it gave with 400 bad_request", async () => {
    await chat(agent, "pager-bad", "hi");
    for (const bad of ["", "abc", "1", "1.", ".1", "0.1", "1.0", "-1.2", "1.2.3", "01.2", "1.2 ", "9999999999999999.1", "999.5"]) {
      const res = await history(agent, "pager-bad", `&before=${encodeURIComponent(bad)}`);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal(res.body.code, "bad_request", JSON.stringify(bad));
    }
  });
});

describe("a history past 8 MiB", () => {
  it("is answered in pages of at most 4 MiB, and read whole by following them", async () => {
    // A model with a large window and long replies, so 16 turns make 9 MB without many requests.
    const big = await startAgent({ vars: { MODEL: "@cf/meta/llama-3.1-8b-instruct-fast", MAX_TOKENS: "64000" } });
    try {
      const user = "archivist";
      const filler = "All work and no play makes Jack a dull boy. ".repeat(4000); // 176,000 bytes
      let stored = 0;
      let turns = 0;
      while (stored <= 8 * MiB + 256 * 1024) {
        const message = `turn ${turns}: ${filler}`;
        const res = await chat(big, user, `${message} [[words 60000]]`);
        assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
        turns++;
        stored += Buffer.byteLength(`${message} [[words 60000]]`) + Buffer.byteLength(res.body.message);
      }

      // An old client's unpaged request still gets an answer it can read: the newest 4 MiB, with
      // messageCount counting all.
      const unpaged = await historyAnswer(big, user);
      assert.equal(unpaged.status, 200);
      assert.ok(unpaged.bytes < 8 * MiB, `${unpaged.bytes} bytes`);
      assert.ok(JSON.stringify(unpaged.body.messages).length <= PAGE_BYTES);
      assert.equal(unpaged.body.messageCount, turns * 2);
      assert.ok(unpaged.body.messages.length < turns * 2);
      assert.equal(typeof unpaged.body.previous, "string");

      const pages = await allPages(big, user);
      assert.ok(pages.length >= 3, `${pages.length} pages`);
      for (const page of pages) {
        assert.ok(page.bytes <= PAGE_BYTES + 1024, `${page.bytes} bytes in a page`);
        assert.equal(page.body.messageCount, turns * 2);
      }
      const all = joined(pages);
      assert.equal(all.length, turns * 2);
      const total = all.reduce((n, m) => n + Buffer.byteLength(m.content), 0);
      assert.equal(total, stored);
      assert.ok(total > 8 * MiB);
      all.forEach((m, i) => assert.equal(m.role, i % 2 === 0 ? "user" : "assistant", `message ${i}`));
      assert.deepEqual(
        all.filter((m) => m.role === "user").map((m) => m.content.split(":")[0]),
        Array.from({ length: turns }, (_, i) => `turn ${i}`),
      );
      // A limit larger than fits is capped by bytes too.
      const capped = await historyAnswer(big, user, "&limit=100000");
      assert.ok(capped.bytes <= PAGE_BYTES + 1024);
      assert.equal(typeof capped.body.previous, "string");
      console.log(`# history past 8 MiB: ${turns} turns, ${total} bytes stored, read in ${pages.length} pages of ${pages.map((p) => p.bytes).join(", ")} bytes`);
    } finally {
      await big.dispose();
    }
  });
});
