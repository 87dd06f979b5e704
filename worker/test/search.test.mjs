// Search across a user's conversations (docs/protocol.md, `search`): FTS5 in the user's Durable Object
// (a LIKE scan with SEARCH_ENGINE=like), newest first, plain-text snippets with highlight offsets.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startAgent } from "../scripts/harness.mjs";
import { api } from "./helpers.mjs";

let fts;
let like;
before(async () => {
  [fts, like] = await Promise.all([startAgent(), startAgent({ vars: { SEARCH_ENGINE: "like" } })]);
});
after(async () => {
  await Promise.all([fts?.dispose(), like?.dispose()]);
});

const search = (target, user, query, extra = "") =>
  api(target, "GET", `/api/search?userId=${user}&q=${encodeURIComponent(query)}${extra}`);
const say = (target, user, message, conversationId) =>
  api(target, "POST", "/api/chat", { userId: user, message, ...(conversationId ? { conversationId } : {}) });

/** The highlighted words of a result, cut from its snippet by code point offsets. */
function marked(result) {
  const points = Array.from(result.snippet);
  return result.highlights.map(([s, e]) => points.slice(s, e).join(""));
}

async function library(target, user) {
  const a = await say(target, user, "We talked about the Lisbon trip and pastéis de nata");
  const b = (await api(target, "POST", "/api/conversations", { userId: user })).body.conversation.id;
  await say(target, user, "Recipe: a CAFÉ crème, then more about Lisbon", b);
  const c = (await api(target, "POST", "/api/conversations", { userId: user })).body.conversation.id;
  await say(target, user, "unrelated words entirely", c);
  return { a: a.body.conversationId, b, c };
}

for (const engine of ["fts5", "like"]) {
  describe(`search (${engine})`, () => {
    const target = () => (engine === "fts5" ? fts : like);

    it("finds matches in every conversation, newest first, with the documented fields", async () => {
      const user = `seeker-${engine}`;
      const ids = await library(target(), user);
      const res = await search(target(), user, "lisbon");
      assert.equal(res.status, 200);
      assert.equal(res.body.engine, engine);
      const chats = res.body.results.map((r) => r.chat);
      // User messages and the stub's replies (which quote them) match; the newest message comes first.
      assert.deepEqual([...new Set(chats)], [ids.b, ids.a]);
      const times = res.body.results.map((r) => Date.parse(r.time));
      assert.deepEqual(times, [...times].sort((x, y) => y - x));
      const ids2 = res.body.results.map((r) => r.messageId);
      assert.deepEqual(ids2, [...ids2].sort((x, y) => y - x));
      for (const r of res.body.results) {
        for (const key of ["chat", "title", "role", "time", "snippet", "highlights", "messageId", "archived"]) assert.ok(key in r, key);
        assert.ok(["user", "assistant"].includes(r.role));
        assert.ok(marked(r).every((w) => w.toLowerCase() === "lisbon"), JSON.stringify(r));
      }
      // Every term must match; prefixes match words; case and (with FTS5) accents fold.
      assert.equal((await search(target(), user, "lisbon recipe")).body.results.filter((r) => r.role === "user").length, 1);
      assert.ok((await search(target(), user, "Lisb")).body.results.length >= 4);
      if (engine === "fts5") {
        const cafe = await search(target(), user, "cafe");
        assert.ok(cafe.body.results.length >= 1);
        assert.deepEqual([...new Set(cafe.body.results.flatMap(marked))], ["CAFÉ"]);
        assert.equal((await search(target(), user, "pasteis")).body.results[0].chat, ids.a);
      }
      assert.deepEqual((await search(target(), user, "nothinglikethis")).body.results, []);
      // limit, and other users see nothing of it.
      assert.equal((await search(target(), user, "lisbon", "&limit=1")).body.results.length, 1);
      assert.deepEqual((await search(target(), `other-${engine}`, "lisbon")).body.results, []);
    });

    it("keeps archived conversations (marked) and leaves out the trash", async () => {
      const user = `archivist-${engine}`;
      const ids = await library(target(), user);
      await api(target(), "POST", `/api/conversations/${ids.a}/archive`, { userId: user });
      await api(target(), "POST", `/api/conversations/${ids.b}/delete`, { userId: user });
      const res = await search(target(), user, "lisbon");
      assert.deepEqual([...new Set(res.body.results.map((r) => r.chat))], [ids.a]);
      assert.ok(res.body.results.every((r) => r.archived === true));
      await api(target(), "POST", `/api/conversations/${ids.b}/restore`, { userId: user });
      assert.equal(new Set((await search(target(), user, "lisbon")).body.results.map((r) => r.chat)).size, 2);
      await api(target(), "POST", `/api/conversations/${ids.b}/delete`, { userId: user });
      await api(target(), "POST", `/api/conversations/${ids.b}/delete`, { userId: user, purge: true });
      assert.deepEqual([...new Set((await search(target(), user, "lisbon")).body.results.map((r) => r.chat))], [ids.a]);
    });

    it("treats hostile text and query syntax as plain text", async () => {
      const user = `hostile-${engine}`;
      const nasty =
        'before <script>alert("x")</script> \u0002fake\u0003 **bold** ' +
        "NEAR(a b) col:zebra \"quoted\" - * ^ OR AND NOT ( ) \u0000 \u202e evil\nnewline zebra end";
      await say(target(), user, nasty);
      for (const query of ['zebra', 'NEAR(zebra', 'col:zebra', '"zebra', 'zebra*', '-zebra', 'zebra OR', 'AND zebra', "zebra'", "^zebra", "zebra\u0000"]) {
        const res = await search(target(), user, query);
        assert.equal(res.status, 200, `${query}: ${JSON.stringify(res.body)}`);
        assert.ok(res.body.results.length >= 1, query);
        for (const r of res.body.results) {
          // One line of plain text: no control characters, nothing escaped, offsets on the words.
          assert.doesNotMatch(r.snippet, /[\u0000-\u001f\u007f\u202e]/);
          const terms = query.toLowerCase().match(/[a-z]+/g);
          const words = marked(r).map((w) => w.toLowerCase());
          assert.ok(words.includes("zebra") && words.every((w) => terms.some((t) => w.startsWith(t))), `${query}: ${JSON.stringify(r)}`);
        }
      }
      const user2 = (await search(target(), user, "script alert")).body.results.find((r) => r.role === "user");
      assert.ok(user2.snippet.includes('<script>alert("x")</script>'), "not escaped: the client renders it as text");
      assert.deepEqual(marked(user2), ["script", "alert", "script"]);
      // Queries with no word at all, too long, or a bad limit: 400.
      for (const bad of ["", "   ", "***", '"()"', "x".repeat(501)]) {
        const res = await search(target(), user, bad);
        assert.equal(res.status, 400, JSON.stringify(bad));
        assert.equal(res.body.code, "bad_request");
      }
      for (const limit of ["0", "201", "x", "-1"]) assert.equal((await search(target(), user, "zebra", `&limit=${limit}`)).status, 400);
    });

    it("cuts a snippet around the first match in a long message", async () => {
      const user = `long-${engine}`;
      const text = `${"lorem ipsum ".repeat(200)}needle in the middle ${"dolor sit ".repeat(200)}`;
      await say(target(), user, text);
      const [r] = (await search(target(), user, "needle", "&limit=1")).body.results;
      assert.ok(Array.from(r.snippet).length <= 162, `${r.snippet.length}`);
      assert.ok(r.snippet.startsWith("…") && r.snippet.endsWith("…"));
      assert.deepEqual(marked(r), ["needle"]);
    });
  });
}

