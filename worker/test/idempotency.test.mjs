// Idempotent turns (docs/protocol.md "idempotency"): a repeated Idempotency-Key returns the turn stored
// under it, or waits for the one still running, instead of making a second turn.

import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startAgent } from "../scripts/harness.mjs";
import { chat, chatStream, history } from "./helpers.mjs";

let agent;
const calls = [];
let gate = null;
before(async () => {
  agent = await startAgent({
    host: "127.0.0.1",
    port: 0,
    record: async (r) => {
      calls.push(r.inputs.messages.at(-1).content);
      if (gate) return gate(r);
      return undefined;
    },
  });
});
after(async () => {
  await agent?.dispose();
});

const key = (k) => ({ "Idempotency-Key": k });
const callsFor = (text) => calls.filter((c) => c === text).length;

describe("a repeated Idempotency-Key", () => {
  it("returns the stored answer, same message and messageCount, with one stored turn and one model call", async () => {
    const user = "idem-json";
    await chat(agent, user, "an earlier turn");
    const first = await chat(agent, user, "count my words [[words 12]]", key("k-1"));
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("Idempotent-Replayed"), null);
    assert.equal(first.body.replayed, undefined);
    for (let i = 0; i < 3; i++) {
      const again = await chat(agent, user, "count my words [[words 12]]", key("k-1"));
      assert.equal(again.status, 200);
      assert.equal(again.body.message, first.body.message);
      assert.equal(again.body.messageCount, first.body.messageCount);
      assert.deepEqual(again.body.usage, first.body.usage);
      assert.equal(again.body.replayed, true);
      assert.equal(again.headers.get("Idempotent-Replayed"), "true");
    }
    // A later turn does not change what the key answers: it stands for its own turn.
    await chat(agent, user, "and another");
    const late = await chat(agent, user, "count my words [[words 12]]", key("k-1"));
    assert.equal(late.body.messageCount, 4);
    const stored = await history(agent, user);
    assert.equal(stored.body.messageCount, 6);
    assert.equal(stored.body.messages.filter((m) => m.content === "count my words [[words 12]]").length, 1);
    assert.equal(callsFor("count my words [[words 12]]"), 1);
  });

  it("replays a stored turn as a stream: one delta with the whole reply, then the same done", async () => {
    const user = "idem-stream";
    const first = await chatStream(agent, user, "stream me [[words 40]]", key("s-1"));
    const done = first.events.at(-1);
    assert.equal(done.event, "done");
    const again = await chatStream(agent, user, "stream me [[words 40]]", key("s-1"));
    assert.equal(again.status, 200);
    assert.match(again.contentType, /^text\/event-stream/);
    assert.equal(again.headers.get("Idempotent-Replayed"), "true");
    assert.deepEqual(again.events.map((e) => e.event), ["delta", "done"]);
    assert.equal(again.events[0].data.text, done.data.message);
    assert.equal(again.events[1].data.message, done.data.message);
    assert.equal(again.events[1].data.messageCount, done.data.messageCount);
    assert.equal(again.events[1].data.replayed, true);
    // And as JSON, for a client that retries without streaming.
    const json = await chat(agent, user, "stream me [[words 40]]", key("s-1"));
    assert.equal(json.body.message, done.data.message);
    assert.equal(json.body.messageCount, 2);
    assert.equal((await history(agent, user)).body.messageCount, 2);
    assert.equal(callsFor("stream me [[words 40]]"), 1);
  });

  it("waits for the turn still running, JSON or streamed, instead of starting another", async () => {
    const user = "idem-concurrent";
    const text = "hold me";
    let release;
    const held = new Promise((resolve) => {
      release = resolve;
    });
    let arrived;
    const seen = new Promise((resolve) => {
      arrived = resolve;
    });
    gate = async (r) => {
      if (r.inputs.messages.at(-1).content === text) {
        arrived();
        await held;
      }
    };
    try {
      const original = chatStream(agent, user, text, key("c-1"));
      await seen;
      const repeats = [
        ...Array.from({ length: 4 }, () => chat(agent, user, text, key("c-1"))),
        ...Array.from({ length: 3 }, () => chatStream(agent, user, text, key("c-1"))),
      ];
      await sleep(100);
      release();
      const first = (await original).events.at(-1).data;
      for (const answer of await Promise.all(repeats)) {
        const body = answer.events ? answer.events.at(-1).data : answer.body;
        assert.equal(body.message, first.message);
        assert.equal(body.messageCount, first.messageCount);
        assert.equal(body.replayed, true);
      }
    } finally {
      gate = null;
      release();
    }
    assert.equal(callsFor(text), 1);
    assert.equal((await history(agent, user)).body.messageCount, 2);
  });

  it("refuses a key reused for another message with 400, storing nothing", async () => {
    const user = "idem-reuse";
    await chat(agent, user, "the first message", key("r-1"));
    const reused = await chat(agent, user, "a different message", key("r-1"));
    assert.equal(reused.status, 400);
    assert.equal(reused.body.code, "bad_request");
    assert.match(reused.body.error, /Idempotency-Key/);
    assert.equal((await history(agent, user)).body.messageCount, 2);
  });

  it("forgets the key of a failed turn, so the same key may be sent again and then succeeds", async () => {
    const user = "idem-fail";
    const text = "fail once";
    let failNext = true;
    gate = async (r) => {
      if (r.inputs.messages.at(-1).content === text && failNext) {
        failNext = false;
        return { error: 3040 };
      }
      return undefined;
    };
    try {
      const failed = await chat(agent, user, text, key("f-1"));
      assert.equal(failed.status, 429);
      assert.equal(failed.body.code, "rate_limited");
      const retried = await chat(agent, user, text, key("f-1"));
      assert.equal(retried.status, 200);
      assert.equal(retried.body.messageCount, 2);
      assert.equal(retried.body.replayed, undefined);
    } finally {
      gate = null;
    }
    assert.equal((await history(agent, user)).body.messageCount, 2);
  });

  it("after a connection lost mid-stream, a retry gets the stored (stopped) turn, not a second one", async () => {
    const user = "idem-lost";
    const text = "a long one [[words 300]] [[slow 15]]";
    await new Promise((resolve, reject) => {
      const req = httpRequest(new URL("/api/chat", agent.url), {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", "Idempotency-Key": "lost-1" },
      });
      req.on("error", reject);
      req.on("response", (res) => {
        let seenText = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => {
          seenText += chunk;
          if ((seenText.match(/event: delta/g) ?? []).length >= 3) {
            req.destroy();
            resolve();
          }
        });
        res.on("error", () => undefined);
      });
      req.end(JSON.stringify({ userId: user, message: text }));
    });
    // Retried at once: the turn may still be stopping; the retry waits for it.
    const retry = await chat(agent, user, text, key("lost-1"));
    assert.equal(retry.status, 200);
    assert.equal(retry.body.replayed, true);
    assert.equal(retry.body.stopped, true);
    assert.equal(retry.body.messageCount, 2);
    const stored = await history(agent, user);
    assert.equal(stored.body.messageCount, 2);
    assert.equal(stored.body.messages[1].content, retry.body.message);
    assert.equal(callsFor(text), 1);
  });

  it("tells a repeat waiting on a turn whose client left before any text that nothing was stored (429)", async () => {
    const user = "idem-vanished";
    // Streamed, the first piece comes a second after the model answers: time for the hang-up to show.
    const text = "vanish before the reply [[words 5]] [[slow 1000]]";
    let release;
    const held = new Promise((resolve) => {
      release = resolve;
    });
    let arrived;
    const seen = new Promise((resolve) => {
      arrived = resolve;
    });
    gate = async (r) => {
      if (r.inputs.messages.at(-1).content === text && release) {
        arrived();
        await held;
      }
    };
    try {
      const req = httpRequest(new URL("/api/chat", agent.url), {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", "Idempotency-Key": "v-1" },
      });
      req.on("error", () => undefined);
      req.end(JSON.stringify({ userId: user, message: text }));
      await seen;
      req.destroy(); // gone while the model has not said a word
      const repeat = chat(agent, user, text, key("v-1"));
      await sleep(200);
      const releaseNow = release;
      release = null;
      releaseNow();
      const waited = await repeat;
      assert.equal(waited.status, 429, JSON.stringify(waited.body));
      assert.equal(waited.body.code, "rate_limited");
      assert.equal((await history(agent, user)).body.messageCount, 0);
      const again = await chat(agent, user, text, key("v-1"));
      assert.equal(again.status, 200);
      assert.equal(again.body.replayed, undefined);
      assert.equal(again.body.messageCount, 2);
    } finally {
      gate = null;
      release?.();
    }
    assert.equal((await history(agent, user)).body.messageCount, 2);
  });

  it("keeps keys per user: another user's identical key and message make that user's own turn", async () => {
    const a = await chat(agent, "idem-user-a", "same words", key("shared-key"));
    await chat(agent, "idem-user-b", "warm up");
    const b = await chat(agent, "idem-user-b", "same words", key("shared-key"));
    assert.equal(b.body.replayed, undefined);
    assert.equal(b.body.messageCount, 4);
    assert.notEqual(b.body.message, a.body.message);
  });

  it("refuses a malformed key with 400", async () => {
    for (const bad of ["", "has space", "x".repeat(256), "tab\there", "é"]) {
      const res = await fetch(new URL("/api/chat", agent.url), {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": bad },
        body: JSON.stringify({ userId: "idem-bad", message: "hi" }),
      }).catch(() => null);
      if (res === null) continue; // a header value fetch itself will not send
      assert.equal(res.status, 400, JSON.stringify(bad));
      await res.arrayBuffer();
    }
    assert.equal((await history(agent, "idem-bad")).body.messageCount, 0);
  });
});

describe("the number of keys remembered", () => {
  it("is bounded by IDEMPOTENCY_KEYS: the oldest key is forgotten, the newer ones still replay", async () => {
    const small = await startAgent({ vars: { IDEMPOTENCY_KEYS: "3" } });
    try {
      const user = "idem-bound";
      for (let i = 1; i <= 4; i++) await chat(small, user, `turn ${i}`, key(`b-${i}`));
      for (let i = 2; i <= 4; i++) {
        const again = await chat(small, user, `turn ${i}`, key(`b-${i}`));
        assert.equal(again.body.replayed, true, `b-${i}`);
        assert.equal(again.body.messageCount, 2 * i);
      }
      const forgotten = await chat(small, user, "turn 1", key("b-1"));
      assert.equal(forgotten.body.replayed, undefined);
      assert.equal(forgotten.body.messageCount, 10);
    } finally {
      await small.dispose();
    }
  });
});