describe("search over a large library", () => {
  it("answers in milliseconds over 100 conversations and 1,000 messages", async () => {
    const user = "big-library";
    const bulk = await startAgent({ vars: { MAX_QUEUED_TURNS: "10000" } });
    try {
      const words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"];
      // 100 conversations of 5 turns (10 messages), thirty conversations at a time.
      const convs = [];
      for (let i = 0; i < 100; i++) convs.push((await api(bulk, "POST", "/api/conversations", { userId: user })).body.conversation.id);
      for (let start = 0; start < convs.length; start += 30) {
        await Promise.all(
          convs.slice(start, start + 30).map(async (id, k) => {
            for (let t = 0; t < 5; t++) {
              const n = (start + k) * 5 + t;
              await say(bulk, user, `message ${n} about ${words[n % 10]} and ${words[(n * 7) % 10]} number${n}`, id);
            }
          }),
        );
      }
      const timings = [];
      for (const query of ["alpha", "golf hotel", "number499", "charl", "juliet delta", "nomatch"]) {
        const t0 = performance.now();
        const res = await search(bulk, user, query);
        timings.push(performance.now() - t0);
        assert.equal(res.status, 200);
      }
      const rare = await search(bulk, user, "number123");
      assert.deepEqual(rare.body.results.map((r) => r.role), ["assistant", "user"]);
      const sorted = timings.toSorted((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)];
      console.log(`# search over 100 conversations, 1000 messages (fts5): median ${median.toFixed(1)} ms, max ${sorted.at(-1).toFixed(1)} ms (HTTP into workerd)`);
      assert.ok(median < 200, `${median} ms`);
    } finally {
      await bulk.dispose();
    }
  });
});
